"""Locating a recipe's dataset splits: `--data`, the packaged demo file, or a one-time download."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from encoderzoo.assets import asset_path
from encoderzoo.errors import ConfigError, DataError
from encoderzoo.fileio import atomic_path
from encoderzoo.recipes import DataSource, Recipe


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "encoderzoo"


def resolve_data(recipe: Recipe, overrides: Sequence[str], cache_dir: Path) -> dict[str, Path]:
    """{split: file}. Each `--data` value is `PATH` (a file for a one-split recipe, or a folder
    holding each split's usual file name) or `SPLIT=PATH`; splits not given use the recipe's."""
    given = given_splits(recipe, overrides)
    return {split: given.get(split) or _default(source, cache_dir)
            for split, source in recipe.data.items()}


def describe_data(recipe: Recipe, overrides: Sequence[str], cache_dir: Path) -> dict[str, str]:
    """{split: file, or what would be downloaded}, without downloading."""
    given = given_splits(recipe, overrides)
    found = {}
    for split, source in recipe.data.items():
        if split in given:
            found[split] = str(given[split])
        elif source.packaged:
            found[split] = str(asset_path(source.packaged))
        elif source.url:
            cached = _cached_target(source.url, source.member, cache_dir)
            found[split] = str(cached) if cached.is_file() else f"download {source.url}"
        else:
            found[split] = f"(none: pass --data; {source.hint})"
    return found


def _cached_target(url: str, member: str | None, cache_dir: Path) -> Path:
    folder = cache_dir / "data" / hashlib.sha256(url.encode()).hexdigest()[:16]
    return folder / (Path(member).name if member else Path(url).name)


def given_splits(recipe: Recipe, overrides: Sequence[str]) -> dict[str, Path]:
    splits = list(recipe.data)
    given: dict[str, Path] = {}
    for value in overrides:
        split, sep, path_text = value.partition("=")
        if sep and split in recipe.data:
            given[split] = Path(path_text).expanduser()
            continue
        path = Path(value).expanduser()
        named = [name for name, source in recipe.data.items() if source.filename == path.name]
        if len(splits) > 1 and not path.is_dir() and len(named) == 1:  # dev_matched.tsv -> matched
            given[named[0]] = path
        elif path.is_dir():
            for name, source in recipe.data.items():
                if not (path / source.filename).is_file():
                    raise DataError(f"{path}: no {source.filename} in this folder for split '{name}'; "
                                    f"pass --data {name}=PATH")
                given[name] = path / source.filename
        elif len(splits) == 1:
            given[splits[0]] = path
        else:
            raise ConfigError(
                f"--data {value}: recipe '{recipe.name}' reads {len(splits)} files ({', '.join(splits)}): "
                f"pass --data SPLIT=PATH for each, or --data FOLDER holding "
                f"{' and '.join(s.filename for s in recipe.data.values())}"
            )
    return given


def _default(source: DataSource, cache_dir: Path) -> Path:
    if source.packaged:
        return asset_path(source.packaged)
    if source.url:
        return download(source.url, source.member, cache_dir, hint=source.hint)
    raise DataError(f"no default dataset; pass --data PATH ({source.hint})")


def download(url: str, member: str | None, cache_dir: Path, *, hint: str) -> Path:
    """Fetch `url` once into the cache; if `member` is set, extract that file from the zip."""
    target = _cached_target(url, member, cache_dir)
    folder = target.parent
    if target.is_file():
        return target
    archive = folder / Path(url).name
    if not archive.is_file():
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
            archive.unlink(missing_ok=True)
            raise DataError(f"{url}: no '{member}' in the downloaded archive ({err}); "
                            f"pass --data PATH to {hint}") from None
    return target
