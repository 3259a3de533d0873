"""What a checkpoint may not do before it is loaded: declare model code of its own that nobody
asked to run (config `auto_map`), or hold objects other than tensors in `.bin` weights (a pickle
that would run code). Both are read, never executed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from encoderzoo.errors import CheckpointError
from encoderzoo.families import FAMILIES


def asks_for_code(folder: Path) -> dict[str, Any]:
    """The classes config.json declares in code of its own (`auto_map`), if any."""
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = raw.get("auto_map") if isinstance(raw, dict) else None
    return (found or {"auto_map": "?"}) if "auto_map" in raw else {}


def refuse_code(spec: str, folder: Path, code: dict[str, Any]) -> None:
    """A folder that declares its own model code is run with that code or not at all: with a
    model type transformers knows, it would otherwise silently run the built-in classes, and
    score another model than the one the folder declares."""
    declared = ", ".join(f"{k}: {v}" for k, v in code.items()) if isinstance(code, dict) else str(code)
    model_type = _model_type(folder)
    if model_type and any(model_type in f.model_types for f in FAMILIES.values()):  # built in
        raise CheckpointError(
            f"{spec}: config.json declares its own model code (auto_map {declared}) for model type "
            f"'{model_type}'; without it transformers would run its built-in '{model_type}' classes, another "
            "model than the folder declares: read that code, then pass --trust-remote-code if you trust it, "
            "or remove auto_map from config.json to run the built-in classes")
    raise CheckpointError(
        f"{spec}: config.json asks to run Python code shipped in the folder (auto_map {declared}), which "
        "encoderzoo never runs unless told; read that code, then pass --trust-remote-code if you trust it")


def _model_type(folder: Path) -> str | None:
    try:
        found = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return str(found) if found else None


def check_pickles(folder: Path | None) -> None:
    """Refuse, before anything is built from it, a checkpoint whose .bin weights hold objects
    other than tensors: loading them would need an unrestricted unpickle, which encoderzoo never
    does (the pickle's globals are read, nothing in it runs)."""
    weights = sorted(folder.glob("pytorch_model*.bin")) if folder is not None else []
    if not weights:
        return
    import torch

    for path in weights:
        try:
            unsafe = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except (OSError, RuntimeError, ValueError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(f"{path}: cannot read these weights: {reason}") from None
        if unsafe:
            raise CheckpointError(
                f"{path}: the weights hold objects other than tensors ({', '.join(unsafe[:3])}), which "
                "encoderzoo refuses to unpickle (weights_only=True); convert them to safetensors where you "
                "trust the file")
