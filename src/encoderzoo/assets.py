"""Files shipped inside the package (the embedded demo)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def asset_path(relative: str) -> Path:
    """Path of a packaged asset, e.g. `asset_path("demo/model")`."""
    return Path(str(resources.files("encoderzoo") / "assets" / relative))
