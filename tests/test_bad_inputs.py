"""The bad-input corpus: every case ends in one line `error: WHERE: WHAT; FIX` on stderr, a
non-zero exit, no traceback, and no output left behind (no run folder, no partial folder)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from encoderzoo import cli
from encoderzoo.assets import asset_path
from encoderzoo.fileio import mark
from tests.conftest import BERT_CASED_VOCAB, ROBERTA_VOCAB, needs_shared

DEMO = asset_path("demo/model")
SQUAD = ["prepare", "spanbert-base-cased-squad1", "--random-weights", "tiny",
         "--tokenizer", str(BERT_CASED_VOCAB.parent)]
QUICK = ["--backends", "torch:fp32", "--no-bench", "--limit", "4"]


def main(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
         ) -> tuple[int, str]:
    """The real entry point in-process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["encoderzoo", *args])
    monkeypatch.setitem(cli._state, "debug", False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return int(exit_info.value.code or 0), capsys.readouterr().err


def squad(context: str = "The cat sat on the mat.", answer: str = "the mat", start: int = 15) -> dict:
    question = {"id": "q1", "question": "Where did the cat sit?",
                "answers": [{"text": answer, "answer_start": start}]}
    paragraph = {"context": context, "qas": [question]}
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [paragraph]}]}


def checkpoint_without(tmp: Path, *names: str) -> Path:
    folder = tmp / "model"
    shutil.copytree(DEMO, folder, ignore=lambda _d, files: [f for f in files if f in names])
    return folder


def with_config(tmp: Path, **changes: object) -> Path:
    folder = checkpoint_without(tmp)
    config = json.loads((folder / "config.json").read_text()) | changes
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def with_tokenizer_of(tmp: Path, other: Path) -> Path:
    folder = checkpoint_without(tmp, "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                                "special_tokens_map.json")
    for file in other.iterdir():
        shutil.copy(file, folder / file.name)
    return folder


# (name, files to write {name: text | bytes | JSON object}, arguments (FILE = tmp/<name>), message)
TSV = "sentence\tlabel\n"
CASES: list[tuple[str, dict[str, object], list[str], str]] = [
    ("empty TSV", {"d.tsv": ""}, ["run", "demo", "--data", "FILE:d.tsv"], "d.tsv: the file is empty"),
    ("header only", {"d.tsv": TSV}, ["run", "demo", "--data", "FILE:d.tsv"], "a header but no data rows"),
    ("renamed column", {"d.tsv": "text\tlabel\ngood\t1\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 1: no column 'sentence' in the header (found: text, label)"),
    ("missing column", {"d.tsv": "sentence\ngood\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 1: no column 'label'"),
    ("unknown label", {"d.tsv": TSV + "good\t1\nbad\tnegative\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 3: label 'negative' is not one of 0, 1"),
    ("empty text", {"d.tsv": TSV + "good\t1\n \t0\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 3: empty 'sentence'"),
    ("truncated row", {"d.tsv": TSV + "good\t1\nbad movie"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 3: 1 tab-separated fields, the header has 2"),
    ("stray tab", {"d.tsv": TSV + "good\t1\nbad\tmovie\t0\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 3: 3 tab-separated fields"),
    ("not UTF-8", {"d.tsv": TSV.encode() + b"caf\xe9\t1\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 2: bytes that are not UTF-8"),
    ("blank line inside", {"d.tsv": TSV + "good\t1\n\nbad\t0\n"}, ["run", "demo", "--data", "FILE:d.tsv"],
     "d.tsv, line 3: empty line inside the data"),
    ("duplicate ids", {"d.tsv": "index\tsentence\tlabel\n7\tgood\t1\n7\tbad\t0\n"},
     ["run", "demo", "--data", "FILE:d.tsv"], "d.tsv, line 3: example id '7' appears twice"),
    ("missing data file", {}, ["run", "demo", "--data", "FILE:nothing.tsv"], "nothing.tsv: no such file"),
    ("truncated JSON", {"s.json": '{"version": "1.1", "data": [{"title": "t", "paragraphs": ['},
     [*SQUAD, "--data", "FILE:s.json"], "s.json, line 1, column 59: not valid JSON"),
    ("JSON without data", {"s.json": {"version": "1.1"}}, [*SQUAD, "--data", "FILE:s.json"],
     "s.json: no 'data' list at the top level"),
    ("answer not in context", {"s.json": squad(start=3)}, [*SQUAD, "--data", "FILE:s.json"],
     "question q1 (data[0].paragraphs[0].qas[0]): answer 'the mat' is not at answer_start 3"),
    ("JSON not UTF-8", {"s.json": b'{"data": "\xff"}'}, [*SQUAD, "--data", "FILE:s.json"], "s.json"),
    ("checkpoint without weights", {}, ["run", "demo", "--checkpoint", "CKPT:no-weights", *QUICK],
     "no weights (model.safetensors or pytorch_model.bin)"),
    ("checkpoint without config", {}, ["run", "demo", "--checkpoint", "CKPT:no-config", *QUICK],
     "no config.json"),
    ("another model's tokenizer", {}, ["run", "demo", "--checkpoint", "CKPT:roberta-tokenizer", *QUICK],
     "has 5 tokens but"),
    ("unsupported architecture", {}, ["run", "demo", "--checkpoint", "CKPT:gpt2", *QUICK],
     "a 'gpt2' model, which encoderzoo does not run"),
    ("code in the checkpoint", {}, ["run", "demo", "--checkpoint", "CKPT:auto-map", *QUICK],
     "pass --trust-remote-code if you trust it"),
    ("batch size 0", {}, ["run", "demo", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("sequence above the maximum", {}, ["run", "demo", "--seq-len", "1024"],
     "--seq-len 1024 is above the model's maximum of 512 tokens"),
    ("sequence too short for the text", {}, ["run", "demo", "--seq-len", "1", *QUICK],
     "--seq-len 1 leaves no room for the text: the tokenizer adds 2 special tokens"),
    ("RoBERTa sequence above 512", {}, ["bench", "roberta-base-sst2", "--random-weights", "tiny",
                                        "--tokenizer", str(ROBERTA_VOCAB), "--seq-lens", "514",
                                        "--backends", "torch:fp32"],
     "--seq-lens 514 is above the model's maximum of 512 tokens (max_position_embeddings 514 - padding_idx"),
    ("unknown backend", {}, ["run", "demo", "--backends", "torch,tensorrt"], "unknown backend 'tensorrt'"),
    ("unknown precision", {}, ["run", "demo", "--backends", "torch:int4"], "int4"),
    ("unknown recipe", {}, ["run", "bert-large"], "unknown recipe 'bert-large'"),
    ("config: unknown option", {"c.toml": "batch-sise = 8\n"}, ["run", "demo", "--config", "FILE:c.toml"],
     "c.toml: unknown option 'batch-sise'; did you mean 'batch-size'?"),
    ("config: wrong type", {"c.toml": 'batch-size = "8"\n'}, ["run", "demo", "--config", "FILE:c.toml"],
     "c.toml: batch-size = '8': expected an integer"),
    ("config: not TOML", {"c.toml": "batch-size = \n"}, ["run", "demo", "--config", "FILE:c.toml"],
     "c.toml: not valid TOML"),
    ("config: not YAML", {"c.yaml": "backends: [torch\n"}, ["run", "demo", "--config", "FILE:c.yaml"],
     "c.yaml, line 2: not valid YAML"),
    ("config: impossible value", {"c.toml": "batch-size = 0\n"}, ["run", "demo", "--config", "FILE:c.toml"],
     "--batch-size must be >= 1, got 0"),
    ("config: missing file", {}, ["run", "demo", "--config", "FILE:none.toml"],
     "none.toml: no such configuration file"),
    ("graph without a tokenizer", {"g.onnx": "x"}, ["run", "sst2", "--onnx", "FILE:g.onnx"],
     "g.onnx: pass --tokenizer FOLDER (the tokenizer the graph was exported with) or --checkpoint"),
    ("graph that is not ONNX", {"g.onnx": "not a graph"},
     ["run", "sst2", "--onnx", "FILE:g.onnx", "--tokenizer", str(BERT_CASED_VOCAB.parent)],
     "g.onnx: not a valid ONNX model"),
    ("IR without its weights", {"g.xml": "<net/>"},
     ["run", "sst2", "--openvino", "FILE:g.xml", "--tokenizer", str(BERT_CASED_VOCAB.parent)],
     "an OpenVINO IR is FILE.xml with FILE.bin beside it"),
    ("input map without a graph", {}, ["run", "demo", "--input-map", "a=input_ids"],
     "--input-map names the inputs of an --onnx or --openvino graph"),
    ("family without random weights", {}, ["run", "demo", "--family", "electra"],
     "--family picks the architecture of --random-weights"),
    ("unknown family", {}, ["run", "sst2", "--random-weights", "tiny", "--family", "gpt2"],
     "unknown model family 'gpt2'"),
    ("classify without columns", {"d.csv": "text,label\na,b\n"}, ["run", "classify", "--data", "FILE:d.csv"],
     "pass --text-column NAME and --label-column NAME"),
    ("classify: a missing column", {"d.csv": "text,label\na,1\n"},
     ["run", "classify", "--data", "FILE:d.csv", "--text-column", "sentence", "--label-column", "label",
      "--random-weights", "tiny", "--tokenizer", str(BERT_CASED_VOCAB.parent), "--labels", "a,b", *QUICK],
     "d.csv, line 2: no column 'sentence' (found: text, label)"),
    ("stsb: a score that is not a number",
     {"dev.tsv": "index\tsentence1\tsentence2\tscore\n0\ta cat\ta dog\tx\n"},
     ["run", "stsb", "--data", "FILE:dev.tsv", "--random-weights", "tiny", "--tokenizer",
      str(BERT_CASED_VOCAB.parent), *QUICK], "dev.tsv, line 2: 'score' is 'x', not a number"),
    ("cola: a row of 3 fields", {"dev.tsv": "gj04\t1\ta fine sentence\n"},
     ["run", "cola", "--data", "FILE:dev.tsv", "--random-weights", "tiny", "--tokenizer",
      str(BERT_CASED_VOCAB.parent), *QUICK], "dev.tsv, line 1: 3 tab-separated fields, the layout has 4"),
]
CHECKPOINTS = {
    "no-weights": lambda tmp: checkpoint_without(tmp, "model.safetensors"),
    "no-config": lambda tmp: checkpoint_without(tmp, "config.json"),
    "roberta-tokenizer": lambda tmp: with_tokenizer_of(tmp, ROBERTA_VOCAB),
    "gpt2": lambda tmp: with_config(tmp, model_type="gpt2"),
    "auto-map": lambda tmp: with_config(tmp, model_type="custom-bert",
                                        auto_map={"AutoConfig": "custom.Config"}),
}


@needs_shared(ROBERTA_VOCAB)
@needs_shared(BERT_CASED_VOCAB)
@pytest.mark.parametrize(("files", "args", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing_behind(
    tmp_path: Path, files: dict[str, object], args: list[str], message: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, content in files.items():
        path = inputs / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
    resolved = []
    for arg in args:
        if arg.startswith("FILE:"):
            arg = str(inputs / arg.removeprefix("FILE:"))
        elif arg.startswith("CKPT:"):
            arg = str(CHECKPOINTS[arg.removeprefix("CKPT:")](inputs))
        resolved.append(arg)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "run"
    code, stderr = main([*resolved, "--out", str(out)], capsys, monkeypatch)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.rstrip("\n").splitlines()[-1]  # progress lines may come before it
    assert last.startswith("error: ") and message in last, last
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_every_case_is_distinct() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 25


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of the demo, prepared and exported (8 examples)."""
    out = tmp_path_factory.mktemp("exported") / "run"
    from encoderzoo.config import RunConfig
    from encoderzoo.context import RunContext
    from encoderzoo.stages import prepare

    ctx = RunContext(RunConfig(recipe="demo", out=out, limit=8))
    prepare.run(ctx)
    ctx.store.get("onnx")
    return out


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_onnx_file_is_one_line(exported: Path, tmp_path: Path, damage: str,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    shutil.copytree(exported, out)
    mark(out, "run")  # a copy proves nothing until encoderzoo marks it (here: as if it made it)
    onnx_file = out / "model" / "model.onnx"
    data = onnx_file.read_bytes()
    onnx_file.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x08\x07not onnx" * 99,
                           "empty": b""}[damage])
    code, stderr = main(["infer", "demo", "--out", str(out), "--backends", "onnxruntime:fp32"],
                        capsys, monkeypatch)
    last = stderr.rstrip("\n").splitlines()[-1]
    assert code == 2 and "Traceback" not in stderr
    assert last.startswith(f"error: {onnx_file}: not the file encoderzoo built and checked (its SHA-256 "
                           "changed: truncated, corrupt or replaced)") and "export it again" in last
    assert not (out / "outputs").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_an_onnx_file_without_a_record_is_parsed_and_refused(exported: Path, tmp_path: Path,
                                                             damage: str) -> None:
    from encoderzoo.errors import ArtifactError
    from encoderzoo.export import check_onnx_file

    path = tmp_path / "model.onnx"
    data = (exported / "model" / "model.onnx").read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x08\x07not onnx" * 99,
                      "empty": b""}[damage])
    with pytest.raises(ArtifactError, match=r"not a valid ONNX model \(.*\); the file is truncated"):
        check_onnx_file(path)
    check_onnx_file(exported / "model" / "model.onnx")  # the intact file passes


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from encoderzoo.errors import ArtifactError
    from encoderzoo.export import check_onnx_file

    weight = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 2])], [weight])
    model = helper.make_model(graph)
    (tmp_path / "secret.bin").write_bytes(np.ones(4, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    good = folder / "good.onnx"
    onnx.save(model, str(good), save_as_external_data=True, location="good.weights", size_threshold=0)
    check_onnx_file(good)  # data beside the model: fine
    for tensor in model.graph.initializer:  # now point it at a file outside the folder
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        tensor.external_data.add(key="location", value="../secret.bin")
    evil = folder / "evil.onnx"
    evil.write_bytes(model.SerializeToString())
    with pytest.raises(ArtifactError, match=r"keeps its data at '\.\./secret\.bin', outside"):
        check_onnx_file(evil)
    (folder / "good.weights").unlink()
    with pytest.raises(ArtifactError, match=r"external data file 'good\.weights', which is missing"):
        check_onnx_file(good)
