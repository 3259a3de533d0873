"""A checkpoint's config as encoderzoo reads it: the fields the stages read outside PyTorch
(model type, sizes, labels) as transformers presents them, remembered per config file, and
transformers' own config object for everything else, loaded only when asked for.

transformers 5 imports PyTorch to load any config (its configuration module does): about 225 MiB
that a run on ONNX Runtime or OpenVINO would carry for nothing. The first process that reads a
config file loads it through transformers and keeps the fields below in the user's cache, keyed
by the file's bytes and the transformers version; later processes read them from there without
transformers. Values are transformers' own (attribute aliases, class defaults and label
conversion included), never re-derived here. A config that ships code (auto_map) is never kept.
A run folder keeps them too (prepare.json's "model_config"), so that loading a run to serve it
needs neither transformers nor a warm cache (a fresh container's is empty)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from encoderzoo.cache import versions
from encoderzoo.errors import CheckpointError
from encoderzoo.fileio import read_json, write_json

# what the stages read of a model's config without building the model
FIELDS = ("model_type", "num_hidden_layers", "hidden_size", "intermediate_size", "embedding_size",
          "num_attention_heads", "vocab_size", "type_vocab_size", "max_position_embeddings", "pad_token_id",
          "num_labels", "id2label", "label2id")
MISSING = "<missing>"  # the config has no such attribute
# fields a run folder kept of the config it was made with (see `remember`), by cache key: a
# process that loads a run reads them without transformers, even where the user's cache is empty
# (a fresh container) or read-only
_REMEMBERED: dict[str, dict[str, Any]] = {}


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "encoderzoo" / "configs"


def _to_json(value: Any) -> Any:
    """Dicts with int keys (id2label) as pairs, so that JSON gives them back as they were."""
    return {"pairs": [[k, v] for k, v in value.items()]} if isinstance(value, dict) else value


def _from_json(value: Any) -> Any:
    return {k: v for k, v in value["pairs"]} if isinstance(value, dict) else value


def _plain(fields: dict[str, Any]) -> bool:
    """Whether the fields can be kept as JSON."""
    return all(isinstance(v, str | int | float | dict | None) for v in fields.values())


class ModelConfig:
    """Attribute access like a transformers config; `full` is transformers' own object."""

    def __init__(self, path: Path, load: Callable[[], Any], cache_dir: Path | None = None) -> None:
        self._path, self._load, self._cache_dir = path, load, cache_dir or default_cache_dir()
        data = path.read_bytes()
        self._code = b'"auto_map"' in data
        self._key = hashlib.sha256(data + json.dumps(versions("transformers")).encode()).hexdigest()[:24]

    @cached_property
    def full(self) -> Any:
        """transformers' config (imports PyTorch)."""
        return self._load()

    @cached_property
    def _fields(self) -> dict[str, Any]:
        cached = self._cache_dir / f"{self._key}.json"
        if not self._code:
            if self._key in _REMEMBERED:  # kept by the run folder being loaded
                return {k: _from_json(v) for k, v in _REMEMBERED[self._key].items()}
            with contextlib.suppress(OSError, ValueError, AttributeError, KeyError):
                found = read_json(cached)
                if found.get("fields", {}).keys() == set(FIELDS):
                    return {k: _from_json(v) for k, v in found["fields"].items()}
        full = self.full
        fields = {name: getattr(full, name, MISSING) for name in FIELDS}
        if not self._code and _plain(fields):
            # a read-only cache folder: transformers loads it again next time
            with contextlib.suppress(OSError, TypeError, ValueError):
                write_json(cached, {"config": str(self._path),
                                    "fields": {k: _to_json(v) for k, v in fields.items()}})
        return fields

    def kept(self) -> dict[str, Any] | None:
        """What a run folder keeps of this config for `remember`: its cache key and fields (None
        for a config that ships code, whose fields transformers must decide each time)."""
        if self._code or not _plain(self._fields):
            return None
        return {"key": self._key, "fields": {k: _to_json(v) for k, v in self._fields.items()}}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "full":
            raise AttributeError(name)
        if name in FIELDS:
            value = self._fields[name]
            if value == MISSING:
                raise AttributeError(f"the model's config has no {name!r}")
            return value
        return getattr(self.full, name)


def remember(entry: Any) -> None:
    """Take the fields `ModelConfig.kept` gave (read back from a run folder) for this process. They
    apply only to a config file of the same bytes under the same transformers version (the key
    says both); an entry of any other shape is ignored (transformers reads the config then)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        return
    fields = entry.get("fields")
    if isinstance(fields, dict) and fields.keys() == set(FIELDS):
        _REMEMBERED[entry["key"]] = dict(fields)


def read_config(folder: Path, load: Callable[[], Any], cache_dir: Path | None = None) -> ModelConfig:
    """The config of the checkpoint `folder`, `load` giving transformers' own when needed."""
    path = folder / "config.json"
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read it ({err})") from None
    except ValueError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); fix the file or save the model "
                              "again") from None
    return ModelConfig(path, load, cache_dir)
