"""The reference tools' per-sample layouts: prepare --format bin, and scoring ais_bench / msame
output folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoderzoo.config import RunConfig
from encoderzoo.errors import ArtifactError
from encoderzoo.features import Features
from encoderzoo.interop import read_outputs, write_bin
from encoderzoo.pipeline import run
from tests.conftest import BERT_CASED_VOCAB, cli
from tests.standin_runner import run_folder


def features(n: int = 3, seq: int = 5) -> Features:
    ids = np.arange(n * seq, dtype=np.int64).reshape(n, seq)
    return Features(example_ids=np.array([f"e{i}" for i in range(n)]),
                    arrays={"input_ids": ids, "attention_mask": np.ones_like(ids)},
                    lengths=np.full(n, seq, dtype=np.int32))


def test_bin_layout_is_one_raw_file_per_sample_and_input(tmp_path: Path) -> None:
    info = write_bin(features(), tmp_path / "bin", dtype="int32", labels=["1", "0", "1"])
    assert info["samples"] == 3 and info["inputs"] == ["input_ids", "attention_mask"]
    row = np.fromfile(tmp_path / "bin" / "input_ids" / "2.bin", dtype=np.int32)
    assert row.tolist() == [10, 11, 12, 13, 14]
    masks = sorted(p.name for p in (tmp_path / "bin" / "attention_mask").iterdir())
    assert masks == ["0.bin", "1.bin", "2.bin"]
    index = (tmp_path / "bin" / "index.tsv").read_text().splitlines()
    assert index[1:] == ["0\te0\t5\t1", "1\te1\t5\t0", "2\te2\t5\t1"]
    assert (tmp_path / "bin" / "labels.txt").read_text().splitlines() == ["1", "0", "1"]


def write_outputs(folder: Path, names: list[str], arrays: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(arrays):
        for name in names:
            array.astype(np.float32).tofile(folder / name.format(i=i))


def test_reads_ais_bench_and_msame_layouts(tmp_path: Path) -> None:
    logits = [np.array([i, -i], dtype=np.float32) for i in range(4)]
    write_outputs(tmp_path / "ais" / "2026_01_01-00_00_00", ["{i}_0.bin"], logits)
    write_outputs(tmp_path / "msame", ["{i}_output_0.bin"], logits)
    (tmp_path / "npy").mkdir()
    for i, array in enumerate(logits):
        np.save(tmp_path / "npy" / f"{i}_0.npy", array.reshape(1, 2))
    for folder in ("ais", "msame", "npy"):
        got = read_outputs(tmp_path / folder, 4, {"logits": (2,)})
        assert got["logits"].tolist() == [a.tolist() for a in logits]


def test_output_folder_errors(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    write_outputs(folder, ["{i}_0.bin"], [np.zeros(2)] * 3)
    with pytest.raises(ArtifactError, match=r"no output 0 \(logits\) for sample 3 \(expected 3_0.bin\)"):
        read_outputs(folder, 4, {"logits": (2,)})
    with pytest.raises(ArtifactError, match="outputs for sample 2 or output index beyond"):
        read_outputs(folder, 2, {"logits": (2,)})
    with pytest.raises(ArtifactError, match=r"8 bytes, expected 3 float32 values"):
        read_outputs(folder, 3, {"logits": (3,)})
    np.save(folder / "0_0.npy", np.zeros(2))
    with pytest.raises(ArtifactError, match="two files for sample 0 output 0"):
        read_outputs(folder, 3, {"logits": (2,)})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no output files named like"):
        read_outputs(tmp_path / "empty", 3, {"logits": (2,)})


# prepare --format bin, a device runner and score --outputs on the demo, ais_bench and msame, and
# the refusals of stale or foreign outputs: tests/test_ascend.py, through the generated run.sh


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ner", "squad2", "embed"])
def test_new_output_shapes_through_bin_interop(task: str, tmp_path: Path) -> None:
    """Token logits (NER), span logits with the null answer (SQuAD 2.0) and pooled embeddings
    go through prepare --format bin, a device runner and score --outputs as a run scores them."""
    from tests.tasks.test_embed import stsb_pairs
    from tests.tasks.test_ner import conll_file
    from tests.tasks.test_squad2 import squad2_dev

    data = {"ner": lambda: conll_file(tmp_path / "valid.txt", long=40),
            "squad2": lambda: squad2_dev(tmp_path / "dev-v2.0.json"),
            "embed": lambda: stsb_pairs(tmp_path / "dev.tsv", pairs=9)}[task]()
    out = tmp_path / "run"
    options = ["--random-weights", "tiny", "--tokenizer", str(BERT_CASED_VOCAB.parent), "--data", str(data),
               "--seq-len", "32"]
    run(RunConfig(recipe=task, out=out, random_weights="tiny", tokenizer=str(BERT_CASED_VOCAB.parent),
                  data=(str(data),), seq_len=32, backends=("torch:fp32", "onnxruntime:fp32"), optimize=False,
                  bench=False, triage=False, e2e_runs=0))
    prepared = cli("prepare", task, "--out", str(out), *options, "--format", "bin")
    assert prepared.returncode == 0, prepared.stderr
    rows = {(r["backend"], r["precision"]): r["metrics"]
            for r in json.loads((out / "accuracy.json").read_text())["rows"]}
    device = run_folder(out / "model" / "model.onnx", out / "bin", tmp_path / "device", "ais_bench", False)
    scored = cli("score", task, "--out", str(out), "--outputs", str(device))
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    for metric, value in rows[("onnxruntime", "fp32")].items():
        assert result[metric] == pytest.approx(100 * value, abs=1e-6), metric
