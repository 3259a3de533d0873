"""Quantization triage: which quantized nodes add the most error, measured on a calibration
slice, so that re-quantizing without them can bring an int8 model back above its gate.

Both graphs are run with every intermediate tensor of the float graph exposed (the quantizers
keep those names). A node's own drift is the relative error of its output minus the largest
relative error among its inputs: the error it adds, not the error it inherits."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class NodeDrift:
    name: str
    op_type: str
    own: float  # relative error the node adds
    total: float  # relative error of its output
    exclude_as: str  # the name the quantizer knows it by (a Gemm it split is "<name>_MatMul")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _session_with_outputs(path: Path, names: list[str], threads: int) -> Any:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.ValueInfoProto(name=n) for n in names if n not in present)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _relative_errors(reference: Any, candidate: Any, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    names = [o.name for o in reference.get_outputs()]
    squared_error = dict.fromkeys(names, 0.0)
    squared_norm = dict.fromkeys(names, 0.0)
    for batch in feeds:
        want = dict(zip(names, reference.run(names, batch), strict=True))
        got = dict(zip(names, candidate.run(names, batch), strict=True))
        for name in names:
            a, b = want[name], got[name]
            if a.dtype.kind != "f" or a.shape != b.shape:
                continue
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            finite = np.isfinite(a64) & np.isfinite(b64) & (np.abs(a64) < 1e30)  # masks hold -inf/min
            squared_error[name] += float(((a64 - b64)[finite] ** 2).sum())
            squared_norm[name] += float((a64[finite] ** 2).sum())
    return {n: (squared_error[n] / squared_norm[n]) ** 0.5 if squared_norm[n] > 0 else 0.0 for n in names}


def rank_nodes(float_graph: Path, quantized_graph: Path, feeds: list[dict[str, np.ndarray]], *,
               op_types: tuple[str, ...] | None = None, threads: int = 1) -> list[NodeDrift]:
    """Quantized nodes of `float_graph`, the worst first. Candidates are the operators the
    quantizer covers (`op_types`; default: ONNX Runtime's dynamic-quantization operators); one
    counts as quantized when the quantized graph replaced it (dynamic quantization), feeds it
    dequantized inputs (QDQ), or dequantizes its output (a quantized embedding table)."""
    import onnx
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    op_types = op_types or (*IntegerOpsRegistry, "Gemm")  # Gemm is quantized as a MatMul

    float_model, quantized_model = onnx.load(str(float_graph)), onnx.load(str(quantized_graph))
    # only the tensors around candidate nodes are exposed: every intermediate of a base model at
    # 512 tokens (attention scores among them) would hold gigabytes per batch
    weights = {i.name for i in float_model.graph.initializer}
    around = [t for node in float_model.graph.node if node.op_type in op_types
              for t in (*node.input, *node.output)]
    tensors = list(dict.fromkeys(t for t in around if t and t not in weights))
    errors = _relative_errors(_session_with_outputs(float_graph, tensors, threads),
                              _session_with_outputs(quantized_graph, tensors, threads), feeds)
    dequantizers = [n for n in quantized_model.graph.node if n.op_type == "DequantizeLinear"]
    dequantized = {o for n in dequantizers for o in n.output}
    to_dequantize = {i for n in dequantizers for i in n.input}
    kept = {n.name: n for n in quantized_model.graph.node}
    drifts = []
    for node in float_model.graph.node:
        counterpart = kept.get(node.name)
        if node.op_type not in op_types or (counterpart is not None and not (
                any(i in dequantized for i in counterpart.input)
                or any(o in to_dequantize for o in counterpart.output))):
            continue  # not quantized
        total = errors.get(node.output[0], 0.0)
        inherited = max((errors.get(i, 0.0) for i in node.input), default=0.0)
        split = f"{node.name}_MatMul"  # dynamic quantization turns a Gemm into MatMul + Add first
        exclude_as = split if counterpart is None and any(n.startswith(split) for n in kept) else node.name
        drifts.append(NodeDrift(node.name, node.op_type, total - inherited, total, exclude_as))
    return sorted(drifts, key=lambda d: d.own, reverse=True)


def side_by_side(graphs: list[Path], feeds: dict[str, np.ndarray], threads: int, *, rounds: int = 5,
                 runs: int = 2) -> list[float]:
    """Rows/s of one batch through each graph on ONNX Runtime, measured side by side: in every
    round each graph gets a fresh session (one at a time: bounded memory), one untimed run and
    `runs` timed ones, so that the machine's drift falls on all alike; worker threads do not
    spin, so that no session's threads slow the next one. The median over the rounds."""
    import onnxruntime as ort

    rows = len(next(iter(feeds.values())))
    seconds: list[list[float]] = [[] for _ in graphs]
    for _ in range(rounds):
        for i, graph in enumerate(graphs):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            session.run(None, feeds)
            for _ in range(runs):
                start = time.perf_counter()
                session.run(None, feeds)
                seconds[i].append(time.perf_counter() - start)
            del session
    return [rows / statistics.median(times) for times in seconds]


SHARE = 0.25  # of the examples each trial re-runs, by default...
MIN_SHARE = 500  # ...but at least this many (a trial on all of them when that is most of them)
LABEL_STRATA = 16  # gold labels with more distinct values (answers, tag strings) count as present or not


def share(labels: list[str], splits: list[str], sizes: np.ndarray, count: int) -> np.ndarray:
    """`count` example indices, a fixed stratified share: the examples grouped by split and gold
    label (by whether there is one, where labels are free text), each group given its
    proportional part (largest remainders) and taken evenly spread along its examples sorted by
    size (tokens), so that short and long ones, each label and each split are all represented."""
    n = len(labels)
    if count >= n:
        return np.arange(n)
    free_text = len(set(labels)) > LABEL_STRATA
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (label, split) in enumerate(zip(labels, splits, strict=True)):
        groups.setdefault((split, str(bool(label)) if free_text else label), []).append(i)
    members = [np.asarray(g)[np.argsort(sizes[g], kind="stable")] for g in groups.values()]
    quota = np.array([count * len(g) / n for g in members])
    parts = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - parts), kind="stable")[: count - int(parts.sum())]:
        parts[i] += 1
    while count >= len(members) and (parts == 0).any():  # every group, however small, represented
        parts[np.argmax(parts)] -= 1
        parts[np.argmin(parts)] += 1
    picked = [g[np.linspace(0, len(g) - 1, k).round().astype(int)]
              for g, k in zip(members, parts, strict=True) if k]
    return np.sort(np.concatenate(picked)) if picked else np.arange(0)


def share_size(examples: int, asked: int | None) -> int:
    """Examples a trial runs on: `asked` (0: all), else a quarter and at least MIN_SHARE; all of
    them when the share would be over half (confirming would then cost more than it saves)."""
    count = examples if asked == 0 else asked or max(int(np.ceil(SHARE * examples)), MIN_SHARE)
    return examples if count > examples // 2 else count


WIDTH = 3  # candidates (the most drifting nodes still quantized) tried per step
MAX_STEPS = 6  # nodes left in float, at most (and never more than a quarter of them)
Attempt = dict[str, Any]


@dataclass
class Search:
    attempts: list[Attempt] = field(default_factory=list)  # every re-quantization tried
    steps: list[dict[str, Any]] = field(default_factory=list)  # the nodes kept in float, in order
    chosen: Attempt = field(default_factory=dict)  # the attempt the artifact is left as
    confirmed: list[Attempt] = field(default_factory=list)  # share passes re-run on every row


def closeness(attempt: Attempt, baseline: dict[str, float], min_agreement: float, keep: float
              ) -> tuple[float, float]:
    """How near the gate an attempt is, the task metric first: (the worst of each metric's share
    of the baseline's, the agreement's share of its floor), each capped where the gate is met.
    Compared as a pair, a node that recovers the metric wins over one that only moves agreement;
    once the metric holds, only agreement counts (more metric would cost speed for nothing)."""
    shares = [min(attempt["metrics"][k] / v, keep) for k, v in baseline.items()
              if k in attempt["metrics"] and v > 0]
    agreement = attempt.get("agreement")
    agrees = min(agreement / min_agreement, 1.0) if agreement is not None and min_agreement > 0 else 1.0
    return min(shares, default=0.0), agrees


Margins = Callable[[Attempt, Attempt], tuple[float, float]]


def noise_margin(examples: int, differing: int) -> float:
    """The least difference in a per-example mean (accuracy, exact match, F1, agreement) between
    two graphs run on the same `examples` that counts as real: each of the `differing` examples
    where their predictions differ moves the mean by at most 1/examples, so with no real
    difference the sum of those moves has a standard deviation of at most sqrt(differing)/examples;
    twice that (about 95 % two-sided)."""
    return 2.0 * differing ** 0.5 / examples if examples else 0.0


def compare(a: Attempt, b: Attempt, score: Callable[[Attempt], tuple[float, float]],
            margins: tuple[float, float]) -> int:
    """+1 where `a` scores better than `b` beyond the noise, -1 where worse, 0 where they cannot
    be told apart: the metric first, then agreement (see `closeness`)."""
    for mine, theirs, margin in zip(score(a), score(b), margins, strict=True):
        if abs(mine - theirs) > margin:
            return 1 if mine > theirs else -1
    return 0


def greedy(ranking: list[NodeDrift], trial: Callable[[list[str]], Attempt], before: Attempt,
           score: Callable[[Attempt], tuple[float, float]], width: int = WIDTH,
           max_steps: int = MAX_STEPS, confirm: Callable[[list[str]], Attempt] | None = None,
           margins: Margins | None = None, anchor: Attempt | None = None) -> Search:
    """Metric-confirmed greedy search. Each step tries returning each of the `width` most
    drifting nodes still quantized to float (one `trial` each, on top of those already kept in
    float) and keeps the one that scores best; it stops when an attempt passes its gate, when no
    candidate improves on the step before by more than the noise (`margins(a, b)`: the least real
    difference in each score component; none given: any), or after `max_steps` nodes (at most
    a quarter).
    With `confirm` (trials ran on a share of the rows), every row decides what the share cannot:
    a step the share cannot tell from the one before is re-run by `confirm` and kept only if it
    beats, beyond the noise, the last graph run on every row (`anchor`: `before` on every row);
    a step's pass counts only once `confirm` re-runs it on every row and it passes there too;
    where every row refutes the share, the share has lost its say: the search goes on with
    `confirm` as its trial."""
    noise = margins or (lambda a, b: (0.0, 0.0))
    search = Search(chosen=before | {"excluded": []})
    limit = min(max_steps, max(1, len(ranking) // 4))
    current = before | {"excluded": []}
    anchor = (anchor or before) | {"excluded": []}
    for _ in range(limit):
        pool = [d for d in ranking if d.exclude_as not in current["excluded"]][:width]
        tried = [(d, trial([*current["excluded"], d.exclude_as])) for d in pool]
        search.attempts += [a for _, a in tried]
        if not tried:
            break
        node, best = max(tried, key=lambda t: (t[1]["gate_passed"], score(t[1])))
        verdict = 1 if best["gate_passed"] else compare(best, current, score, noise(best, current))
        decided, was = best, current
        if verdict == 0 and confirm is not None:  # the share cannot tell: every row decides
            search.confirmed.append(decided := confirm(best["excluded"]))
            verdict = 1 if decided["gate_passed"] else compare(decided, anchor, score, noise(decided, anchor))
            was = anchor
        if verdict <= 0:
            break  # no candidate helps beyond the noise: more float nodes would cost speed for nothing
        regained = {k: decided["metrics"][k] - was["metrics"].get(k, 0.0) for k in decided["metrics"]}
        search.steps.append({
            "node": node.name, "op_type": node.op_type, "drift": node.own, "metrics": decided["metrics"],
            "regained": regained, "excluded": list(best["excluded"]), "decided_on": decided.get("on", "all"),
            "seconds": round(sum(a.get("seconds", 0.0) for _, a in tried), 2),  # what the step's trials took
        })
        current, search.chosen = best, best
        if decided is not best:
            anchor = search.chosen = decided
        if decided["gate_passed"] and (confirm is None or decided is not best):
            break
        if best["gate_passed"]:  # on the share: on every row?
            search.confirmed.append(confirmed := confirm(best["excluded"]))  # type: ignore[misc]
            search.chosen = anchor = confirmed
            if confirmed["gate_passed"]:
                break
            trial, confirm, current = confirm, None, confirmed  # type: ignore[assignment]
    return search
