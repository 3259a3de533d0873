"""The artifact cache: content hashes of a stage's inputs make its key, recorded beside what it
built. A stage reuses its outputs only when the recorded key equals the key of what it would
build now (same checkpoint bytes, same data bytes, same options, same library versions);
anything else rebuilds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from encoderzoo.version import __version__

_FILE_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256, per process


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (memoized while its size and modification time stay put)."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[memo] = digest.hexdigest()
    return _FILE_HASHES[memo]


def files_hash(paths: Iterable[Path], root: Path | None = None) -> str:
    """One hash over several files' names (relative to `root`) and contents."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        name = str(path.relative_to(root)) if root else path.name
        digest.update(f"{name}\0{file_hash(path)}\0".encode())
    return digest.hexdigest()


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages that shape an artifact."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def make_key(stage: str, **parts: Any) -> str:
    """A short stable key over a stage's inputs (any JSON-serializable values)."""

    text = json.dumps({"stage": stage, "encoderzoo": __version__, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def recorded(path: Path, field: str, *, entry: str | None = None) -> Any:
    """A value a stage recorded in its JSON file (under `entry` when it holds several), or None."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if entry is not None:
        data = data.get(entry, {}) if isinstance(data, dict) else {}
    return data.get(field) if isinstance(data, dict) else None


def recorded_key(path: Path, *, entry: str | None = None) -> str | None:
    """The key a stage recorded in its JSON file."""
    key = recorded(path, "key", entry=entry)
    return str(key) if key is not None else None
