from pathlib import Path

import pytest

from encoderzoo.fileio import atomic_dir, atomic_path, write_json


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}")
    assert '"a": 2' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_keeps_the_old_folder_when_the_run_fails(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with atomic_dir(out, "test") as tmp:
        (tmp / "report.md").write_text("complete")
    with pytest.raises(RuntimeError), atomic_dir(out, "test") as tmp:
        (tmp / "report.md").write_text("half")
        raise RuntimeError("interrupted")
    assert (out / "report.md").read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_atomic_dir_creates_nothing_when_the_first_run_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "run", "test"):
        raise RuntimeError("bad input")
    assert list(tmp_path.iterdir()) == []
