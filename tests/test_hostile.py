"""The promises a careless or hostile user tests: encoderzoo never deletes a folder it cannot
prove it made, nor the inputs a run resolved; a path through a symlink is the same folder (one
lock); bad paths get one line and leave nothing; a temporary name is known by one rule."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from encoderzoo import fileio
from encoderzoo.assets import asset_path
from encoderzoo.errors import ConfigError
from encoderzoo.fileio import MARKER
from encoderzoo.workspace import clean_temporary, is_run_folder, locked
from tests.conftest import ROOT, cli
from tests.hub_cache import add_repo, hub_env

QUICK = ["--limit", "8", "--backends", "torch:fp32", "--no-bench", "--no-optimize", "--no-ceiling",
         "--e2e-runs", "0"]


def fake_run_folder(folder: Path) -> Path:
    """The visible files of a run folder, with the marker encoderzoo writes when it makes one."""
    (folder / "data").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "outputs").mkdir()
    (folder / "report.json").write_text('{"encoderzoo": "0.1.0"}')
    (folder / "data" / "prepare.json").write_text("{}")
    (folder / "data" / "features.npz").write_bytes(b"npz")
    fileio.mark(folder, "run")
    return folder


def one_line_error(result: object) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, stderr[-2000:]  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    return str(stderr.strip().splitlines()[-1])


# -- 1. only the marker written in the folder itself proves a run folder ---------------------------

def test_a_report_or_prepared_data_prove_nothing_only_the_folders_own_marker_does(tmp_path: Path) -> None:
    run = fake_run_folder(tmp_path / "run")
    assert is_run_folder(run)
    moved = tmp_path / "moved"
    run.rename(moved)  # a rename keeps the folder: still ours
    assert is_run_folder(moved)
    copied = tmp_path / "copied"
    shutil.copytree(moved, copied)  # the marker travels, but it names the folder it was written in
    assert not is_run_folder(copied) and fileio.copied_marker(copied)
    (copied / MARKER).unlink()
    assert not is_run_folder(copied)  # report.json with "encoderzoo", prepare.json + features.npz


@pytest.mark.parametrize("how", ["visible files", "everything"])
def test_a_users_folder_holding_a_runs_copied_files_is_refused_and_kept(tmp_path: Path, how: str) -> None:
    run = fake_run_folder(tmp_path / "runs" / "x")
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / "thesis.tex").write_text("years of work")
    (mydocs / "chapters").mkdir()
    for child in run.iterdir():  # cp -r runs/x/* mydocs/ (or runs/x/. with the hidden marker)
        if how == "everything" or not child.name.startswith("."):
            (shutil.copytree if child.is_dir() else shutil.copy2)(child, mydocs / child.name)
    last = one_line_error(cli("run", "demo", "--out", str(mydocs), *QUICK))
    assert last.startswith(f"error: --out {mydocs}: the folder exists and was not made by encoderzoo")
    assert ("copied from another folder" in last) == (how == "everything")
    assert (mydocs / "thesis.tex").read_text() == "years of work" and (mydocs / "chapters").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydocs", "runs"]  # no partial folder, no lock


# -- 2. --overwrite never deletes an input the run resolved ----------------------------------------

def test_a_hub_cache_inside_out_is_protected_even_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "work"
    hub = out / "hub"
    add_repo(hub, "acme/sst2-minilm", asset_path("demo/model"))
    (out / "notes.txt").write_text("mine")
    for extra in ([], ["--checkpoint", "acme/sst2-minilm"]):  # the recipe's own, or a hub id
        last = one_line_error(cli("run", "demo", "--out", str(out), *QUICK, *extra, "--overwrite",
                                  env=hub_env(hub)))
        assert last.startswith(f"error: --out {out}: holds this run's input"), last
    assert (out / "notes.txt").is_file() and any(hub.rglob("model.safetensors"))


def test_the_config_file_and_the_download_cache_inside_out_are_protected(tmp_path: Path) -> None:
    out = tmp_path / "work"
    out.mkdir()
    config = out / "run.toml"
    config.write_text('recipe = "demo"\n')
    last = one_line_error(cli("run", "--config", str(config), "--out", str(out), *QUICK, "--overwrite"))
    assert f"holds this run's input {config}" in last and config.is_file()
    last = one_line_error(cli("run", "demo", "--out", str(out), *QUICK, "--overwrite", "--cache-dir",
                              str(out / "cache")))
    assert "holds this run's input" in last and config.is_file()


# -- 3, 10. paths that cannot be a run folder ------------------------------------------------------

def test_out_naming_a_file_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("a,b\n")
    for command in (["run", "demo"], ["prepare", "demo"], ["score", "demo"]):
        last = one_line_error(cli(*command, "--out", str(target), *(QUICK if command[0] == "run" else [])))
        assert last == (f"error: --out {target}: exists and is not a folder; pass another --out (a new "
                        "folder, or a run folder encoderzoo made)")
    assert target.read_text() == "a,b\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_out_dot_and_root_get_one_line(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("mine")
    last = one_line_error(cli("run", "demo", "--out", ".", *QUICK, cwd=tmp_path))
    assert "holds the current folder" in last
    last = one_line_error(cli("run", "demo", "--out", "/", *QUICK, cwd=tmp_path))
    assert "the filesystem root cannot be a run folder" in last
    last = one_line_error(cli("prepare", "demo", "--out", ".", cwd=tmp_path))  # a user's folder
    assert "was not made by encoderzoo" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


# -- 7. one folder, one lock -----------------------------------------------------------------------

def test_a_symlink_to_a_run_folder_takes_the_same_lock(tmp_path: Path) -> None:
    run = fake_run_folder(tmp_path / "runs" / "x")
    link = tmp_path / "link"
    link.symlink_to(run)
    with locked(run):
        with pytest.raises(ConfigError, match="another encoderzoo command is writing"), locked(link):
            pass
        last = one_line_error(cli("score", "demo", "--out", str(link)))
        assert "another encoderzoo command is writing this run folder" in last


# -- 11. every temporary name by one rule ----------------------------------------------------------

def test_every_temporary_name_is_made_by_the_one_helper() -> None:
    """No module makes a temporary file or folder but through fileio.temporary, whose names
    fileio.is_temporary knows (and every start removes)."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "encoderzoo").rglob("*.py")
                 if p.name != "fileio.py" and re.search(r"tempfile\.|mkdtemp|mkstemp", p.read_text())]
    assert offenders == []


def test_temporary_files_and_folders_are_recognised_and_removed(tmp_path: Path) -> None:
    model = tmp_path / "model"
    made = [fileio.temporary(model / "model.onnx"),
            fileio.temporary(model / "model.int8-block.onnx", folder=True),
            fileio.temporary(model / "model.openvino-int8.xml", folder=True)]
    (made[1] / "blocks.onnx").write_text("half written")
    with fileio.atomic_dir(tmp_path / "bin", "bin-samples") as tmp:
        made.append(tmp)
        assert fileio.is_temporary(tmp)
    kept = [model / "model.onnx", model / ".hidden-but-mine"]
    for path in kept:
        path.write_text("kept")
    assert all(fileio.is_temporary(p) for p in made[:3]) and not any(fileio.is_temporary(p) for p in kept)
    removed = clean_temporary(tmp_path)
    assert sorted(removed) == sorted(made[:3])
    assert all(p.exists() for p in kept) and (tmp_path / "bin").is_dir()
