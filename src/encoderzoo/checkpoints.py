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
from encoderzoo.cache import files_hash
from encoderzoo.errors import CheckpointError
from encoderzoo.families import family_of
from encoderzoo.model_config import read_config
from encoderzoo.model_safety import asks_for_code, refuse_code
from encoderzoo.recipes import Recipe
from encoderzoo.sentence_embedding import AutoModelForSentenceEmbedding, pooling_files
from encoderzoo.tasks.base import Task
from encoderzoo.tokenizer_check import check_tokenizer

RANDOM_WEIGHTS_MARKER = "encoderzoo_random_weights.json"
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json",
    "pytorch_model.bin", "pytorch_model.bin.index.json",
)


# what a hub checkpoint is fetched as (weights in safetensors, or else the .bin files)
HUB_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]
HUB_BIN_FILES = ["pytorch_model*.bin"]


@dataclass
class Checkpoint:
    location: str  # a local folder or a hub id, as the user named it (resolved)
    is_local: bool
    config: Any  # encoderzoo.model_config.ModelConfig (transformers' PretrainedConfig as .full)
    trust_remote_code: bool = False  # run code from the folder (only when the user asks)
    folder: Path | None = None  # the files it loads: the folder, or a hub id's snapshot in the hub cache
    revision: str | None = None  # a hub id: the commit its snapshot resolved to

    def __post_init__(self) -> None:
        if self.folder is None and self.is_local:
            self.folder = Path(self.location)

    @property
    def source(self) -> str:
        """What transformers loads from: the folder whose files are hashed."""
        return str(self.folder) if self.folder is not None else self.location

    @property
    def model_type(self) -> str:
        return str(self.config.model_type)

    @property
    def random_weights(self) -> str | None:
        """"tiny" or "base" for a model built by --random-weights, else None."""
        return random_weights_size(Path(self.location)) if self.is_local else None


def random_weights_record(folder: Path) -> dict[str, Any]:
    """What --random-weights recorded of the model in `folder` (empty if it is not one)."""
    try:
        record = json.loads((folder / RANDOM_WEIGHTS_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def random_weights_size(folder: Path) -> str | None:
    size = random_weights_record(folder).get("size")
    return str(size) if size else None


def quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def resolve_checkpoint(spec: str | None, recipe: Recipe, *, trust_remote_code: bool = False) -> Checkpoint:
    """Find and check the checkpoint: `spec` (a folder or hub id) or the recipe's default, of any
    family encoderzoo runs (the family comes from its config's model_type, not from the recipe).
    Code shipped in the folder (config `auto_map`) runs only with `trust_remote_code`."""
    if spec is None:
        if recipe.checkpoint.packaged:
            spec = str(asset_path(recipe.checkpoint.packaged))
        elif recipe.checkpoint.hub_id:
            spec = recipe.checkpoint.hub_id
        else:
            raise CheckpointError(f"recipe '{recipe.name}' has no default checkpoint; pass --checkpoint "
                                  "PATH_OR_HUB_ID (or --random-weights tiny|base)")
    path = Path(spec).expanduser()
    is_local = path.exists()
    revision = None
    if is_local:
        _check_folder(path)
        spec = str(path.resolve())
    elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise CheckpointError(f"{spec}: no such checkpoint folder")
    else:
        spec, _, wanted = spec.partition("@")
        path = hub_snapshot(spec, wanted or None)
        _check_folder(path, hub_id=spec)
        revision = path.name
    def load() -> Any:
        """transformers' config (imports PyTorch): only what config.json does not settle."""
        quiet_transformers()
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            where = "folder" if is_local else "hub id"
            hint = "" if is_local else "; offline, pass --checkpoint PATH to a local Hugging Face folder"
            raise CheckpointError(
                f"{spec}: cannot load the config of this {where}: {_first_line(err)}{hint}"
            ) from None

    code = asks_for_code(path)
    if code and not trust_remote_code:
        refuse_code(spec, path, code)
    config = read_config(path, load)
    if code:
        config.full  # noqa: B018  code in the folder: transformers decides now, as before
    family_of(config.model_type, spec)
    return Checkpoint(location=spec, is_local=is_local, config=config, trust_remote_code=trust_remote_code,
                      folder=path, revision=revision)


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The folder of a hub checkpoint's snapshot in the hub cache (named by the commit it resolved
    to), fetched when online: config, tokenizer files and safetensors weights, or the .bin weights
    when it has no safetensors. Offline (HF_HUB_OFFLINE=1) the cached snapshot is used."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(repo_id, revision=folder.name, allow_patterns=HUB_BIN_FILES))
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"{repo_id}: not in the local hub cache and the hub cannot be reached (offline?); pass "
            "--checkpoint PATH to a local Hugging Face folder") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"{repo_id}: cannot fetch this hub id: {_first_line(err)}; pass "
                              "--checkpoint PATH to a local Hugging Face folder") from None
    return folder


def _check_folder(path: Path, hub_id: str | None = None) -> None:
    if hub_id is not None and not any((path / name).is_file() for name in ("config.json", *WEIGHT_FILES)):
        raise CheckpointError(f"{hub_id}: the hub repository has no config.json or weights "
                              f"({', '.join(WEIGHT_FILES[::2])}); is it a model repository?")
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


def tokenizer_class(folder: Path | None) -> Any:
    """The class tokenizer_config.json names, where transformers has it (its fast form first):
    loaded directly, it skips AutoTokenizer's reading of the model config, which imports PyTorch
    in transformers 5 (a served ONNX Runtime or OpenVINO model need not carry it)."""
    try:
        name = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))["tokenizer_class"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    import transformers

    if not isinstance(name, str) or not name.isidentifier():
        return None
    fast = f"{name.removesuffix('Fast')}Fast"
    return getattr(transformers, fast, None) or getattr(transformers, name, None)


def load_tokenizer(checkpoint: Checkpoint) -> Any:
    """The checkpoint's own fast tokenizer."""
    quiet_transformers()
    loader = None if checkpoint.trust_remote_code else tokenizer_class(checkpoint.folder)
    if loader is None:
        from transformers import AutoTokenizer  # reads the model config: imports PyTorch

        loader = AutoTokenizer
    try:
        tokenizer = loader.from_pretrained(checkpoint.source, trust_remote_code=checkpoint.trust_remote_code)
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{checkpoint.location}: cannot load its tokenizer: {_first_line(err)}; "
            "the folder needs tokenizer.json or the family's vocabulary files"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(
            f"{checkpoint.location}: only a slow (Python) tokenizer could be built; add tokenizer.json"
        )
    if checkpoint.random_weights is None and checkpoint.folder is not None:  # random: built for it
        check_tokenizer(tokenizer, checkpoint.config, checkpoint.folder)
    return tokenizer


def load_model(checkpoint: Checkpoint, task: Task, *, attn_implementation: str | None = None) -> Any:
    """The checkpoint's model for `task` in float32 eval mode."""
    return load_weights(checkpoint.source, task.auto_class, trust_remote_code=checkpoint.trust_remote_code,
                        attn_implementation=attn_implementation, location=checkpoint.location)


def load_weights(source: str, auto_class: str, *, trust_remote_code: bool = False,
                 attn_implementation: str | None = None, location: str | None = None) -> Any:
    """The model in `source` through transformers' `auto_class`, in float32 eval mode. `.bin`
    weights load with `weights_only=True` only; a head without weights is an error."""
    quiet_transformers()
    import torch

    location = location or source
    try:
        model, info = model_class(auto_class).from_pretrained(
            source, dtype=torch.float32, attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code, weights_only=True, output_loading_info=True,
        )
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{location}: the .bin weights hold objects other than tensors, which "
            "encoderzoo refuses to unpickle (weights_only=True); convert them to safetensors "
            "where you trust the file"
        ) from None
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{location}: cannot load the weights: {_first_line(err)}") from None
    missing = list(info.get("missing_keys", []))
    if missing:
        raise CheckpointError(
            f"{location}: weights missing for {len(missing)} parameters (e.g. "
            f"{', '.join(sorted(missing)[:3])}); is this checkpoint fine-tuned for what "
            f"{auto_class} loads?"
        )
    return model.eval()


def model_class(auto_class: str) -> Any:
    """A transformers auto class by name, or encoderzoo's own (AutoModelForSentenceEmbedding)."""
    if auto_class == "AutoModelForSentenceEmbedding":
        return AutoModelForSentenceEmbedding
    import transformers

    return getattr(transformers, auto_class)


def fingerprint(checkpoint: Checkpoint) -> str:
    """SHA-256 over the checkpoint's config and weight files (plus its hub id and revision)."""
    return content_hashes(checkpoint)["model"]


def content_hashes(checkpoint: Checkpoint) -> dict[str, str]:
    """What artifacts are keyed on: "model" (config.json, the weights, the code shipped beside
    them, the sentence-transformers pooling) and "tokenizer"
    (every other file), hashed from the files transformers loads: a local folder's, or the
    snapshot a hub id resolved to, whose id and revision join the hash."""
    assert checkpoint.folder is not None  # resolve_checkpoint always finds the files
    built = random_weights_record(checkpoint.folder).get("key")
    if built:  # random weights built by encoderzoo: what they were built from (see random_weights_key)
        return {"model": str(built), "tokenizer": str(built)}
    files = [p for p in checkpoint.folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    # the code a --trust-remote-code checkpoint runs (modeling_*.py ...) decides its outputs too
    model = [p for p in files if p.name == "config.json" or p.suffix in (".safetensors", ".bin", ".py")]
    model += pooling_files(checkpoint.folder)  # sentence-transformers' pooling decides the embedding graph
    rest = [p for p in files if p not in model and p.name != RANDOM_WEIGHTS_MARKER]
    hub = "" if checkpoint.is_local else f"{checkpoint.location}@{checkpoint.revision}\0"
    return {"model": _joined(hub, files_hash(model, root=checkpoint.folder)),
            "tokenizer": _joined(hub, files_hash(rest))}


def _joined(prefix: str, digest: str) -> str:
    return hashlib.sha256(f"{prefix}{digest}".encode()).hexdigest() if prefix else digest
