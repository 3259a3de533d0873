"""Locating a recipe's dataset: `--data`, the packaged demo file, or a one-time download."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from encoderzoo.assets import asset_path
from encoderzoo.errors import DataError
from encoderzoo.fileio import atomic_path
from encoderzoo.recipes import Recipe


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "encoderzoo"


def resolve_data(recipe: Recipe, override: str | None, cache_dir: Path) -> Path:
    if override is not None:
        return Path(override).expanduser()
    source = recipe.data
    if source.packaged:
        return asset_path(source.packaged)
    if source.url:
        return download(source.url, source.member, cache_dir, hint=source.hint)
    raise DataError(f"recipe '{recipe.name}' has no default dataset; pass --data PATH ({source.hint})")


def download(url: str, member: str | None, cache_dir: Path, *, hint: str) -> Path:
    """Fetch `url` once into the cache; if `member` is set, extract that file from the zip."""
    folder = cache_dir / "data" / hashlib.sha256(url.encode()).hexdigest()[:16]
    target = folder / (Path(member).name if member else Path(url).name)
    if target.is_file():
        return target
    archive = folder / Path(url).name
    try:
        with urllib.request.urlopen(url, timeout=30) as response, atomic_path(archive) as tmp, \
                tmp.open("wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"cannot download {url} ({reason}); pass --data PATH to {hint}") from None
    if member:
        try:
            with zipfile.ZipFile(archive) as z, z.open(member) as src, atomic_path(target) as tmp, \
                    tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        except (zipfile.BadZipFile, KeyError) as err:
            raise DataError(f"{url}: no '{member}' in the downloaded archive ({err}); "
                            f"pass --data PATH to {hint}") from None
    return target
