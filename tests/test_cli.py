import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoderzoo.cli import app
from tests.conftest import SQUAD_DEV, SST2_DEV, cli, needs_shared

FAST_BENCH = ["--batch-sizes", "1,2", "--warmup", "0", "--min-runs", "1", "--min-seconds", "0"]


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from encoderzoo.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['run', '--help']); "
            "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'onnx', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_infer_takes_every_batching_option() -> None:
    """infer decides the batching its outputs are keyed by: every option of it is there."""
    result = CliRunner().invoke(app, ["infer", "--help"], env={"COLUMNS": "200"})
    for flag in ("--batch-size", "--padding", "--order", "--buckets", "--max-tokens", "--pad-multiple"):
        assert flag in result.output


def test_recipes_and_backends_are_listed() -> None:
    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0
    assert "demo" in result.output and "bert-base-cased-sst2" in result.output and "92.43" in result.output
    result = CliRunner().invoke(app, ["backends"])
    assert "torch" in result.output and "onnxruntime" in result.output


@pytest.mark.parametrize(("content", "message"), [
    ("sentence\tlabel\ngood\t1\nbad\tneg\n", "line 3: label 'neg' is not one of 0, 1"),
    ("text\tlabel\ngood\t1\n", "line 1: no column 'sentence' in the header"),
    ("", "the file is empty"),
])
def test_malformed_tsv_is_one_line_and_leaves_no_output(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(content, encoding="utf-8")
    result = cli("run", "demo", "--data", str(bad), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]  # progress lines may come before it
    assert last.startswith(f"error: {bad}") and message in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tsv"]  # no run folder, no partial


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-size", "0"], "error: --batch-size must be >= 1, got 0"),
    (["--backends", "torch,tensorrt"], "error: unknown backend 'tensorrt'"),
    (["--batch-sizes", "1,x"], "error: --batch-sizes takes comma-separated integers"),
    (["--seq-len", "600"], "error: --seq-len 600 is above the model's maximum of 512 tokens"),
    (["--gate", "99"], "error: --gate must be between 0 and 1"),
])
def test_impossible_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("run", "demo", "--out", str(tmp_path / "run"), *args)
    assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith(message), result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--max-wait-ms", "-1"], "error: --max-wait-ms -1.0: must be 0 or more"),
    (["--max-queue", "0"], "error: --max-queue 0: must be positive"),
])
def test_impossible_serve_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli("serve", str(tmp_path), *args)  # refused before the run folder is read
    assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith(message), result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.tsv")
    result = cli("--debug", "run", "demo", "--data", missing, "--out", str(tmp_path / "r"))
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
@needs_shared(SST2_DEV)
def test_stages_one_at_a_time(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["bert-base-cased-sst2", "--out", str(out)]
    ckpt = ["--checkpoint", str(tiny_bert)]
    runner = CliRunner()
    # later stages take the checkpoint that prepare recorded in the run folder
    for args in (["prepare", *common, *ckpt, "--data", str(SST2_DEV), "--limit", "40", "--seq-len", "64"],
                 ["export", *common], ["optimize", *common],
                 ["infer", *common, "--batch-size", "16"], ["score", *common, "--gate", "0"],
                 ["bench", *common, "--seq-lens", "16", *FAST_BENCH], ["report", *common]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args[0], result.output, result.exception)
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["examples"] == 40 and report["recipe"]["seq_len"] == 64
    assert report["checkpoint"]["location"] == str(tiny_bert)
    assert report["optimize"]["fused_ops"]["Attention"] == 1  # the last of 2 layers: first token only
    assert report["export"]["first_token"]["applied"] is True
    assert {(r["batch_size"], r["seq_len"]) for r in report["benchmark"]} == {(1, 16), (2, 16)}
    assert len((out / "predictions" / "onnxruntime-fp32.tsv").read_text().splitlines()) == 41


@needs_shared(SST2_DEV)
def test_failed_gate_exits_3_with_a_complete_report(tiny_bert: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "run", "bert-base-cased-sst2", "--checkpoint", str(tiny_bert), "--data", str(SST2_DEV),
        "--limit", "32", "--out", str(tmp_path / "run"), "--no-bench", "--reference", "accuracy=92.43",
        "--backends", "torch:fp32,onnxruntime:fp32"])
    assert result.exit_code == 3
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    gates = {(r["backend"], r["precision"], r["gate_passed"]) for r in report["accuracy"]}
    assert gates == {("torch", "fp32", False), ("onnxruntime", "fp32", True)}  # random weights miss 92.43
    assert report["gate_passed"] is False
    text = (tmp_path / "run" / "report.md").read_text()
    assert "**FAIL**" in text and "| reference (--reference) | | 92.43 |" in text


@needs_shared(SST2_DEV)
def test_the_published_reference_applies_to_the_recipes_own_checkpoint_only(
    tiny_bert: Path, tmp_path: Path
) -> None:
    """A user's checkpoint through a seed recipe is not gated on the seed's published 92.43: with
    no eval_results.json of its own, torch fp32 is the reference; with one, that is."""
    args = ["run", "bert-base-cased-sst2", "--checkpoint", str(tiny_bert), "--data", str(SST2_DEV),
            "--limit", "32", "--no-bench", "--backends", "torch:fp32,onnxruntime:fp32"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    torch = next(r for r in report["accuracy"] if r["backend"] == "torch")
    assert (torch["baseline"], torch["reference"]["reference"]) == ("none", None)
    assert "torch fp32 is the reference" in (tmp_path / "run" / "report.md").read_text()

    own = tmp_path / "own"
    shutil.copytree(tiny_bert, own)
    (own / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.95, "eval_loss": 0.2}))
    args[3] = str(own)
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run2")])
    assert result.exit_code == 3
    report = json.loads((tmp_path / "run2" / "report.json").read_text())
    torch = next(r for r in report["accuracy"] if r["backend"] == "torch")
    assert torch["reference"] == {"reference": {"accuracy": 0.95}, "source": "eval_results.json",
                                  "torch_fp32": torch["metrics"]}
    assert torch["failures"][0].endswith("< 99 % of the eval_results.json reference's 95.00")


def test_bench_on_a_fresh_folder_exports_first(family_tokenizers: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, [
        "bench", "roberta-base-sst2", "--random-weights", "tiny", "--tokenizer",
        str(family_tokenizers["roberta"]), "--out", str(out), "--seq-lens", "16", *FAST_BENCH,
        "--backends", "torch:fp32,onnxruntime:fp32"])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((out / "report.json").read_text())
    assert report["export"]["parity"][0]["inputs"].startswith("batch 8 x seq 16")
    assert report["optimize"]["fused_ops"]["Attention"] == 1  # the last of 2 layers: first token only
    assert {(r["backend"], r["batch_size"]) for r in report["benchmark"]} == {
        (b, n) for b in ("torch", "onnxruntime") for n in (1, 2)}
    assert "| seq 16 | batch 1 | batch 2 |" in result.output  # the performance table is printed


@needs_shared(SST2_DEV)
def test_random_weights_offline_without_tokenizer_is_one_line(tmp_path: Path) -> None:
    result = cli("run", "deberta-v3-base-mnli", "--random-weights", "tiny", "--out", str(tmp_path / "r"),
                 "--data", str(SST2_DEV.parents[1] / "mnli"), "--limit", "4")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "error: random weights need a tokenizer and 'microsoft/deberta-v3-base' could not be fetched")
    assert not (tmp_path / "r").exists()


@needs_shared(SQUAD_DEV)
def test_score_a_squad_predictions_file_made_anywhere(tmp_path: Path) -> None:
    document = json.loads(SQUAD_DEV.read_text())
    gold = {qa["id"]: qa["answers"][0]["text"] for article in document["data"]
            for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    first = next(iter(gold))
    gold[first] = "something else"
    del gold[next(iter(list(gold)[1:]))]  # one unanswered question
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps(gold))
    for name in ("squad", "spanbert-base-cased-squad1"):
        result = cli("score", name, "--predictions", str(predictions), "--data", str(SQUAD_DEV))
        assert result.returncode == 0, result.stderr
        scores = json.loads(result.stdout)
        assert scores["examples"] == 10570 and scores["without_prediction"] == 1
        assert scores["exact_match"] == pytest.approx(100 * 10568 / 10570, abs=1e-4)
    result = cli("score", "squad", "--predictions", str(predictions))
    assert result.returncode == 2 and "pass --data PATH" in result.stderr


def test_score_mnli_predictions_of_a_run_against_both_splits(tmp_path: Path) -> None:
    """A run's predictions name each example "matched/ID" or "mismatched/ID": the gold files
    must be read under the same split names, by file name or SPLIT=PATH."""
    from tests.conftest import MNLI_MATCHED, MNLI_MISMATCHED

    if not MNLI_MISMATCHED.exists():
        pytest.skip("MNLI dev files are not available")
    lines = ["id\tsplit\tprediction"]
    for split, path in (("matched", MNLI_MATCHED), ("mismatched", MNLI_MISMATCHED)):
        rows = [row.split("\t") for row in path.read_text().splitlines()]
        header = rows[0]
        for row in rows[1:]:
            values = dict(zip(header, row, strict=True))
            wrong = split == "mismatched" and values["index"] == rows[1][0]
            predicted = "neutral" if wrong else values["gold_label"]
            lines.append(f"{split}/{values['index']}\t{split}\t{predicted}")
    predictions = tmp_path / "p.tsv"
    predictions.write_text("\n".join(lines) + "\n")
    for data in ([str(MNLI_MATCHED), str(MNLI_MISMATCHED)],
                 [f"matched={MNLI_MATCHED}", f"mismatched={MNLI_MISMATCHED}"]):
        result = cli("score", "mnli", "--predictions", str(predictions), *[f"--data={d}" for d in data])
        assert result.returncode == 0, result.stderr
        scores = json.loads(result.stdout)
        assert scores["matched.accuracy"] == 100.0
        assert scores["mismatched.accuracy"] == 100 * (9832 - 1) / 9832  # full precision
