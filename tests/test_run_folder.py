"""The run folder's life: encoderzoo never deletes what it did not create, an error never
discards finished work, one command at a time writes a folder, a kill leaves nothing behind
that a later run would trust, and what it writes is durable and readable by others."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from encoderzoo import fileio, inference
from encoderzoo.assets import asset_path
from encoderzoo.config import RunConfig
from encoderzoo.errors import ConfigError
from encoderzoo.fileio import MARKER, atomic_dir, umask
from encoderzoo.pipeline import run
from encoderzoo.workspace import locked, partial_folder, recover
from tests.conftest import cli

QUICK = ["--limit", "16", "--backends", "torch:fp32,onnxruntime:fp32", "--no-bench",
         "--no-optimize"]


@pytest.mark.slow
def test_an_out_folder_encoderzoo_did_not_make_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    result = cli("run", "demo", "--out", str(out), *QUICK)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"error: --out {out}: the folder exists and was not "
                                                     "made by encoderzoo")
    assert "--overwrite" in result.stderr and (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no partial folder, no lock left
    assert cli("run", "demo", "--out", str(out), *QUICK, "--dry-run").returncode == 2  # the same error
    replaced = cli("run", "demo", "--out", str(out), *QUICK, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert not (out / "thesis.tex").exists() and json.loads((out / MARKER).read_text())["kind"] == "run"
    again = cli("run", "demo", "--out", str(out), *QUICK)  # now it is a run folder of ours
    assert again.returncode == 0, again.stderr[-2000:]


def test_the_checkpoint_folder_as_out_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model"
    shutil.copytree(asset_path("demo/model"), checkpoint)
    for extra in ([], ["--overwrite"]):
        result = cli("run", "demo", "--checkpoint", str(checkpoint), "--out", str(checkpoint), *QUICK, *extra)
        assert result.returncode == 2 and "error: --out" in result.stderr.splitlines()[-1]
        assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "config.json").is_file()
    stage = cli("prepare", "demo", "--out", str(checkpoint))
    assert stage.returncode == 2 and "was not made by encoderzoo" in stage.stderr
    assert not (checkpoint / "data").exists()


@pytest.mark.slow
def test_an_error_in_a_later_stage_keeps_finished_work_for_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(recipe="demo", out=tmp_path / "run", limit=16, bench=False, triage=False,
                       backends=("torch:fp32", "onnxruntime:fp32"))
    real = inference.open_run

    def broken(ctx: Any, run: Any) -> Any:
        if run.backend == "onnxruntime":
            raise ConfigError("onnxruntime: the session could not start (a stand-in failure)")
        return real(ctx, run)

    monkeypatch.setattr(inference, "open_run", broken)
    kept = r"stand-in failure\); the finished stages are kept in .*\.run\.partial: fix the cause and rerun"
    with pytest.raises(ConfigError, match=kept):
        run(config)
    partial = partial_folder(config.out)
    assert (partial / "outputs" / "torch-fp32.npz").is_file() and not config.out.exists()
    finished = (partial / "outputs" / "torch-fp32.npz").stat().st_mtime_ns
    monkeypatch.setattr(inference, "open_run", real)
    from dataclasses import replace

    run(replace(config, resume=True))
    assert (config.out / "outputs" / "torch-fp32.npz").stat().st_mtime_ns == finished  # not redone
    assert (config.out / "outputs" / "onnxruntime-fp32.npz").is_file() and not partial.exists()


@pytest.mark.slow
def test_precisions_the_machine_cannot_run_fail_before_anything_is_written(tmp_path: Path) -> None:
    args = ["run", "demo", "--out", str(tmp_path / "run"), "--backends",
            "torch:fp32,onnxruntime:fp32,onnxruntime:fp16", "--device", "cpu", "--limit", "8"]
    for extra in ([], ["--dry-run"]):
        result = cli(*args, *extra)
        assert result.returncode == 2
        others = "fp32, bf16 or int8" if _bf16() else "fp32 or int8"
        assert result.stderr.splitlines()[-1] == (
            "error: onnxruntime:fp16: it runs on a CUDA GPU and none is in use here (--device cpu); "
            f"use {others}")
    assert list(tmp_path.iterdir()) == []


def _bf16() -> bool:
    from encoderzoo.devices import Machine

    return Machine.here("cpu").native_bf16


def test_one_command_at_a_time_per_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with locked(out):
        result = cli("infer", "demo", "--out", str(out), "--backends", "torch:fp32")
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == (
            f"error: {out}: another encoderzoo command is writing this run folder; wait for it to finish "
            "or pass another --out")
        with pytest.raises(ConfigError, match="another encoderzoo command"):
            run(RunConfig(recipe="demo", out=out, limit=4))
    assert not list(tmp_path.iterdir())  # the lock file goes with the lock


def test_a_swap_stopped_halfway_is_finished_by_the_next_command(tmp_path: Path) -> None:
    out = tmp_path / "run"
    moved = tmp_path / ".run.old-4242"  # `out` moved aside, the new run not yet in place
    moved.mkdir()
    fileio.mark(moved, "run")
    (moved / "report.md").write_text("the earlier run")
    recover(out)
    assert (out / "report.md").read_text() == "the earlier run" and not moved.exists()
    moved.mkdir()
    fileio.mark(moved, "run")
    recover(out)  # `out` is there: what was moved aside is an old copy
    assert not moved.exists() and out.is_dir()
    stranger = tmp_path / ".run.old-7"  # not ours: never touched
    stranger.mkdir()
    recover(out)
    assert stranger.is_dir()


def test_publishing_a_folder_is_one_atomic_exchange(tmp_path: Path) -> None:
    old, new = tmp_path / "out", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "a").write_text("old")
    (new / "a").write_text("new")
    fileio.publish(new, old)
    assert (old / "a").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.slow
def test_temporary_files_of_a_killed_run_are_removed_and_never_carried_over(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli("run", "demo", "--out", str(out), *QUICK).returncode == 0
    # what each kind of killed write leaves: a file (atomic_path, the optimizer's result), a
    # scratch folder (int8-block's, NNCF's IR, an OpenVINO import), all named by one rule
    fileio.temporary(out / "model" / "model.onnx").write_text("half written")
    fileio.temporary(out / "model" / "model.optimized.onnx.result.json").write_text("{")
    partial = partial_folder(out)
    scratch = fileio.temporary(partial / "model" / "model.int8-block.onnx", folder=True)
    (scratch / "blocks.onnx").write_text("half written")
    fileio.temporary(partial / "model" / "model.int8.xml", folder=True)
    fileio.mark(partial, "run")
    fileio.temporary(partial / "data" / "features.npz").write_text("half written")
    result = cli("run", "demo", "--out", str(out), *QUICK, "--resume")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "left by a stopped run" in result.stderr
    leftovers = [p for p in out.rglob(".*") if p.name != MARKER]
    assert leftovers == [] and not partial.exists()


def test_outputs_honour_the_umask_and_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    target = tmp_path / "sub" / "file.json"
    fileio.write_json(target, {"a": 1})
    assert len(synced) == 2  # the file, then its folder after the rename
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask()
    with atomic_dir(tmp_path / "folder", "test") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask()
    with pytest.raises(ConfigError, match="was not made by encoderzoo"), atomic_dir(tmp_path / "sub", "test"):
        pass
    assert target.is_file()


@pytest.mark.slow
def test_convert_and_bin_refuse_folders_they_did_not_make(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("convert", "spanbert", str(tmp_path / "missing.bin"), "--out", str(out))
    assert result.returncode == 2 and "was not made by encoderzoo" in result.stderr.splitlines()[-1]
    run_folder = tmp_path / "run"
    assert cli("prepare", "demo", "--out", str(run_folder), "--limit", "4").returncode == 0
    (run_folder / "bin").mkdir()
    (run_folder / "bin" / "keep.txt").write_text("mine")
    result = cli("prepare", "demo", "--out", str(run_folder), "--limit", "4", "--format", "bin")
    assert result.returncode == 2 and "the bin folder" in result.stderr.splitlines()[-1]
    assert (out / "keep.txt").is_file() and (run_folder / "bin" / "keep.txt").is_file()


def test_the_optimizer_child_dies_with_its_parent(tmp_path: Path) -> None:
    """kill -9 of a run leaves no optimizer behind: the child asks the kernel for SIGKILL
    when its parent dies."""
    pid_file = tmp_path / "child.pid"
    child_script = tmp_path / "child.py"
    child_script.write_text(
        "import os, sys, time\nfrom encoderzoo.optimize import die_with_parent\n"
        f"die_with_parent(int(sys.argv[1]))\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n")
    parent_code = ("import os, subprocess, sys, time\n"
                   f"subprocess.Popen([sys.executable, {str(child_script)!r}, str(os.getpid())])\n"
                   "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.time() + 30
    while not pid_file.is_file() and time.time() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")
