"""Every cache key knows which checkpoint it is: hub ids by the snapshot they resolved to, stage
commands by the prepared data's recomputed key, random models by their tokenizer's bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from encoderzoo.assets import asset_path
from encoderzoo.config import RunConfig
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError
from encoderzoo.fileio import mark
from encoderzoo.infer import load_outputs
from encoderzoo.stages import infer, prepare
from tests.conftest import BERT_CASED_VOCAB, SST2_DEV, cli
from tests.hub_cache import add_repo, hub_env

DEMO = asset_path("demo/model")
QUICK = ["--limit", "40", "--backends", "torch:fp32,onnxruntime:fp32", "--no-bench",
         "--no-optimize", "--e2e-runs", "0"]


def shifted(dst: Path, delta: tuple[float, float], src: Path = DEMO) -> Path:
    """A copy of the demo whose classifier bias is shifted by `delta`: another model, same shapes."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    bias = weights["classifier.bias"]
    weights["classifier.bias"] = bias + torch.tensor(delta, dtype=bias.dtype)
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def logits(out: Path, name: str) -> np.ndarray:
    return load_outputs(out / "outputs" / f"{name}.npz")[1]["logits"]


@pytest.mark.slow
def test_two_hub_checkpoints_in_one_run_folder_each_get_their_own_graph(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    add_repo(cache, "org/model-a", DEMO)
    add_repo(cache, "org/model-c", shifted(tmp_path / "c", (0.0, 1.0)))
    out = tmp_path / "run"
    first = cli("run", "demo", "--checkpoint", "org/model-a", "--out", str(out), *QUICK, env=hub_env(cache))
    assert first.returncode == 0, first.stderr[-2000:]
    a = logits(out, "onnxruntime-fp32")
    second = cli("run", "demo", "--checkpoint", "org/model-c", "--out", str(out), *QUICK, env=hub_env(cache))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "export: reusing" not in second.stderr and "infer: reusing" not in second.stderr
    c = logits(out, "onnxruntime-fp32")
    np.testing.assert_allclose(c - a, np.tile([0.0, 1.0], (40, 1)), atol=2e-3)  # model-c's own graph
    np.testing.assert_allclose(c, logits(out, "torch-fp32"), atol=1e-4)
    report = json.loads((out / "report.json").read_text())
    assert report["checkpoint"]["location"] == "org/model-c" and len(report["checkpoint"]["revision"]) == 40
    third = cli("run", "demo", "--checkpoint", "org/model-c", "--out", str(out), *QUICK, env=hub_env(cache))
    assert "export: reusing" in third.stderr  # the same snapshot: its graph is reused


def test_a_stage_refuses_data_prepared_for_another_checkpoint(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    prepare.run(RunContext(RunConfig(recipe="demo", out=out, data=(str(SST2_DEV),), limit=8)))  # uncased
    mark(out, "run")  # as `encoderzoo prepare` marks the folder it made
    other = RunContext(RunConfig(recipe="demo", out=out, checkpoint=str(tiny_bert), backends=("torch:fp32",)))
    with pytest.raises(ArtifactError, match="prepared data were made for another checkpoint"):
        infer.run(other)
    result = cli("infer", "demo", "--out", str(out), "--checkpoint", str(tiny_bert),
                 "--backends", "torch:fp32")
    assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith(
        f"error: {out / 'data' / 'prepare.json'}: the prepared data were made for another checkpoint")
    same = RunContext(RunConfig(recipe="demo", out=out, backends=("torch:fp32",), bench=False))
    assert infer.run(same)["examples"] == 8  # the checkpoint it was prepared with: fine


def test_random_weights_are_rebuilt_for_another_tokenizer(tmp_path: Path) -> None:
    if not BERT_CASED_VOCAB.exists():
        pytest.skip(f"{BERT_CASED_VOCAB} is not available")
    out = tmp_path / "run"

    def build(tokenizer: Path) -> Path:
        ctx = RunContext(RunConfig(recipe="bert-base-cased-sst2", out=out, random_weights="tiny",
                                   tokenizer=str(tokenizer), data=(str(SST2_DEV),), limit=4))
        return Path(ctx.source.checkpoint().source)

    cased = tmp_path / "cased"
    shutil.copytree(BERT_CASED_VOCAB.parent, cased)
    folder = build(cased)
    first = (folder / "model.safetensors").stat().st_mtime_ns
    assert (build(cased) / "model.safetensors").stat().st_mtime_ns == first  # same tokenizer: kept
    uncased = tmp_path / "uncased"
    uncased.mkdir()
    shutil.copy(DEMO / "vocab.txt", uncased / "vocab.txt")
    build(uncased)
    assert (folder / "model.safetensors").stat().st_mtime_ns != first
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(folder)) == 30522  # the new tokenizer's
