"""Safe checkpoint loading: Hugging Face folders or hub ids, never code from the checkpoint,
never an unrestricted unpickle, weights upcast to float32."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.assets import asset_path
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

    @property
    def model_type(self) -> str:
        return str(self.config.model_type)

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


def resolve_checkpoint(spec: str | None, recipe: Recipe, family: Family) -> Checkpoint:
    """Find and check the checkpoint: `spec` (a folder or hub id) or the recipe's default."""
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
        config = AutoConfig.from_pretrained(spec, trust_remote_code=False)
    except (OSError, ValueError) as err:
        where = "folder" if is_local else "hub id"
        hint = "" if is_local else "; offline, pass --checkpoint PATH to a local Hugging Face folder"
        raise CheckpointError(
            f"{spec}: cannot load the config of this {where}: {_first_line(err)}{hint}"
        ) from None
    if config.model_type not in family.model_types:
        raise CheckpointError(
            f"{spec}: a '{config.model_type}' model, but recipe '{recipe.name}' expects "
            f"{' or '.join(repr(t) for t in family.model_types)}; pick the recipe for this model"
        )
    return Checkpoint(location=spec, is_local=is_local, config=config)


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
        tokenizer = AutoTokenizer.from_pretrained(checkpoint.location, trust_remote_code=False)
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
            trust_remote_code=False, weights_only=True, output_loading_info=True,
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
    if not checkpoint.is_local:
        return getattr(checkpoint.config, "_commit_hash", None)
    digest = hashlib.sha256()
    folder = Path(checkpoint.location)
    weights = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    for name in ("config.json", *weights):
        file = folder / name
        if file.is_file():
            digest.update(name.encode())
            with file.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
