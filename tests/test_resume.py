"""Interrupted runs: nothing looks complete, and --resume finishes with every example exactly once
and the scores of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from encoderzoo import inference
from encoderzoo.config import RunConfig
from encoderzoo.errors import ArtifactError
from encoderzoo.fileio import read_json
from encoderzoo.infer import Shards, load_outputs
from encoderzoo.pipeline import run
from encoderzoo.workspace import lock_file, partial_folder


def accuracy(out: Path) -> dict[tuple[str, str], dict[str, float]]:
    return {(r["backend"], r["precision"]): r["metrics"] for r in read_json(out / "accuracy.json")["rows"]}


def predictions(out: Path, name: str) -> list[str]:
    return (out / "predictions" / f"{name}.tsv").read_text().splitlines()


class DiesAfter:
    """A backend that is interrupted (Ctrl-C) after `batches` batches."""

    def __init__(self, backend: Any, batches: int) -> None:
        self.backend, self.left = backend, batches
        self.name, self.precision = backend.name, backend.precision

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.backend.run(feeds)  # type: ignore[no-any-return]

    def settings(self) -> dict[str, Any]:
        return self.backend.settings()  # type: ignore[no-any-return]


def cut_run(config: RunConfig, batches: int, monkeypatch: pytest.MonkeyPatch) -> RunConfig:
    """`config` run with ONNX Runtime interrupted (Ctrl-C) after `batches` batches."""
    real = inference.open_run

    def flaky(ctx: Any, run: Any) -> Any:
        session = real(ctx, run)
        if run.backend == "onnxruntime" and not isinstance(session.backend, DiesAfter):
            session.backend = DiesAfter(session.backend, batches)
        return session

    monkeypatch.setattr(inference, "open_run", flaky)
    with pytest.raises(KeyboardInterrupt):
        run(config)
    monkeypatch.undo()
    return config


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = RunConfig(recipe="demo", out=tmp_path / "whole", backends=("torch:fp32", "onnxruntime:fp32"),
                       limit=300, batch_size=8, shard_size=40, bench=False, triage=False, optimize=False,
                       e2e_runs=0)
    run(config)
    cut = cut_run(replace(config, out=tmp_path / "cut"), 10, monkeypatch)

    partial = partial_folder(cut.out)
    assert not cut.out.exists()  # no report that looks complete
    assert not (partial / "report.md").exists() and not (partial / "accuracy.json").exists()
    shards = partial / "outputs" / "onnxruntime-fp32.shards"
    assert len(list(shards.glob("shard-*.npz"))) == 2  # 10 batches of 8 = 80 rows in shards of 40
    torch_record = read_json(partial / "outputs" / "torch-fp32.json")  # finished before the cut

    run(replace(cut, resume=True))
    assert not partial.exists() and not shards.exists()
    record = read_json(cut.out / "outputs" / "onnxruntime-fp32.json")
    assert record["resumed_rows"] == 80
    assert read_json(cut.out / "outputs" / "torch-fp32.json") == torch_record  # not run again
    ids, outputs = load_outputs(cut.out / "outputs" / "onnxruntime-fp32.npz")
    whole_ids, whole_outputs = load_outputs(config.out / "outputs" / "onnxruntime-fp32.npz")
    assert list(ids) == list(whole_ids) and len(set(ids)) == 300  # every example once, in order
    np.testing.assert_allclose(outputs["logits"], whole_outputs["logits"], atol=1e-4)
    assert accuracy(cut.out) == accuracy(config.out)
    assert predictions(cut.out, "onnxruntime-fp32") == predictions(config.out, "onnxruntime-fp32")
    assert "resumed (80 of 300 rows done before)" in (cut.out / "report.md").read_text()


@pytest.mark.slow
def test_killed_process_resumes(tmp_path: Path) -> None:
    """SIGKILL in the middle of inference (nothing gets to clean up), then --resume."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "encoderzoo", "run", "demo", "--out", str(out), "--backends", "torch:fp32",
            "--limit", "480", "--batch-size", "4", "--shard-size", "16", "--no-bench", "--no-optimize",
            "--e2e-runs", "0"]
    shards = partial_folder(out) / "outputs" / "torch-fp32.shards"
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=os.environ | {"COLUMNS": "200"})
    deadline = time.monotonic() + 300
    while len(list(shards.glob("shard-*.npz"))) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists()
    done = len(Shards(shards, "", 480).done_rows())
    assert 48 <= done < 480

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300,
                             env=os.environ | {"COLUMNS": "200"})
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming torch fp32" in resumed.stderr
    record = read_json(out / "outputs" / "torch-fp32.json")
    assert record["resumed_rows"] >= done  # shards written after the count above are kept too

    whole = RunConfig(recipe="demo", out=tmp_path / "whole", backends=("torch:fp32",), limit=480,
                      batch_size=4, bench=False, optimize=False)
    run(whole)
    assert predictions(out, "torch-fp32") == predictions(whole.out, "torch-fp32")
    assert accuracy(out) == accuracy(whole.out)


def test_shards_of_another_run_are_not_resumed(tmp_path: Path) -> None:
    shards = Shards(tmp_path / "s", "key-a", total=6, shard_rows=2)
    assert len(shards.start(resume=True)) == 0
    shards.add(np.array([4, 1]), {"logits": np.ones((2, 2), dtype=np.float32)})
    shards.add(np.array([0]), {"logits": np.zeros((1, 2), dtype=np.float32)})
    shards.flush()
    again = Shards(tmp_path / "s", "key-a", total=6, shard_rows=2)
    assert sorted(again.start(resume=True)) == [0, 1, 4]
    assert len(Shards(tmp_path / "s", "key-a", total=6).start(resume=False)) == 0  # no --resume: afresh
    other = Shards(tmp_path / "s", "key-b", total=6)
    assert len(other.start(resume=True)) == 0 and not other.files()


def test_collect_needs_every_row_exactly_once(tmp_path: Path) -> None:
    shards = Shards(tmp_path / "s", "k", total=3, shard_rows=1)
    shards.start(resume=False)
    shards.add(np.array([0, 1]), {"logits": np.ones((2, 2), dtype=np.float32)})
    with pytest.raises(ArtifactError, match="1 rows missing and 0 repeated"):
        shards.collect()
    shards.add(np.array([1, 2]), {"logits": np.ones((2, 2), dtype=np.float32)})
    with pytest.raises(ArtifactError, match="0 rows missing and 1 repeated"):
        shards.collect()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    import fcntl

    from encoderzoo.errors import ConfigError

    out = tmp_path / "run"
    with lock_file(out).open("a") as held:  # beside the folder: held across the publishing rename
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another encoderzoo command is writing this run folder"):
            run(RunConfig(recipe="demo", out=out, bench=False))
    assert not partial_folder(out).exists()


@pytest.mark.slow
def test_resume_with_another_hub_checkpoint_starts_over_and_says_why(tmp_path: Path) -> None:
    """A killed run of org/model-a, resumed with org/model-c: nothing of model-a's is kept."""
    from encoderzoo.assets import asset_path
    from tests.hub_cache import add_repo, hub_env
    from tests.test_identity import shifted

    cache = tmp_path / "hub"
    add_repo(cache, "org/model-a", asset_path("demo/model"))
    add_repo(cache, "org/model-c", shifted(tmp_path / "c", (0.0, 1.0)))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "encoderzoo", "run", "demo", "--out", str(out), "--backends", "torch:fp32",
            "--limit", "240", "--batch-size", "4", "--shard-size", "16", "--no-bench", "--e2e-runs", "0",
            "--no-optimize"]
    env = os.environ | {"COLUMNS": "200"} | hub_env(cache)
    shards = partial_folder(out) / "outputs" / "torch-fp32.shards"
    child = subprocess.Popen([*args, "--checkpoint", "org/model-a"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while len(list(shards.glob("shard-*.npz"))) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = subprocess.run([*args, "--checkpoint", "org/model-c", "--resume"], capture_output=True,
                             text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "the data prepared here were made with another checkpoint" in resumed.stderr
    record = read_json(out / "outputs" / "torch-fp32.json")
    assert record["resumed_rows"] == 0  # every row is model-c's
    _, outputs = load_outputs(out / "outputs" / "torch-fp32.npz")
    whole = tmp_path / "whole"
    assert subprocess.run([*args[:6], str(whole), *args[7:], "--checkpoint", "org/model-c"],
                          capture_output=True, env=env).returncode == 0
    expected = load_outputs(whole / "outputs" / "torch-fp32.npz")[1]["logits"]
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ner", "squad2", "embed"])
def test_new_output_shapes_resume_to_the_uninterrupted_result(task: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Token logits, span logits and embeddings: a run cut after 3 batches and resumed scores as
    the uninterrupted run."""
    from tests.conftest import BERT_CASED_VOCAB
    from tests.tasks.test_embed import stsb_pairs
    from tests.tasks.test_ner import conll_file
    from tests.tasks.test_squad2 import squad2_dev

    data = {"ner": lambda: conll_file(tmp_path / "valid.txt", sentences=16, long=40),
            "squad2": lambda: squad2_dev(tmp_path / "dev-v2.0.json"),
            "embed": lambda: stsb_pairs(tmp_path / "dev.tsv", pairs=12)}[task]()
    config = RunConfig(recipe=task, out=tmp_path / "whole", random_weights="tiny",
                       tokenizer=str(BERT_CASED_VOCAB.parent), data=(str(data),), seq_len=32,
                       backends=("torch:fp32", "onnxruntime:fp32"), batch_size=2, shard_size=4, bench=False,
                       triage=False, optimize=False, e2e_runs=0)
    run(config)
    cut = cut_run(replace(config, out=tmp_path / "cut"), 3, monkeypatch)
    run(replace(cut, resume=True))
    assert read_json(cut.out / "outputs" / "onnxruntime-fp32.json")["resumed_rows"] == 4
    assert accuracy(cut.out) == accuracy(config.out)
    suffix = {"ner": ".conll", "squad2": ".json", "embed": ".tsv"}[task]
    name = f"onnxruntime-fp32{suffix}"
    assert (cut.out / "predictions" / name).read_text() == (config.out / "predictions" / name).read_text()
