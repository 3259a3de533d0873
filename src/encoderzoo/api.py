"""The verified artifact, usable as it is: `encoderzoo.load(RUN)` opens the variant a run folder's
report names to deploy (or the one asked for), through the same run context, artifact store,
session, tokenization, batching and decoding that produced its numbers, and refuses one whose
gate failed, one this machine cannot run, and an artifact whose bytes are not the ones recorded.

    model = encoderzoo.load("runs/demo")                     # the fastest variant that passed
    model.predict(["a gripping film", "dull"])               # [{"label": "positive", ...}, ...]
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.artifacts import ARTIFACTS
from encoderzoo.backends import Run, get_backend, parse_backends
from encoderzoo.bench import synthetic_features
from encoderzoo.config_file import config_from_record
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError, ConfigError, InputError
from encoderzoo.fileio import read_json
from encoderzoo.inference import backend_context, static_batch
from encoderzoo.session import RowSteps, Session, open_session, row_step
from encoderzoo.verdict import verdict
from encoderzoo.workspace import Workspace

# A served batch's width is rounded up to a multiple of this. Replaying 60 server batches of 60-150
# random SST-2 sentences through a fresh model (2-core Xeon with AMX): all-MiniLM-L6-v2 openvino:int8
# 555 sentences/s with exact widths, 840-908 with multiples of 8, 785-806 of 4, 788 of 16; the
# demo's openvino:bf16 905 against 1,085. (Rows: encoderzoo.session.row_step.)
SERVED_WIDTHS = 8


class Model:
    """A run's variant, open: raw inputs in, the task's answers out (not thread-safe: one call at
    a time, as the server's single inference thread makes them)."""

    def __init__(self, ctx: RunContext, run: Run, session: Session, report: dict[str, Any]) -> None:
        self.ctx, self.run, self.session, self.report = ctx, run, session, report
        self.task = ctx.task
        self.tokenizer = ctx.source.tokenizer()
        self.seq_len = int(ctx.prepared.get("seq_len", ctx.config.effective_seq_len))

    @property
    def variant(self) -> str:
        return str(self.run)

    @property
    def name(self) -> str:
        return str(self.report.get("recipe", {}).get("name", self.ctx.recipe.name))

    def encode(self, inputs: Sequence[Any]) -> tuple[list[Any], Any]:
        """(examples, features) of raw inputs, as prepare encodes a dataset's."""
        examples = self.task.examples_from(list(inputs))
        return examples, self.task.encode(examples, self.tokenizer, seq_len=self.seq_len,
                                          input_names=self.ctx.input_names)

    def outputs(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        """The model's raw outputs for the inputs' rows (as infer saves them)."""
        return self.session.run(self.encode(inputs)[1], progress=False)

    def predict(self, inputs: Sequence[Any]) -> list[Any]:
        """One answer per input (see the task's `present`): batched by the run's batching."""
        return self.answer(inputs)[0]

    def answer(self, inputs: Sequence[Any]) -> tuple[list[Any], list[int], list[bool]]:
        """(answers, the tokens each input's rows hold, whether each reached the model's length and
        was cut: a task that reads long inputs in windows never cuts)."""
        if not len(inputs):
            return [], [], []
        examples, features = self.encode(inputs)
        outputs = self.session.run(features, progress=False)
        index = {e.id: i for i, e in enumerate(examples)}
        counts, full = [0] * len(examples), [False] * len(examples)
        windows = bool(getattr(self.task, "windows", False))
        for example_id, length in zip(features.example_ids, features.sequence_lengths(), strict=False):
            i = index[str(example_id)]
            counts[i] += int(length)
            full[i] = full[i] or (not windows and int(length) >= self.seq_len)
        return self.task.present(list(inputs), examples, features, outputs), counts, full

    def check(self, inputs: Sequence[Any]) -> list[int]:
        """Refuse inputs the task cannot read (InputError), without tokenizing; returns a rough
        count of each one's tokens (characters / 4, at least 2), for batching."""
        self.task.examples_from(list(inputs))
        return [max(len(json.dumps(value)) // 4, 2) for value in inputs]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, hidden) float32 embeddings, for an embedding run."""
        if self.task.model_kind != "sentence-embedding":
            raise InputError(f"{self.name}: a {self.task.model_kind} model, not an embedding model")
        vectors = self.predict(texts)
        return np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    def info(self) -> dict[str, Any]:
        """What /v1/model shows: the variant, its gate figures, the hashes it was built and checked with."""
        rows = self.report.get("accuracy", [])
        row = next((r for r in rows if (r["backend"], r["precision"]) == self.run), {})
        kind = get_backend(self.run.backend).artifact(self.run.precision)
        store = self.ctx.store
        return {"model": self.name, "variant": self.variant, "task": self.task.name,
                "checkpoint": self.report.get("checkpoint", {}), "seq_len": self.seq_len,
                "gate": {k: row.get(k) for k in ("metrics", "vs_torch", "gate_passed", "failures")},
                "artifact": {"kind": kind, "sha256": store.recorded(store.stands_for(kind), "sha256")}
                if ARTIFACTS[kind].is_graph else {"kind": kind, "model": store.model.identity["model"]},
                "verdict": self.report.get("verdict")}

    def serving(self) -> Model:
        """This model as a server runs it: the same backend, with each batch's width rounded up to
        a multiple of SERVED_WIDTHS and its rows to a step (encoderzoo.session.RowSteps). A server
        meets batches of every shape, and OpenVINO and oneDNN prepare kernels per input shape
        (15-45 ms the first time, measured); an offline pass meets each of its shapes once.
        Widths and batch neighbours are what a variant's batch-invariance check already covers
        (encoderzoo.rebatch: each row alone at its own width)."""
        batching = self.session.batching
        multiple = -(-max(batching.multiple, 1) // SERVED_WIDTHS) * SERVED_WIDTHS
        served = copy.copy(self)
        stepped = dataclasses.replace(batching, multiple=multiple)
        served.session = Session(RowSteps(self.session.backend), stepped, self.session.sequence)
        return served

    def warm(self, seconds: float) -> tuple[int, float]:
        """Run the batch shapes a served model meets (the widths its batching makes of rows up to
        the run's data's 99th percentile, rows in RowSteps' steps), narrowest first, until all ran or
        `seconds` passed; returns (shapes run, seconds taken). A server does this before it
        answers /health: no client's request then pays for preparing its shape. Each shape the
        runtime prepared stays in memory: a rarer, wider batch is prepared when it comes (on
        2 cores, all-MiniLM-L6-v2 openvino:int8 with rows in steps of 8 held 706 MiB after widths to
        32, 1,036 to 64, 1,923 to 128)."""
        backend, batching = self.session.backend, self.session.batching
        if not isinstance(backend, RowSteps):
            raise TypeError("warm a served model: model.serving().warm(...)")
        rows = synthetic_features(self.ctx.input_names, 100, self.seq_len, self.ctx.row_shape)
        start, count = time.perf_counter(), 0
        usual = self._usual_length()
        for width in sorted({batching.width(n, self.seq_len) for n in range(1, usual + 1)}):
            most = batching.max_tokens // width if batching.max_tokens else batching.batch_size
            for size in sorted({row_step(n) for n in range(1, max(most, 1) + 1)}):
                if time.perf_counter() - start >= seconds:
                    return count, time.perf_counter() - start
                backend.warm(rows.take(np.full(size, len(rows) - 1), width))
                count += 1
        return count, time.perf_counter() - start

    def _usual_length(self) -> int:
        """The length 99 % of the run's rows fit in (at most seq_len)."""
        try:
            with np.load(self.ctx.ws.features, allow_pickle=False) as z:
                usual = float(np.percentile(z["lengths"], 99))
        except (OSError, ValueError, KeyError):  # no readable prepared data: every width
            return self.seq_len
        return min(self.seq_len, max(int(np.ceil(usual)), 1))

    def close(self) -> None:
        self.session.close()


def load(run: str | Path, *, variant: str | None = None, allow_failed: bool = False,
         threads: int | None = None) -> Model:
    """The variant of run folder `run` to use: `variant` ("openvino:int8"), else the one its report
    names to deploy (the fastest end to end that passed its gate on the machine it ran on)."""
    folder = Path(run).expanduser().resolve()
    report = _report(folder)
    rows = {(r["backend"], r["precision"]): r for r in report.get("accuracy", [])}
    chosen = _variant(folder, report, variant, allow_failed)
    row = rows.get(tuple(chosen))
    if row is None:
        ran = ", ".join(f"{b}:{p}" for b, p in rows) or "nothing"
        raise ConfigError(f"{folder}: the run did not run {chosen} (it ran {ran}); run it with --backends "
                          f"{chosen}")
    if not row["gate_passed"] and not allow_failed:
        raise ConfigError(f"{folder}: {chosen} failed its gate ({'; '.join(row['failures'])}); pick another "
                          "--variant, or allow_failed=True to use it anyway")
    changes: dict[str, Any] = {"out": folder, "backends": (str(chosen),), "resume": False}
    ctx = RunContext(config_from_record(report["config"], str(folder / "report.json"), **changes
                                        | ({"threads": threads} if threads else {})), Workspace(folder))
    kind = get_backend(chosen.backend).artifact(chosen.precision)
    if ARTIFACTS[kind].is_graph:
        if not ctx.store.current(kind):
            raise ArtifactError(f"{folder}: the {kind} artifact is not the one this run built and gated "
                                "(missing, or built from another model or options); run the chain again")
        ctx.store.verify(kind)  # its bytes, against the SHA-256 recorded when it was built
    context = backend_context(ctx, chosen, build=False)
    session = open_session(chosen.backend, chosen.precision, context, ctx.batching[chosen.backend],
                           ctx.task.output_axes, static_batch(ctx, chosen))
    model = Model(ctx, chosen, session, report)
    # Warm the path a served batch takes now, not on a client's request: a plan of few batches
    # runs on a model the backend may compile only when first asked (OpenVINO's latency one:
    # a one-time ~300 ms stall in the first seconds of serving, measured)
    warm = synthetic_features(ctx.input_names, 100, model.seq_len, context.row_shape)
    session.run(warm.subset(np.arange(2)), progress=False)  # two short rows: one batch
    return model


def _report(folder: Path) -> dict[str, Any]:
    path = folder / "report.json"
    if not path.is_file():
        raise ArtifactError(f"{folder}: no report.json; load a run folder `encoderzoo run` finished")
    try:
        report = read_json(path)
    except ValueError as err:
        raise ArtifactError(f"{path}: unreadable ({err}); run the chain again") from None
    if not isinstance(report, dict) or "config" not in report:
        raise ArtifactError(f"{path}: not an encoderzoo report; load a run folder `encoderzoo run` finished")
    return report


def _variant(folder: Path, report: dict[str, Any], asked: str | None, allow_failed: bool) -> Run:
    if asked:
        runs = parse_backends(asked)
        if len(runs) != 1:
            raise ConfigError(f"--variant {asked}: name one backend and precision, e.g. openvino:int8")
        return runs[0]
    chosen = report.get("verdict") or verdict(report.get("accuracy", []),
                                              (report.get("inference") or {}).get("runs", []), str(folder))
    if chosen is None:
        if allow_failed and report.get("accuracy"):
            first = report["accuracy"][0]
            return Run(first["backend"], first["precision"])
        raise ConfigError(f"{folder}: no variant passed its gate; name one with variant=... and "
                          "allow_failed=True to use it anyway")
    return parse_backends(chosen["variant"])[0]
