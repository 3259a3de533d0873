"""Shared fixtures: tiny random models built from a config, with real vocabularies from
../shared; the real data lives in ../shared as well."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

# Hub lookups fail fast instead of retrying for ~25 s on this offline machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


ALL_CORES = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def pin_worker() -> None:
    """Under `pytest -n N`, worker K keeps only its share of the cores (cores K, K+N, ...), and so
    do the processes it starts: every run then sizes its thread pools to its share
    (encoderzoo.environment.available_cores) instead of each worker spinning threads on every core.
    Two demo runs side by side on 2 cores: 54 s unpinned, 33 s pinned. Opt-in (ENCODERZOO_TEST_PIN=1):
    on one core, a process that ran OpenVINO int8 was seen to abort (SIGABRT) at exit or while
    another thread pool started, in 2 of 3 fresh-clone suites, so CI leaves the workers unpinned."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if (not worker.startswith("gw") or count < 2 or not os.environ.get("ENCODERZOO_TEST_PIN")
            or not hasattr(os, "sched_setaffinity")):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        os.sched_setaffinity(0, set(cores[int(worker[2:]) % count::count]))


pin_worker()


def unpinned_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new Python process on every core, for a test about what a backend does
    with several cores: OpenVINO reads the cores it may use once per process, so lifting a
    worker's pin (pin_worker) for one test comes too late once an earlier test has loaded it."""
    def widen() -> None:
        if ALL_CORES:
            os.sched_setaffinity(0, ALL_CORES)

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=widen)


@pytest.fixture(scope="session", autouse=True)
def ceiling_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tests never write the user's cache: XDG_CACHE_HOME (the ceiling's and the model configs'
    caches, for the processes the tests start as well) points to a temporary folder, seeded with
    a fixed ceiling for every thread count, so that no test probes the GEMMs of a machine the
    other tests load (tests/test_roofline.py probes on its own)."""
    from encoderzoo import ceiling

    folder = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    for threads in range(1, (os.cpu_count() or 1) + 1):
        ceiling.ceiling(threads, measure_fn=lambda threads, gemms: {
            "gflops": {"fp32": 100.0 * threads, "bf16": 200.0 * threads, "int8": 400.0 * threads},
            "per_library": {}, "share": 1.0})
    return folder

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SST2_DEV = SHARED / "data" / "sst2" / "dev.tsv"
SST2_TRAIN = SHARED / "data" / "sst2" / "train.tsv"
MNLI_MATCHED = SHARED / "data" / "mnli" / "dev_matched.tsv"
MNLI_MISMATCHED = SHARED / "data" / "mnli" / "dev_mismatched.tsv"
ROBERTA_VOCAB = SHARED / "data" / "tokenizers" / "roberta-base"
SQUAD_DEV = SHARED / "data" / "squad1.1" / "dev-v1.1.json"
LOCAL_DATA = {"sst2": SST2_DEV, "mnli": MNLI_MATCHED.parent, "squad": SQUAD_DEV}  # --data per task
BERT_CASED_VOCAB = SHARED / "data" / "tokenizers" / "bert-base-cased" / "vocab.txt"
TINY_BERT = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "max_position_embeddings": 512,
}


def needs_shared(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is not available")


def build_tiny_bert(folder: Path, *, num_labels: int = 2, dtype: str = "float32", seed: int = 0,
                    head: str = "sequence-classification") -> Path:
    """A randomly initialised BERT with the real bert-base-cased vocabulary, saved as a
    Hugging Face folder (safetensors + fast tokenizer)."""
    if not BERT_CASED_VOCAB.exists():
        pytest.skip(f"{BERT_CASED_VOCAB} is not available")
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForMultipleChoice,
        BertForQuestionAnswering,
        BertForSequenceClassification,
    )

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=28996, num_labels=num_labels, **TINY_BERT)
    model_class = {"sequence-classification": BertForSequenceClassification,
                   "question-answering": BertForQuestionAnswering,
                   "multiple-choice": BertForMultipleChoice}[head]
    model = model_class(config).eval()
    if dtype == "float16":
        model = model.half()
    model.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(BERT_CASED_VOCAB.parent, do_lower_case=False)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def family_tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A --tokenizer folder per family: the real vocabularies where ../shared has them, small
    trained SentencePiece models for ALBERT and DeBERTa-v3."""
    from tests.tokenizers import family_tokenizers as build
    from tests.tokenizers import missing_inputs

    if missing_inputs():
        pytest.skip(f"{missing_inputs()[0]} is not available")
    return build(tmp_path_factory.mktemp("tokenizers"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert_qa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-qa"), head="question-answering")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_bert: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def cli(*args: str, cwd: Path | None = None, timeout: int = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess, as a user would (`env`: extra variables)."""
    return subprocess.run(
        [sys.executable, "-m", "encoderzoo", *args], capture_output=True, text=True,
        cwd=cwd, timeout=timeout, env=os.environ | {"COLUMNS": "200"} | (env or {}),
    )


DEMO_RUN = ("run", "demo", "--backends", "torch,onnxruntime,openvino", "--batch-sizes", "1,8",
            "--warmup", "1", "--min-runs", "3", "--min-seconds", "0", "--e2e-runs", "1")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str
             ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`encoderzoo run demo` on all 872 SST-2 dev sentences, every default variant, a short
    benchmark: made once per test session for the modules that only read it (pytest-xdist
    workers take turns on a lock in the session's folder: the first makes it, the others read it)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if worker_id != "master" else base) / "shared-demo"
    folder.mkdir(exist_ok=True)
    out, record = folder / "demo", folder / "result.json"
    with FileLock(str(folder / "lock")):
        if not record.is_file():
            done = cli(*DEMO_RUN, "--out", str(out))
            record.write_text(json.dumps({"args": done.args, "returncode": done.returncode,
                                          "stdout": done.stdout, "stderr": done.stderr}))
    made = json.loads(record.read_text())
    return out, subprocess.CompletedProcess(made["args"], made["returncode"], made["stdout"], made["stderr"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow end-to-end tests first, so that `pytest -n 2` spreads them over both workers
    instead of leaving one long test for the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
