"""Writes that never leave a half-written file or folder behind, survive a power cut once
published (file and folder fsynced before the rename that publishes them), honour the umask, and
never replace a folder encoderzoo cannot prove it made."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from encoderzoo.errors import ConfigError
from encoderzoo.version import __version__

MARKER = ".encoderzoo"  # in every folder encoderzoo made: {"kind": ..., "encoderzoo": version, ...}
TEMPORARY = ".ez-tmp"  # the end of every temporary file and folder name encoderzoo makes
_UMASK: list[int] = []
_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask (read once: os.umask can only be read by setting it)."""
    with _UMASK_LOCK:
        if not _UMASK:
            current = os.umask(0o022)
            os.umask(current)
            _UMASK.append(current)
    return _UMASK[0]


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') bytes to the disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        if (path.is_file() and not path.is_symlink()) or path.is_dir():
            fsync_path(path)
    fsync_path(folder)


def is_temporary(path: Path) -> bool:
    """A file or folder encoderzoo made to write something else (see `temporary`): what a killed
    write leaves behind, never published, removed at the next start."""
    return path.name.startswith(".") and path.name.endswith(TEMPORARY)


def temporary(beside: Path, *, folder: bool = False) -> Path:
    """A new hidden file (or folder) beside `beside`, named `.NAME.XXXXXX.ez-tmp`: the one rule by
    which `is_temporary` knows it. It gets the umask's permissions, as a plain open would."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    prefix, where = f".{beside.name}.", beside.parent
    if folder:
        path = Path(tempfile.mkdtemp(prefix=prefix, suffix=TEMPORARY, dir=where))
        os.chmod(path, 0o777 & ~umask())  # mkdtemp makes 0700
        return path
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=TEMPORARY, dir=where)
    os.close(fd)
    os.chmod(name, 0o666 & ~umask())
    return Path(name)


@contextlib.contextmanager
def temporary_folder(beside: Path) -> Iterator[Path]:
    """A scratch folder beside `beside` (see `temporary`), removed when the block ends."""
    folder = temporary(beside, folder=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it, rename it into place and fsync
    the folder, else delete it."""
    tmp = temporary(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- folders encoderzoo made ---------------------------------------------------------------------

def identity(folder: Path) -> int | None:
    """What binds a marker to the folder it was written in: the folder's inode, which a rename
    keeps and a copy (`cp -r`, `cp -a`, rsync) never has."""
    try:
        return os.stat(folder).st_ino
    except OSError:
        return None


def marker(folder: Path) -> dict[str, Any]:
    """What encoderzoo recorded in a folder it made (empty: not one of ours). A marker written in
    another folder (copied here with the run's files) proves nothing: it names that folder."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or "kind" not in data:
        return {}
    return data if data.get("folder") == identity(folder) else {}


def copied_marker(folder: Path) -> bool:
    """`folder` holds a marker encoderzoo wrote in another folder (copied with the run's files)."""
    return (folder / MARKER).is_file() and not marker(folder)


def mark(folder: Path, kind: str) -> None:
    """Record in `folder` that encoderzoo made it (a run folder, a converted checkpoint...)."""

    if marker(folder).get("kind") != kind:
        write_json(folder / MARKER, {"kind": kind, "encoderzoo": __version__, "folder": identity(folder),
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def check_replaceable(path: Path, kind: str, *, overwrite: bool = False, option: str = "--out") -> None:
    """Refuse to replace or write into an existing folder encoderzoo cannot prove it made
    (no marker of this kind), unless the user says --overwrite; an empty folder is fine.
    `option` names where the path came from: a flag (--out) or a description."""
    where = f"{option} {path}" if option.startswith("--") else f"{path} ({option})"
    fix = f"pass another {option}, or --overwrite to replace it" if option.startswith("--") else \
        "move it away, or pass --overwrite to replace it"
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"{where}: exists and is not a folder; {fix}")
    if not path.is_dir() or overwrite or marker(path).get("kind") == kind or not any(path.iterdir()):
        return
    why = f"its {MARKER} was copied from another folder" if copied_marker(path) else \
        f"no {MARKER} of a {kind}"
    raise ConfigError(f"{where}: the folder exists and was not made by encoderzoo ({why}); encoderzoo "
                      f"never deletes what it did not create: {fix}")


@contextlib.contextmanager
def atomic_dir(path: Path, kind: str, *, overwrite: bool = False, option: str = "--out") -> Iterator[Path]:
    """Build a folder under a temporary name; it replaces `path` only if the block succeeds, and
    only if `path` is absent, empty, marked as made by encoderzoo as a `kind`, or `overwrite`."""
    check_replaceable(path, kind, overwrite=overwrite, option=option)
    tmp = temporary(path, folder=True)
    try:
        yield tmp
        mark(tmp, kind)
        fsync_tree(tmp)
        publish(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`, replacing what is there: in one atomic exchange where the
    system has it (Linux renameat2), else by two renames. The old folder is then deleted."""
    if not path.exists():
        os.replace(new, path)
        fsync_path(path.parent)
        return
    if exchange(new, path):  # `new` now holds the replaced folder
        old = new.with_name(f"{new.name}.old") if not is_temporary(new) else \
            new.with_name(f"{new.name.removesuffix(TEMPORARY)}.old{TEMPORARY}")
        os.replace(new, old)
    else:
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(new, path)
    fsync_path(path.parent)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where it is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)
