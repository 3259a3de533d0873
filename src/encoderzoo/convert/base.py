"""What every converter shares: reading original checkpoints without running their code, and
writing a Hugging Face folder that loads strictly (every weight mapped, none left over)."""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encoderzoo.cache import file_hash
from encoderzoo.errors import CheckpointError
from encoderzoo.fileio import atomic_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "spiece.model", "spm.model")


class Inert:
    """Stands in for any class or function a checkpoint's pickle names beyond plain data (an
    argparse.Namespace of training options, a fairseq meter...). It records what it was given
    and runs nothing, so no code from the file executes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def fields(self) -> dict[str, Any]:
        """The recorded attributes, when the original was a plain object (e.g. Namespace)."""
        return dict(self.state) if isinstance(self.state, dict) else {}


@dataclass
class Loaded:
    data: Any
    stubbed: list[str]  # globals the file named that were replaced by Inert


def safe_load(path: Path) -> Loaded:
    """torch.load with weights_only=True; globals beyond tensors and plain containers become
    Inert records. Modules torch blocks outright (os, subprocess...) still make it fail."""
    import torch

    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        stubs = [(type(name.rsplit(".", 1)[-1], (Inert,), {}), name) for name in names]
        with torch.serialization.safe_globals(stubs):
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = next((line for line in str(err).splitlines() if "GLOBAL" in line), "not plain data")
        raise CheckpointError(f"{path}: refused to unpickle: {reason.strip()}") from None
    except (RuntimeError, ValueError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({err})") from None
    return Loaded(data, names)


def find_file(source: Path, candidates: tuple[str, ...], what: str) -> Path:
    """`source` itself, or the first of `candidates` (glob patterns) inside the folder."""
    if source.is_file():
        return source
    if source.is_dir():
        for pattern in candidates:
            found = sorted(source.glob(pattern))
            if found:
                return found[0]
    raise CheckpointError(f"{source}: no {what} ({' or '.join(candidates)})")


def read_json_config(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable config ({err})") from None


def tensor_state(data: Any, source: Path, *keys: str) -> dict[str, Any]:
    """The state dict inside a checkpoint: `data` itself or `data[key]` for the first key present."""
    import torch

    for key in keys:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        where = ", ".join(keys) or "top level"
        raise CheckpointError(f"{source}: no state dict of tensors found (looked at {where})")
    return {k.removeprefix("module."): v.float() if v.is_floating_point() else v
            for k, v in data.items() if isinstance(v, torch.Tensor)}


class Keys:
    """A source state dict that remembers which entries were mapped; the rest are reported."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state, self.used = state, set[str]()

    def __contains__(self, key: object) -> bool:
        return key in self.state

    def __getitem__(self, key: str) -> Any:
        self.used.add(key)
        return self.state[key]

    def __iter__(self) -> Any:
        return iter(self.state)

    def unused(self) -> list[str]:
        return sorted(set(self.state) - self.used)


def require(state: Keys, key: str, file: Path, what: str) -> None:
    """A converter's check that the file is what it claims: `what` says what it is instead."""
    if key not in state:
        raise CheckpointError(f"{file}: no {key}; {what}")


@dataclass
class Converted:
    model_class: str  # transformers class, e.g. "RobertaForSequenceClassification"
    config: Any  # transformers config
    state: dict[str, Any]  # Hugging Face parameter names -> tensors
    source: Path
    ignored: list[str] = field(default_factory=list)  # source keys deliberately left out
    stubbed: list[str] = field(default_factory=list)


def write_folder(converted: Converted, out: Path, *, fmt: str, tokenizer: Path | None,
                 labels: tuple[str, ...] | None, overwrite: bool = False) -> dict[str, Any]:
    """Load the mapped weights strictly into the Hugging Face class and save the folder (an
    existing `out` is replaced only if encoderzoo converted it, or with `overwrite`)."""
    import torch
    import transformers

    config = converted.config
    if labels:
        if len(labels) != config.num_labels:
            raise CheckpointError(
                f"--labels gives {len(labels)} names, the head has {config.num_labels} classes")
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
    torch.manual_seed(0)
    model = getattr(transformers, converted.model_class)(config)
    result = model.load_state_dict(converted.state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or result.unexpected_keys:
        unexpected = sorted(result.unexpected_keys)[:4]
        detail = f"missing {sorted(missing)[:4]}" if missing else f"unexpected {unexpected}"
        raise CheckpointError(f"{converted.source}: the weights do not fit {converted.model_class}: {detail}")
    info = {
        "format": fmt, "source": str(converted.source), "sha256": file_hash(converted.source),
        "model_class": converted.model_class, "ignored_keys": converted.ignored,
        "replaced_objects": converted.stubbed, "tokenizer": str(tokenizer) if tokenizer else None,
    }
    with atomic_dir(out, "converted-checkpoint", overwrite=overwrite) as tmp:
        model.eval().save_pretrained(tmp)
        if tokenizer is not None:
            copied = [f for f in TOKENIZER_FILES if (tokenizer / f).is_file()]
            if not copied:
                raise CheckpointError(f"--tokenizer {tokenizer}: no tokenizer files in this folder")
            for name in copied:
                shutil.copy2(tokenizer / name, tmp / name)
        (tmp / "encoderzoo_conversion.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
