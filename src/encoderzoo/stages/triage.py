"""triage: for each triage-able int8 artifact below its gate, rank its quantized nodes by the
drift they add on rows of the data, then search greedily, confirming each step with the task
metric: of the most drifting nodes still quantized, the one whose return to float recovers the
metric most stays in float, until the gate (metrics and agreement with torch fp32) passes (see
encoderzoo.triage.greedy). Each step records the metric regained; what each node left in float
costs in speed is then measured side by side (see `costs`).

Each trial runs on a fixed share of the examples, stratified by split, gold label and length
(--triage-rows; see encoderzoo.triage.share), scored against torch fp32 on the same share; a
graph that passes there is confirmed on every example before the search ends, and the chosen
one is what the run's outputs hold. What the ranking, the trials and the full runs took is
recorded (cost_s) and shown in report.md."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo import quantize, triage
from encoderzoo.artifacts import ARTIFACTS, ArtifactKind
from encoderzoo.backends import Run, get_backend
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.evaluation import evaluate, gate, predictions_of
from encoderzoo.fileio import atomic_path, read_json, temporary_folder, write_json
from encoderzoo.inference import open_run, release, run_one
from encoderzoo.options import GATE
from encoderzoo.scoring import gate_failures
from encoderzoo.workspace import unlink

OPTIONS = (*GATE, "calibration_size", "threads", "triage_rows")  # what it reads of RunConfig

TRIAGE_ROWS = 32  # rows (spread over the data) the drift of each quantized node is measured on


def triageable(name: str, precision: str) -> bool:
    return ARTIFACTS[get_backend(name).artifact(precision)].triageable


class Trials:
    """The attempts at one failing variant: re-quantized without some nodes, run and scored
    against torch fp32 on the same examples, either on the fixed share of them (`on_share`, not
    recorded) or on all of them (`on_all`: the run's outputs and infer.json record it)."""

    def __init__(self, ctx: RunContext, run: Run, kind: ArtifactKind, share: np.ndarray,
                 torch_predictions: list[Any], records: dict[str, Any]) -> None:
        self.ctx, self.run, self.kind, self.records, self.share = ctx, run, kind, records, share
        examples, features = ctx.examples(), ctx.features()
        self.everything = len(share) == len(examples)  # then every trial is on all of them
        self.fell_back = False  # the share passed as built: every trial on all of them
        self.examples = [examples[i] for i in share]
        self.features = features.subset(np.flatnonzero(np.isin(
            features.example_ids, np.array([e.id for e in self.examples], dtype=features.example_ids.dtype))))
        self.torch = [torch_predictions[i] for i in share], torch_predictions
        self.torch_metrics = (ctx.task.score(self.examples, self.torch[0]).metrics,
                              ctx.task.score(examples, torch_predictions).metrics)
        self.built: list[str] = ctx.store.recorded(kind.name, "excluded_nodes") or []  # what the store holds
        self.all_of = list(self.built)  # what the run's recorded outputs were made with
        self.made: dict[tuple[str, tuple[str, ...]], list[Any]] = {}  # each attempt's predictions
        self.kept: Path | None = None  # a copy of the run's recorded outputs, as infer left them
        self.as_recorded = list(self.built)  # the graph they were made with

    def on_share(self, excluded: list[str]) -> dict[str, Any]:
        if self.everything:
            return self.on_all(excluded)
        start = time.perf_counter()
        self._build(excluded)
        outputs = open_run(self.ctx, self.run).run(self.features, progress=False)
        release(self.ctx, self.run)
        predictions = self.ctx.task.predict(self.examples, self.features, outputs)
        return self.attempt(excluded, predictions, 0, time.perf_counter() - start)

    def keep(self, folder: Path) -> None:
        """Copy the run's recorded outputs and their record into `folder` (one encoderzoo made),
        so that choosing the graph they were made with puts them back instead of running every
        example again."""
        record, outputs = self.ctx.ws.run_record(*self.run), self.ctx.ws.outputs(*self.run)
        if record.is_file() and outputs.is_file():
            for path in (record, outputs):
                shutil.copyfile(path, folder / path.name)
            self.kept = folder

    def on_all(self, excluded: list[str]) -> dict[str, Any]:
        start = time.perf_counter()
        put_back = self.kept is not None and excluded == self.as_recorded and self.all_of != excluded
        if put_back:  # infer's own outputs of this graph: run_one finds them under their key
            assert self.kept is not None
            record, outputs = self.ctx.ws.run_record(*self.run), self.ctx.ws.outputs(*self.run)
            unlink(record)  # the record (its key) last: never a key beside outputs it did not make
            for path in (outputs, record):
                with atomic_path(path) as tmp:
                    shutil.copyfile(self.kept / path.name, tmp)
        self._build(excluded)
        release(self.ctx, self.run)
        entry, predictions = run_one(self.ctx, self.run)
        if put_back:  # run in this run, by infer: its timing stands
            entry.pop("reused", None)
        self.records["runs"] = [entry if Run(r["backend"], r["precision"]) == self.run else r
                                for r in self.records["runs"]]
        self.all_of = list(excluded)
        return self.attempt(excluded, predictions, 1, time.perf_counter() - start)

    def share_of(self, predictions: list[Any]) -> dict[str, Any]:
        """The variant as infer left it, scored on the share (from its recorded predictions)."""
        return self.attempt([], [predictions[i] for i in self.share], 0, 0.0)

    def margins(self, a: dict[str, Any], b: dict[str, Any], baseline: dict[str, float], min_agreement: float
                ) -> tuple[float, float]:
        """The least real difference between attempts `a` and `b` in each component of
        `triage.closeness` (see triage.noise_margin): from how many of their predictions differ."""
        found = [self.made.get((x.get("on", "all"), tuple(x["excluded"]))) for x in (a, b)]
        if found[0] is None or found[1] is None or len(found[0]) != len(found[1]):
            return 0.0, 0.0
        n = len(found[0])
        margin = triage.noise_margin(n, round((1.0 - self.ctx.task.agreement(found[0], found[1])) * n))
        scale = min((v for v in baseline.values() if v > 0), default=1.0)
        return margin / scale, margin / min_agreement if min_agreement > 0 else margin

    def restore(self) -> None:
        """After an error: the artifact back as the run's recorded outputs were made with it."""
        self._build(self.all_of)

    def _build(self, excluded: list[str]) -> None:
        if excluded != self.built:
            self.ctx.store.build(self.kind.name, excluded)
            self.built = list(excluded)

    def attempt(self, excluded: list[str], predictions: list[Any], on_all: int, seconds: float
                ) -> dict[str, Any]:
        examples = self.ctx.examples() if on_all or self.everything else self.examples
        metrics = self.ctx.task.score(examples, predictions).metrics
        self.made[("all" if on_all or self.everything else "share", tuple(excluded))] = predictions
        vs_torch = {"agreement": self.ctx.task.agreement(predictions, self.torch[on_all or self.everything])}
        compared = self.ctx.reference_run.label
        failures = gate_failures(metrics, self.torch_metrics[on_all or self.everything], compared, vs_torch,
                                 gate(self.ctx), compared)
        step(f"triage: {self.run.label} with {len(excluded)} nodes in float, {len(examples)} examples: "
             + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return {"float_nodes": len(excluded), "excluded": list(excluded), "metrics": metrics, **vs_torch,
                "gate_passed": not failures, "failures": failures, "examples": len(examples),
                "on": "all" if on_all or self.everything else "share", "seconds": round(seconds, 2)}


def run(ctx: RunContext) -> dict[str, Any]:
    """Rescores at the end; returns what triage.json records (empty when nothing needed it)."""
    ws = ctx.ws
    accuracy = read_json(ws.accuracy_json)
    reference_run = ctx.reference_run  # the run the others were gated against
    failing = [r for r in accuracy["rows"] if not r["gate_passed"]
               and triageable(r["backend"], r["precision"])
               and Run(r["backend"], r["precision"]) != reference_run]
    if not failing:
        return {}
    features, examples = ctx.features(), ctx.examples()
    feeds = quantize.calibration_feeds(
        features, min(TRIAGE_ROWS, ctx.config.calibration_size), batch_size=1
    )  # rows one at a time: bounded memory
    _, torch_predictions = predictions_of(ctx, reference_run)
    share = stratified_share(ctx)
    records = read_json(ws.infer_json)
    results = {}
    for row in failing:
        name, precision = row["backend"], row["precision"]
        kind = ARTIFACTS[get_backend(name).artifact(precision)]
        assert kind.made_from is not None
        start, source = time.perf_counter(), ctx.store.opened(kind.made_from)
        assert source is not None
        with temporary_folder(ctx.ws.model_dir / "triage-ranking") as folder:
            path, op_types = ranked_on(ctx, kind, folder)
            step(f"triage: ranking the quantized nodes of {path.name}")
            ranking = triage.rank_nodes(source, path, feeds, op_types=op_types, threads=ctx.config.threads)
        ranked_s = time.perf_counter() - start
        trials = Trials(ctx, Run(name, precision), kind, share, torch_predictions, records)
        on_all = row | {"agreement": (row.get("vs_torch") or {}).get("agreement"), "gate_passed": False,
                        "on": "all", "examples": len(examples)}
        trials.made[("all", ())] = predictions_of(ctx, trials.run)[1]
        before = on_all if trials.everything else trials.share_of(trials.made[("all", ())])
        if before["gate_passed"]:  # the share does not show the failure: it cannot guide the search
            step(f"triage: {name} {precision} passes on the share as built; the search runs on all examples")
            trials.everything, trials.fell_back, before = True, True, on_all
        wanted, baselines = gate(ctx), trials.torch_metrics  # torch on the share, on all
        with temporary_folder(ctx.ws.model_dir / "triage-kept") as kept:
            trials.keep(kept)
            try:
                search = triage.greedy(
                    ranking, trials.on_share, before, lambda a, w=wanted, b=baselines:
                    triage.closeness(a, b[a.get("on") != "share"], w.min_agreement, w.keep),
                    confirm=None if trials.everything else trials.on_all, anchor=on_all,
                    margins=lambda a, b, w=wanted, t=baselines, tr=trials: tr.margins(
                        a, b, t[a.get("on") != "share"], w.min_agreement))
            except BaseException:
                trials.restore()  # the artifact the run's outputs were made with
                raise
            chosen, spent = search.chosen, [*search.attempts, *search.confirmed]
            if chosen.get("on") == "share" or not trials.all_of == trials.built == chosen["excluded"]:
                chosen = trials.on_all(chosen["excluded"])  # the run's outputs: those of the chosen graph
                spent.append(chosen)
        speed = costs(ctx, kind, source, search.steps) if search.steps and kind.ranked_on is None else {}
        results[f"{name}:{precision}"] = {
            "before": row["metrics"],
            "candidates": len(ranking),
            "search": f"greedy, {triage.WIDTH} candidates (the most drifting) tried per step, "
                      "the one the task metric recovers most with kept if it gains beyond the noise of the "
                      "predictions it changes",
            "share": {"examples": len(trials.examples), "of": len(examples),
                      "by": "split, gold label and length", "passed_as_built": trials.fell_back},
            "attempts": search.attempts,
            "confirmed": search.confirmed,
            "cost_s": {"ranking": round(ranked_s, 2), **{on: round(sum(a.get("seconds", 0.0) for a in spent
                                                                         if a.get("on") == on), 2)
                                                          for on in ("share", "all")}},
            "steps": search.steps,
            "float_nodes": chosen["excluded"],
            "recovered": chosen["gate_passed"],
            "otherwise": "" if chosen["gate_passed"] else kind.otherwise,
            "final": chosen,
            "worst": [d.to_json() for d in ranking[:10]],
            "speed": speed,
        }
    write_json(ws.infer_json, records)
    write_json(ws.triage_json, results)
    evaluate(ctx)  # rescored with the triaged artifacts
    return results


def ranked_on(ctx: RunContext, kind: ArtifactKind, folder: Path) -> tuple[Path, tuple[str, ...] | None]:
    """The ONNX graph whose drift ranks the nodes of `kind` and the operators quantized there:
    itself, or the kind it is ranked on, built fully quantized into `folder` (the run's own
    artifacts untouched: one of them may hold nodes a triage left in float)."""
    if kind.ranked_on is None:
        return ctx.store.files(kind.name)[0], kind.quantized_ops
    ranked = ARTIFACTS[kind.ranked_on]
    path = folder / ctx.store.files(ranked.name)[0].name
    with contextlib.redirect_stdout(sys.stderr):
        ctx.store.build_copy(ranked.name, [path])
    return path, ranked.quantized_ops


def stratified_share(ctx: RunContext) -> np.ndarray:
    """The examples every trial runs on: see encoderzoo.triage.share."""
    features, examples = ctx.features(), ctx.examples()
    position = {e.id: i for i, e in enumerate(examples)}
    sizes = np.zeros(len(examples))
    np.add.at(sizes, [position[i] for i in features.example_ids], features.lengths)
    count = triage.share_size(len(examples), ctx.config.triage_rows)
    return triage.share([ctx.task.gold_label(e) for e in examples], [e.split for e in examples], sizes, count)


def costs(ctx: RunContext, kind: ArtifactKind, source: Path, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """What each node left in float costs: the float graph, the artifact fully quantized and
    after each step, rebuilt side by side in a folder made here and timed in turns on one batch
    of the data (see encoderzoo.triage.side_by_side). Adds rows_per_s, speed_lost_pct (against
    the fully quantized artifact) and step_cost_pct (against the step before) to each step."""
    features = ctx.features()
    count = min(len(features), ctx.config.batch_size)
    rows = np.unique(np.linspace(0, len(features) - 1, num=count).astype(int))
    feeds = features.take(rows)
    step(f"triage: timing the float graph, the int8 one and each step side by side on {len(rows)} rows")
    with temporary_folder(ctx.ws.model_dir / "triage-timing") as folder:
        graphs = [source]
        for i, excluded in enumerate([[], *(s["excluded"] for s in steps)]):
            graphs.append(folder / f"{i}.onnx")
            with contextlib.redirect_stdout(sys.stderr):
                ctx.store.build_copy(kind.name, [graphs[-1]], excluded)
        rates = triage.side_by_side(graphs, feeds, ctx.config.threads)
    float_rate, quantized = rates[0], rates[1]
    for s, rate, was in zip(steps, rates[2:], rates[1:-1], strict=True):
        s.update(rows_per_s=rate, speed_lost_pct=100.0 * (1.0 - rate / quantized),
                 step_cost_pct=100.0 * (1.0 - rate / was))
    return {"rows": len(rows), "width": int(next(iter(feeds.values())).shape[1]),
            "float_rows_per_s": float_rate, "quantized_rows_per_s": quantized, "final_rows_per_s": rates[-1]}


def wanted(ctx: RunContext) -> bool:
    """Only when asked for and a gate failed."""
    return ctx.config.triage and not read_json(ctx.ws.accuracy_json)["gate_passed"]


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    if ctx.config.triage and any(triageable(n, p) for n, p in ctx.runs):
        return [("triage", "only for an int8 model below its gate", "if needed")]
    return []
