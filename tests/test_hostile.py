"""The promises a careless or hostile user tests: encoderzoo never deletes a folder it cannot
prove it made, nor the inputs a run resolved; a path through a symlink is the same folder (one
lock); bad paths get one line and leave nothing; a temporary name is known by one rule."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from encoderzoo import fileio
from encoderzoo.assets import asset_path
from encoderzoo.errors import ConfigError
from encoderzoo.fileio import MARKER
from encoderzoo.workspace import clean_temporary, is_run_folder, locked
from tests.conftest import ROOT, SST2_DEV, cli
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


# -- 4. every row is gated against a baseline that ran ---------------------------------------------

def test_torch_fp32_joins_whenever_a_pytorch_model_is_available(tmp_path: Path) -> None:
    from encoderzoo.config import RunConfig
    from encoderzoo.context import RunContext

    ctx = RunContext(RunConfig(recipe="demo", out=tmp_path / "run", backends=("onnxruntime:int8",)))
    assert ctx.runs == [("torch", "fp32"), ("onnxruntime", "int8")] and ctx.reference_run == ("torch", "fp32")
    assert "torch fp32 added: the baseline every other run is gated against" in ctx.validate()


@pytest.mark.slow
def test_an_int8_run_alone_is_gated_against_torch_fp32(tmp_path: Path) -> None:
    from encoderzoo.config import RunConfig
    from encoderzoo.pipeline import run

    run(RunConfig(recipe="demo", out=tmp_path / "run", limit=16, backends=("onnxruntime:int8",),
                  bench=False, optimize=False, e2e_runs=0, ceiling=False))
    rows = json.loads((tmp_path / "run" / "accuracy.json").read_text())["rows"]
    assert [(r["backend"], r["precision"]) for r in rows] == [("torch", "fp32"), ("onnxruntime", "int8")]
    assert rows[1]["baseline"] == "torch_fp32" and rows[1]["vs_torch"] is not None


@pytest.mark.slow
def test_an_imported_graph_that_is_not_its_checkpoint_fails_the_gate(tiny_bert: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    from encoderzoo.config import RunConfig
    from encoderzoo.export import positional
    from encoderzoo.pipeline import run

    names = ("input_ids", "attention_mask", "token_type_ids")
    logits = positional(AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval(), names,
                        ("logits",))

    class Negated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = logits

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return -self.inner(*inputs)[0]

    graph = tmp_path / "negated.onnx"
    ids = torch.randint(1000, 2000, (2, 16))
    torch.onnx.export(Negated().eval(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(graph),
                      input_names=list(names), output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names})
    passed, _ = run(RunConfig(
        recipe="sst2", out=tmp_path / "run", data=(str(SST2_DEV),), limit=16, onnx=str(graph),
        checkpoint=str(tiny_bert), backends=("onnxruntime:fp32",), bench=False, e2e_runs=0, ceiling=False))
    rows = {r["backend"]: r for r in json.loads((tmp_path / "run" / "accuracy.json").read_text())["rows"]}
    assert not passed and set(rows) == {"torch", "onnxruntime"} and rows["torch"]["gate_passed"]
    assert any("differ from its PyTorch model's" in f for f in rows["onnxruntime"]["failures"])


# -- 5, 14. the model is what the folder declares, and all of it is in its identity ----------------

def test_the_code_beside_the_weights_is_part_of_the_model_hash(tiny_bert: Path, tmp_path: Path) -> None:
    from encoderzoo.checkpoints import Checkpoint, content_hashes

    folder = tmp_path / "remote"
    shutil.copytree(tiny_bert, folder)
    code = folder / "modeling_custom.py"
    code.write_text("SCALE = 1.0\n")
    checkpoint = Checkpoint(location=str(folder), is_local=True, config=None)
    before = content_hashes(checkpoint)
    code.write_text("SCALE = 2.0\n")  # the outputs change; so must every artifact's key
    after = content_hashes(checkpoint)
    assert after["model"] != before["model"] and after["tokenizer"] == before["tokenizer"]


def test_a_known_model_type_declaring_its_own_code_is_refused_without_trust(tiny_bert: Path,
                                                                             tmp_path: Path) -> None:
    from encoderzoo.checkpoints import resolve_checkpoint
    from encoderzoo.errors import CheckpointError
    from encoderzoo.recipes import get_recipe

    folder = tmp_path / "declared"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())  # model_type stays "bert"
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_alibi.AlibiBert"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"declares its own model code .* built-in 'bert' classes, "
                                              r"another model than the folder declares"):
        resolve_checkpoint(str(folder), get_recipe("sst2"))
    last = one_line_error(cli("prepare", "sst2", "--checkpoint", str(folder), "--data", str(SST2_DEV),
                              "--out", str(tmp_path / "r")))
    assert "--trust-remote-code" in last and not (tmp_path / "r").exists()


# -- 6. a regression's agreement sees a shift and a rescaling --------------------------------------

def test_regression_agreement_is_relative_to_the_spread_of_the_predictions() -> None:
    import numpy as np

    from encoderzoo.tasks import get_task

    task = get_task("stsb")
    reference = list(np.linspace(-0.4, 0.4, 101))
    assert task.agreement(reference, reference) == 1.0
    shifted = [v + 0.09 for v in reference]  # inside a fixed 0.1, a quarter of the predictions' range
    assert task.agreement(shifted, reference) == 0.0
    assert task.similarity(shifted, reference)["mean_shift"] == pytest.approx(0.09)
    assert task.agreement([1.3 * v for v in reference], reference) < 0.5  # rescaled
    noise = [v + 1e-3 * (-1) ** i for i, v in enumerate(reference)]  # an fp32 runtime's drift
    assert task.agreement(noise, reference) == 1.0
    on_sts_scale = [5 * (v + 0.4) for v in reference]  # 0-5: the same rule, scaled with the data
    assert task.agreement([v + 0.09 for v in on_sts_scale], on_sts_scale) == 1.0
    assert "standard deviation" in task.scoring_options()["agreement"]


# -- 8. numbers in text by one rule ----------------------------------------------------------------

def test_whole_numbers_are_ascii_digits_only() -> None:
    from encoderzoo.options import whole_number

    assert [whole_number(t) for t in ("0", " 12 ", "²", "٣", "1_0", "-1", "", "1.0")] == \
        [0, 12, None, None, None, None, None, None]


def test_a_label_that_looks_like_a_digit_is_one_line_and_leaves_nothing(tiny_bert: Path,
                                                                        tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\na fine film,1\na dull one,²\n")
    out = tmp_path / "run"
    last = one_line_error(cli("run", "classify", "--checkpoint", str(tiny_bert), "--data", str(data),
                              "--text-column", "text", "--label-column", "label", "--out", str(out), *QUICK))
    assert last.startswith(f"error: {data}, line 3: label '²' in 'label' is none of the model's classes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.csv"]


# -- 9. an imported graph's outputs fit the task, checked when it is inspected ---------------------

def test_a_graph_whose_output_does_not_fit_the_task_is_refused_at_once(tiny_bert_qa: Path,
                                                                       tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from encoderzoo.export import positional

    names = ("input_ids", "attention_mask", "token_type_ids")
    spans = positional(AutoModelForQuestionAnswering.from_pretrained(tiny_bert_qa).eval(), names,
                       ("start_logits",))
    graph = tmp_path / "spans.onnx"
    ids = torch.randint(1000, 2000, (2, 16))
    torch.onnx.export(spans, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(graph),
                      input_names=list(names), output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "logits"]})
    out = tmp_path / "run"
    last = one_line_error(cli("run", "sst2", "--onnx", str(graph), "--tokenizer", str(tiny_bert_qa),
                              "--data", str(SST2_DEV), "--out", str(out), *QUICK[:2]))
    assert last == (f"error: --onnx {graph}: output 'logits' has shape (?, ?); task 'sst2' reads logits as "
                    "(batch, fixed): export the graph with the task's head")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spans.onnx"]


# -- 12. an option a command would ignore is refused -----------------------------------------------

def test_score_refuses_data_it_would_ignore(tmp_path: Path) -> None:
    run = fake_run_folder(tmp_path / "run")
    other = tmp_path / "other.tsv"
    other.write_text("sentence\tlabel\nfine\t1\n")
    last = one_line_error(cli("score", "demo", "--out", str(run), "--data", str(other)))
    assert last.startswith("error: --data goes with --predictions; a run folder's outputs are scored against")


# -- 13. a model that can never load leaves nothing behind -----------------------------------------

class Payload:
    """Unpickling this would create a folder: what weights_only refuses."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.makedirs, (str(self.marker),))


def test_a_checkpoint_that_can_never_load_is_refused_before_prepare(tiny_bert: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "evil"
    shutil.copytree(tiny_bert, folder)
    marker = tmp_path / "payload-ran"
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(dict(state, extra=Payload(marker)), folder / "pytorch_model.bin")
    out = tmp_path / "run"
    last = one_line_error(cli("run", "sst2", "--checkpoint", str(folder), "--data", str(SST2_DEV),
                              "--out", str(out), *QUICK))
    assert "the weights hold objects other than tensors (os.makedirs)" in last, last
    assert "refuses to unpickle" in last and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil"]  # no partial folder kept "for --resume"


def test_weights_found_wanting_after_prepare_leave_nothing_behind(tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "headless"
    shutil.copytree(tiny_bert, folder)
    state = load_file(folder / "model.safetensors")
    state = {k: v for k, v in state.items() if not k.startswith("classifier")}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    last = one_line_error(cli("run", "sst2", "--checkpoint", str(folder), "--data", str(SST2_DEV),
                              "--out", str(tmp_path / "run"), *QUICK))
    assert "weights missing for 2 parameters" in last and "--resume" not in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["headless"]
