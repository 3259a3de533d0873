"""A local Hugging Face hub cache laid out as the hub client writes it, so that hub ids resolve
offline (HF_HUB_CACHE=<root>, HF_HUB_OFFLINE=1):

    <root>/models--ORG--NAME/refs/main                     the commit hash
    <root>/models--ORG--NAME/blobs/<sha256>                the files' bytes
    <root>/models--ORG--NAME/snapshots/<commit>/<file>     symlinks to ../../blobs/<sha256>
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_repo(root: Path, repo_id: str, folder: Path, *, commit: str | None = None) -> str:
    """Put `folder`'s files into the cache as the `main` revision of `repo_id`; returns the commit."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    commit = commit or digest.hexdigest()
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    for path in files:
        data = path.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        depth = len(path.relative_to(folder).parts) + 1
        os.symlink(Path(*[".."] * depth) / "blobs" / blob, link)
    return commit


def hub_env(root: Path) -> dict[str, str]:
    """Environment variables that make the hub client read `root` and never go online."""
    return {"HF_HUB_CACHE": str(root), "HF_HUB_OFFLINE": "1"}
