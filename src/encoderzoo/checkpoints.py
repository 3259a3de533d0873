"""Safe checkpoint loading: Hugging Face folders or hub ids, never code from the checkpoint,
never an unrestricted unpickle, weights upcast to float32."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.assets import asset_path
from encoderzoo.cache import files_hash
from encoderzoo.errors import CheckpointError
from encoderzoo.families import Family
from encoderzoo.recipes import Recipe
from encoderzoo.tasks.base import Task

RANDOM_WEIGHTS_MARKER = "encoderzoo_random_weights.json"
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json",
    "pytorch_model.bin", "pytorch_model.bin.index.json",
)
AUTO_CLASSES = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "question-answering": "AutoModelForQuestionAnswering",
}


@dataclass
class Checkpoint:
    location: str  # a local folder or a hub id
    is_local: bool
    config: Any  # transformers.PretrainedConfig
    trust_remote_code: bool = False  # run code from the folder (only when the user asks)

    @property
    def model_type(self) -> str:
        return str(self.config.model_type)

    @property
    def folder(self) -> Path | None:
        """The local folder its files are read from (None for a hub id not in a local folder)."""
        return Path(self.location) if self.is_local else None

    @property
    def random_weights(self) -> str | None:
        """"tiny" or "base" for a model built by --random-weights, else None."""
        return random_weights_size(Path(self.location)) if self.is_local else None


def random_weights_size(folder: Path) -> str | None:
    marker = folder / RANDOM_WEIGHTS_MARKER
    if marker.is_file():
        return str(json.loads(marker.read_text(encoding="utf-8"))["size"])
    return None


def quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def default_checkpoint(recipe: Recipe) -> str | None:
    """Where the recipe's own checkpoint resolves to (its published reference applies to it only)."""
    if recipe.checkpoint.packaged:
        return str(asset_path(recipe.checkpoint.packaged).resolve())
    return recipe.checkpoint.hub_id


def trainer_results(checkpoint: Checkpoint, metric_names: tuple[str, ...], splits: list[str]
                    ) -> dict[str, float]:
    """The checkpoint's own recorded scores, from eval_results.json as the transformers Trainer
    writes it (`eval_accuracy`, `eval_f1`, `eval_exact_match`; MNLI's mismatched split as
    `eval_accuracy_mm`), as fractions keyed like the task's metrics; empty when there is none."""
    folder = checkpoint.folder
    path = folder / "eval_results.json" if folder is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for raw, value in data.items() if isinstance(data, dict) else ():
        if not raw.startswith("eval_") or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name = raw.removeprefix("eval_")
        mismatched = name.endswith("_mm")
        name = {"exact": "exact_match"}.get(name.removesuffix("_mm"), name.removesuffix("_mm"))
        if name not in metric_names:
            continue
        if len(splits) > 1:
            if not {"matched", "mismatched"} <= set(splits):
                continue  # which split the Trainer scored cannot be told
            name = f"{'mismatched' if mismatched else 'matched'}.{name}"
        elif mismatched:
            continue
        found[name] = float(value) / 100 if value > 1.0 else float(value)  # SQuAD scripts write percent
    return found


def resolve_checkpoint(spec: str | None, recipe: Recipe, family: Family, *,
                       trust_remote_code: bool = False) -> Checkpoint:
    """Find and check the checkpoint: `spec` (a folder or hub id) or the recipe's default.
    Code shipped in the folder (config `auto_map`) runs only with `trust_remote_code`."""
    quiet_transformers()
    from transformers import AutoConfig

    if spec is None:
        if recipe.checkpoint.packaged:
            spec = str(asset_path(recipe.checkpoint.packaged))
        elif recipe.checkpoint.hub_id:
            spec = recipe.checkpoint.hub_id
        else:
            raise CheckpointError(f"recipe '{recipe.name}' has no default checkpoint; pass --checkpoint")
    path = Path(spec).expanduser()
    is_local = path.exists()
    if is_local:
        _check_folder(path)
        spec = str(path.resolve())
    elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise CheckpointError(f"{spec}: no such checkpoint folder")
    try:
        config = AutoConfig.from_pretrained(spec, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        where = "folder" if is_local else "hub id"
        hint = "" if is_local else "; offline, pass --checkpoint PATH to a local Hugging Face folder"
        if is_local and _asks_for_code(path) and not trust_remote_code:
            raise CheckpointError(
                f"{spec}: config.json asks to run Python code shipped in the folder (auto_map), which "
                "encoderzoo never runs unless told; read that code, then pass --trust-remote-code "
                "if you trust it"
            ) from None
        raise CheckpointError(
            f"{spec}: cannot load the config of this {where}: {_first_line(err)}{hint}"
        ) from None
    if config.model_type not in family.model_types:
        raise CheckpointError(
            f"{spec}: a '{config.model_type}' model, but recipe '{recipe.name}' expects "
            f"{' or '.join(repr(t) for t in family.model_types)}; pick the recipe for this model"
        )
    return Checkpoint(location=spec, is_local=is_local, config=config, trust_remote_code=trust_remote_code)


def _asks_for_code(folder: Path) -> bool:
    try:
        return "auto_map" in json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _check_folder(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a folder; a checkpoint is a Hugging Face model folder")
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{path}: no config.json; a Hugging Face checkpoint folder holds config.json, "
            "model.safetensors and the tokenizer files (use `encoderzoo convert` for other layouts)"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(
            f"{path}: no weights ({' or '.join(WEIGHT_FILES[::2])}); copy the weights into the folder"
        )


def load_tokenizer(checkpoint: Checkpoint) -> Any:
    """The checkpoint's own fast tokenizer."""
    quiet_transformers()
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint.location,
                                                  trust_remote_code=checkpoint.trust_remote_code)
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{checkpoint.location}: cannot load its tokenizer: {_first_line(err)}; "
            "the folder needs tokenizer.json or the family's vocabulary files"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(
            f"{checkpoint.location}: only a slow (Python) tokenizer could be built; add tokenizer.json"
        )
    if checkpoint.random_weights is None:  # a random model was built for its tokenizer
        embedded = int(getattr(checkpoint.config, "vocab_size", 0) or 0)
        check_vocab_size(len(tokenizer), embedded, checkpoint.location)
    return tokenizer


def check_vocab_size(tokens: int, embedded: int, location: str) -> None:
    """Catch a tokenizer that does not belong to the model. (transformers builds a near-empty
    tokenizer, without an error, from a folder that lacks the tokenizer files.)"""
    if embedded and tokens > embedded:
        raise CheckpointError(
            f"{location}: the tokenizer has {tokens} tokens but the model embeds only "
            f"{embedded}; the tokenizer files and config.json come from different models"
        )
    if embedded and tokens < embedded // 2:
        raise CheckpointError(
            f"{location}: the tokenizer has only {tokens} tokens for a model of "
            f"{embedded}; the tokenizer files (tokenizer.json or the vocabulary) are missing or wrong"
        )


def load_model(checkpoint: Checkpoint, task: Task, *, attn_implementation: str | None = None) -> Any:
    """The model in float32 eval mode. `.bin` weights load with `weights_only=True` only."""
    quiet_transformers()
    import torch
    import transformers

    auto_class = getattr(transformers, AUTO_CLASSES[task.model_kind])
    try:
        model, info = auto_class.from_pretrained(
            checkpoint.location, dtype=torch.float32, attn_implementation=attn_implementation,
            trust_remote_code=checkpoint.trust_remote_code, weights_only=True, output_loading_info=True,
        )
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{checkpoint.location}: the .bin weights hold objects other than tensors, which "
            "encoderzoo refuses to unpickle (weights_only=True); convert them to safetensors "
            "where you trust the file"
        ) from None
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{checkpoint.location}: cannot load the weights: {_first_line(err)}") from None
    missing = list(info.get("missing_keys", []))
    if missing:
        raise CheckpointError(
            f"{checkpoint.location}: weights missing for {len(missing)} parameters (e.g. "
            f"{', '.join(sorted(missing)[:3])}); is this checkpoint fine-tuned for "
            f"{task.model_kind}?"
        )
    return model.eval()


def fingerprint(checkpoint: Checkpoint) -> str | None:
    """SHA-256 over a local checkpoint's config and weight files; the hub revision otherwise."""
    return content_hashes(checkpoint)["model"]


def content_hashes(checkpoint: Checkpoint) -> dict[str, str | None]:
    """What artifacts are keyed on: "model" (config.json and the weights) and "tokenizer"
    (every other file of the folder). A hub checkpoint's revision stands for both."""
    if not checkpoint.is_local:
        revision = getattr(checkpoint.config, "_commit_hash", None)
        return {"model": revision, "tokenizer": revision}
    folder = Path(checkpoint.location)
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    model = [p for p in files if p.name == "config.json" or p.suffix in (".safetensors", ".bin")]
    rest = [p for p in files if p not in model and p.name != RANDOM_WEIGHTS_MARKER]
    return {"model": files_hash(model), "tokenizer": files_hash(rest)}
