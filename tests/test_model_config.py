"""The checkpoint config's fields the stages read are transformers' own, and a later process
reads them without transformers (no PyTorch import)."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from encoderzoo.families import FAMILIES
from encoderzoo.model_config import FIELDS, read_config
from encoderzoo.random_weights import architecture_config
from encoderzoo.recipes import RECIPES


def transformers_config(folder: Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(folder))


def saved(folder: Path, model_type: str, **settings: Any) -> Path:
    from transformers import AutoConfig

    AutoConfig.for_model(model_type, **settings).save_pretrained(folder)
    return folder


def tiny(folder: Path, **settings: Any) -> Path:
    return saved(folder, "bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, **settings)


def same_fields(folder: Path, cache: Path) -> None:
    """The fields read once through transformers, then from the cache, are transformers' own."""
    full = transformers_config(folder)
    loads: list[int] = []
    first = read_config(folder, lambda: loads.append(1) or full, cache)
    later = read_config(folder, lambda: pytest.fail("loaded transformers' config again"), cache)
    for view in (first, later):
        for name in FIELDS:
            assert getattr(view, name, AttributeError) == getattr(full, name, AttributeError), name
    assert loads == [1]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_reads_as_transformers_reads_it(family: str, tmp_path: Path) -> None:
    settings = architecture_config(RECIPES["demo"], FAMILIES[family], "tiny")
    model_type = settings.pop("model_type", FAMILIES[family].model_types[0])
    same_fields(saved(tmp_path / family, model_type, **settings), tmp_path / "cache")


@pytest.mark.parametrize("labels", [
    {}, {"num_labels": 3}, {"id2label": {"0": "neg", "1": "neu", "2": "pos"}},
    {"id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}},
])
def test_labels_read_as_transformers_reads_them(labels: dict[str, Any], tmp_path: Path) -> None:
    folder = tiny(tmp_path / "model")
    raw = json.loads((folder / "config.json").read_text())
    raw = {k: v for k, v in raw.items() if k not in ("id2label", "label2id", "num_labels")} | labels
    (folder / "config.json").write_text(json.dumps(raw))
    same_fields(folder, tmp_path / "cache")


def test_another_config_file_is_read_again(tmp_path: Path) -> None:
    folder = tiny(tmp_path / "model")
    assert read_config(folder, lambda: transformers_config(folder), tmp_path).hidden_size == 32
    tiny(folder, id2label={0: "x", 1: "y"})  # another file in the same folder
    raw = json.loads((folder / "config.json").read_text()) | {"hidden_size": 48}
    (folder / "config.json").write_text(json.dumps(raw))
    view = read_config(folder, lambda: transformers_config(folder), tmp_path)
    assert view.hidden_size == 48 and view.id2label == {0: "x", 1: "y"}


def test_a_config_with_code_is_never_cached(tmp_path: Path) -> None:
    folder = tiny(tmp_path / "model")
    raw = json.loads((folder / "config.json").read_text()) | {"auto_map": {"AutoConfig": "x.Y"}}
    (folder / "config.json").write_text(json.dumps(raw))
    loads: list[int] = []
    for _ in range(2):
        view = read_config(folder, lambda: loads.append(1) or transformers_config(folder), tmp_path / "c")
        assert view.hidden_size == 32
    assert loads == [1, 1] and not (tmp_path / "c").exists()


def test_a_later_process_does_not_import_torch(tmp_path: Path) -> None:
    folder = tiny(tmp_path / "model", id2label={0: "negative", 1: "positive"})
    read_config(folder, lambda: transformers_config(folder), tmp_path / "cache").hidden_size  # noqa: B018
    code = ("import sys\nfrom pathlib import Path\nfrom encoderzoo.model_config import read_config\n"
            f"c = read_config(Path({str(folder)!r}), lambda: None, Path({str(tmp_path / 'cache')!r}))\n"
            "print(c.model_type, c.num_labels, c.id2label[1], c.hidden_size, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["bert", "2", "positive", "32", "False"]


def test_fields_a_run_kept_are_read_without_transformers_or_a_cache(tmp_path: Path) -> None:
    folder = tiny(tmp_path / "model", id2label={0: "negative", 1: "positive"})
    kept = read_config(folder, lambda: transformers_config(folder), tmp_path / "cache").kept()
    assert kept is not None and json.loads(json.dumps(kept)) == kept  # as prepare.json holds it
    code = ("import json, sys\nfrom pathlib import Path\nfrom encoderzoo.model_config import read_config, "
            f"remember\nremember(json.loads({json.dumps(kept)!r}))\n"
            f"c = read_config(Path({str(folder)!r}), lambda: None, Path({str(tmp_path / 'empty')!r}))\n"
            "print(c.model_type, c.num_labels, c.id2label[1], c.hidden_size, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["bert", "2", "positive", "32", "False"]


def test_kept_fields_apply_only_to_the_same_config_file(tmp_path: Path) -> None:
    from encoderzoo import model_config

    folder = tiny(tmp_path / "model")
    kept = read_config(folder, lambda: transformers_config(folder), tmp_path / "cache").kept()
    assert kept is not None
    model_config.remember({"key": kept["key"], "fields": {"hidden_size": 1}})  # not every field: ignored
    model_config.remember(["not", "an", "entry"])
    assert kept["key"] not in model_config._REMEMBERED
    raw = json.loads((folder / "config.json").read_text()) | {"hidden_size": 48}
    (folder / "config.json").write_text(json.dumps(raw))  # another file, with the old file's fields kept
    model_config.remember(kept)
    try:
        assert read_config(folder, lambda: transformers_config(folder), tmp_path / "empty").hidden_size == 48
    finally:
        model_config._REMEMBERED.pop(kept["key"])
