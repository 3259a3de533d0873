"""The Ascend hand-off (`export --ascend`): the graph ATC gets declares exactly the prepared
inputs, run.sh names exactly the prepared files, and its whole round trip — atc, ais_bench at
every batch size, msame, score --outputs — run with stand-ins for the device tools
(tests/standin_runner.py) reproduces the run's own scores, as rows of the run's report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoderzoo.ascend import static_graph
from encoderzoo.config import RunConfig
from encoderzoo.errors import ArtifactError
from encoderzoo.pipeline import run
from encoderzoo.recipes import RECIPES
from tests.conftest import BERT_CASED_VOCAB, LOCAL_DATA, ROOT, cli

STANDIN = f"{sys.executable} {ROOT / 'tests' / 'standin_runner.py'}"
TOOLS = {"ATC": f"{STANDIN} atc", "AIS_BENCH": f"{STANDIN} ais_bench", "MSAME": f"{STANDIN} msame",
         "ENCODERZOO": f"{sys.executable} -m encoderzoo"}


def tiny_graph(path: Path, domain: str = "") -> Path:
    """y = 2 * float(input_ids) + float(attention_mask): two int64 inputs, dynamic dims."""
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
              for n in ("input_ids", "attention_mask")]
    nodes = [helper.make_node("Cast", ["input_ids"], ["a"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["attention_mask"], ["b"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["a", "a"], ["c"]),
             helper.make_node("Add", ["c", "b"], ["y"], domain=domain)]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq"])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", inputs, [output]), opset_imports=opsets), path)
    return path


def test_the_graph_declares_the_prepared_inputs_and_takes_the_files_type(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    source = tiny_graph(tmp_path / "model.onnx")
    info = {"inputs": ["input_ids", "attention_mask"], "shape": [1, 5], "dtype": "int32", "samples": 3}
    made = static_graph(source, tmp_path / "ascend.onnx", info)
    assert made["cast_inputs"] and made["opset"] == 17 and made["unlisted_operators"] == []
    graph = onnx.load(tmp_path / "ascend.onnx").graph
    for value in graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT32
        assert [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] == ["batch", 5]
    ids = np.arange(10).reshape(2, 5)
    want = ort.InferenceSession(str(source)).run(None, {"input_ids": ids, "attention_mask": ids * 0 + 1})[0]
    got = ort.InferenceSession(str(tmp_path / "ascend.onnx")).run(
        None, {"input_ids": ids.astype(np.int32), "attention_mask": np.ones_like(ids, dtype=np.int32)})[0]
    assert np.array_equal(got, want)
    with pytest.raises(ArtifactError, match=r"are not the prepared ones \['attention_mask', 'input_ids'\]"):
        static_graph(source, tmp_path / "x.onnx", info | {"inputs": ["attention_mask", "input_ids"]})
    with pytest.raises(ArtifactError, match="has 2 dimensions, the prepared files 3"):
        static_graph(source, tmp_path / "x.onnx", info | {"shape": [1, 4, 5]})
    with pytest.raises(ArtifactError, match=r"domain 'com\.microsoft', which ATC does not read"):
        static_graph(tiny_graph(tmp_path / "fused.onnx", "com.microsoft"), tmp_path / "x.onnx", info)


def commands(script: Path) -> dict[str, list[str]]:
    """run.sh's tool lines, by tool."""
    found: dict[str, list[str]] = {"atc": [], "ais_bench": [], "msame": [], "score": []}
    for line in script.read_text().splitlines():
        for tool, mark in (("atc", "$ATC "), ("ais_bench", "$AIS_BENCH "), ("msame", "$MSAME "),
                           ("score", "$ENCODERZOO score ")):
            if mark in line:
                found[tool].append(line)
    return found


def run_script(out: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(out / "ascend" / "run.sh"), mode], capture_output=True, text=True,
                          timeout=600, env=os.environ | TOOLS | {"COLUMNS": "200"})


SEEDS = sorted(r.name for r in RECIPES.values() if r.kind == "seed" and r.name != "demo")  # demo: below


@pytest.mark.slow
@pytest.mark.parametrize("name", SEEDS)
def test_every_seed_preset_hands_off_exactly_its_prepared_inputs(
    name: str, family_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    recipe, out = RECIPES[name], tmp_path / "run"
    dtype = "int32" if recipe.task == "mnli" else "int64"  # one preset through the cast
    tokenizer = str(family_tokenizers[recipe.family])
    made = cli("export", name, "--random-weights", "tiny", "--tokenizer", tokenizer, "--data",
               str(LOCAL_DATA[recipe.task]), "--limit", "6", "--seq-len", "48", "--out", str(out),
               "--ascend", "--batch-sizes", "1,4", "--bin-dtype", dtype)
    assert made.returncode == 0, made.stderr
    bin_info = json.loads((out / "bin" / "bin.json").read_text())
    names, shape = bin_info["inputs"], bin_info["shape"]
    handoff = json.loads((out / "ascend" / "handoff.json").read_text())
    assert handoff["unlisted_operators"] == [] and handoff["inputs"] == names and handoff["dtype"] == dtype
    assert bin_info["dtype"] == dtype and shape[-1] == 48
    found = commands(out / "ascend" / "run.sh")
    shapes = [re.search(r"--input_shape='([^']*)'", line)[1] for line in found["atc"]]  # type: ignore[index]
    assert shapes == [";".join(f"{n}:{b},{','.join(map(str, shape[1:]))}" for n in names) for b in (1, 4)]
    folders = ",".join(f"$BIN/{n}" for n in names)
    for line in found["ais_bench"][:2] + found["msame"]:
        assert f'--input "{folders}"' in line
    for n in names:  # every folder named holds one file per sample
        assert len(list((out / "bin" / n).glob("*.bin"))) == bin_info["samples"]
    assert found["score"] == [f'  $ENCODERZOO score {name} --out "$RUN" --outputs "$1"']
    atc = run_script(out, "convert")  # the stand-in refuses names, order or dims other than the graph's
    assert atc.returncode == 0, atc.stderr[-2000:]
    assert sorted(p.name for p in (out / "ascend" / "om").iterdir()) == ["model_bs1.om", "model_bs4.om"]


def demo_checks(out: Path, exported: str) -> None:
    """The samples are the run's own (prepared once, labels in sample order); ais_bench's own
    zero inputs time each OM model; outputs older than the samples, or written for other prepared
    data, are refused, never scored against the wrong examples."""
    assert "prepare: reusing data/" in exported
    bin_dir = out / "bin"
    examples = [json.loads(line) for line in (out / "data" / "examples.jsonl").read_text().splitlines()]
    index = [line.split("\t") for line in (bin_dir / "index.tsv").read_text().splitlines()[1:]]
    gold = {e["id"]: e["label"] for e in examples}
    assert (bin_dir / "labels.txt").read_text().splitlines() == [gold[row[1]] for row in index]
    perf = run_script(out, "perf")
    assert perf.returncode == 0 and perf.stdout.count("throughput") == 2, perf.stderr[-2000:]
    device = out / "ascend" / "outputs" / "ais_bench_bs1"
    old = (bin_dir / "bin.json").stat().st_mtime - 60
    os.utime(device / "0_0.bin", (old, old))
    scored = cli("score", "demo", "--out", str(out), "--outputs", str(device))
    assert scored.returncode == 2 and "older than the samples" in scored.stderr.splitlines()[-1]
    again = cli("prepare", "demo", "--out", str(out), "--limit", "50")  # other data, bin/ not rewritten
    assert again.returncode == 0, again.stderr
    scored = cli("score", "demo", "--out", str(out), "--outputs", str(out / "ascend/outputs/msame_bs1"))
    assert scored.returncode == 2 and "were written for other prepared data" in scored.stderr.splitlines()[-1]


CASES = {  # task: the run's options, the hand-off's --bin-dtype
    "demo": lambda tmp: ({"recipe": "demo", "limit": 60}, "int64"),
    "squad": lambda tmp: ({"recipe": "spanbert-base-cased-squad1", "random_weights": "tiny",
                           "tokenizer": str(BERT_CASED_VOCAB.parent), "data": (str(LOCAL_DATA["squad"]),),
                           "limit": 8, "seq_len": 64}, "int64"),
    "ner": lambda tmp: ({"recipe": "ner", "random_weights": "tiny", "tokenizer": str(BERT_CASED_VOCAB.parent),
                         "data": (str(_conll(tmp)),), "seq_len": 32}, "int32"),
}


def _conll(tmp: Path) -> Path:
    from tests.tasks.test_ner import conll_file

    return conll_file(tmp / "valid.txt", long=40)


def _flags(options: dict[str, object]) -> list[str]:
    flags = []
    for key, value in options.items():
        if key != "recipe":
            for item in value if isinstance(value, tuple) else (value,):
                flags += [f"--{key.replace('_', '-')}", str(item)]
    return flags


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_standin_round_trip_reproduces_the_runs_scores(case: str, tmp_path: Path) -> None:
    """Classification, SQuAD windows and NER: every batch size through ais_bench, batch 1
    through msame; each a row of the run equal to ONNX Runtime's on the same graph."""
    options, dtype = CASES[case](tmp_path)
    out = tmp_path / "run"
    run(RunConfig(out=out, backends=("torch:fp32", "onnxruntime:fp32"), optimize=False, bench=False,
                  triage=False, e2e_runs=0, **options))  # type: ignore[arg-type]
    made = cli("export", str(options["recipe"]), "--out", str(out), *_flags(options), "--ascend",
               "--batch-sizes", "1,4", "--bin-dtype", dtype)
    assert made.returncode == 0, made.stderr
    if case == "squad":
        assert json.loads((out / "bin" / "bin.json").read_text())["samples"] > 8  # windows, not questions
    for mode in ("ais_bench", "msame"):
        device = run_script(out, mode)
        assert device.returncode == 0, device.stderr[-2000:]
    accuracy = json.loads((out / "accuracy.json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in accuracy["rows"]}
    reference = rows[("onnxruntime", "fp32")]["metrics"]
    for name in ("ais_bench_bs1", "ais_bench_bs4", "msame_bs1"):
        row = rows[("device", name)]
        for metric, value in reference.items():
            assert row["metrics"][metric] == pytest.approx(value, abs=1e-6), (name, metric)
        assert row["vs_torch"]["agreement"] == rows[("onnxruntime", "fp32")]["vs_torch"]["agreement"]
        assert f"| device | {name} |" in (out / "report.md").read_text()
    if case == "demo":
        demo_checks(out, made.stderr)
    # the hand-off is not replaced over what the device made, unless asked
    again = cli("export", str(options["recipe"]), "--out", str(out), *_flags(options), "--ascend")
    assert again.returncode == 2 and "holds what the device made" in again.stderr.splitlines()[-1]
