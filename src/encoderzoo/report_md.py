"""report.md: the run at a glance, section by section, from report.json's contents."""

from __future__ import annotations

from typing import Any

from encoderzoo.features import Batching
from encoderzoo.report_export import export_section
from encoderzoo.report_roofline import ceiling_lines, rate_cell, roofline_section
from encoderzoo.report_triage import triage_lines


def _memory(peak: dict[str, Any]) -> str:
    largest = peak.get("largest_child_mib")
    child = f" (graph optimizer child {largest:.0f} MiB)" if largest else ""
    return f"{peak['process_mib']:.0f} MiB{child}"


def _data_summary(data: dict[str, Any], seq_len: int) -> str:
    """How many examples, and how they fit in `seq_len` tokens: truncated, or split in windows."""
    examples, rows = data.get("examples", "?"), data.get("features", data.get("examples", "?"))
    mean = data.get("mean_tokens", "?")
    if rows != examples:
        return f"{examples} examples in {rows} windows of at most {seq_len} tokens (mean {mean})"
    return (f"{examples} examples, max {seq_len} tokens (mean {mean}; "
            f"{data.get('at_seq_len', '?')} reach the maximum and may be truncated)")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def _label(row: dict[str, Any]) -> str:
    return f"{row['backend']} {row['precision']}"


def markdown(report: dict[str, Any]) -> str:
    recipe, ckpt, env = report["recipe"], report["checkpoint"], report["environment"]
    data = report.get("data") or {}
    weights = f"random weights ({ckpt['random_weights']}), " if ckpt.get("random_weights") else ""
    lines = [
        f"# encoderzoo report: {recipe['name']}",
        "",
        f"{recipe['description']}",
        "",
        f"- checkpoint: `{ckpt['location']}` ({weights}{ckpt['model_type']}, stored "
        f"{ckpt['stored_dtype']}, run in float32)",
        f"- data: `{data.get('data', '?')}`, {_data_summary(data, recipe['seq_len'])}",
        f"- machine: {env['cpu']['model']}, {env['threads']} threads, "
        f"{', '.join(env['cpu']['flags']) or 'no AVX-512'}",
        f"- created {report['created']} by encoderzoo {report['encoderzoo']}"
        + (f"; peak resident memory {_memory(report['peak_memory'])}" if report.get("peak_memory") else ""),
        "",
    ]
    lines += _deploy_section(report.get("verdict"), report)
    lines += _accuracy_section(report)
    lines += _inference_section(report.get("inference") or {}, report)
    lines += export_section(report)
    lines += _performance_section(report)
    lines += _backends_section(report)
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    lines += ["## Environment", "", f"- Python {env['python']} on {env['platform']}",
              f"- {packages}", f"- ONNX Runtime providers: {', '.join(env['onnxruntime_providers'])}",
              ""]
    return "\n".join(lines)


def _deploy_section(chosen: dict[str, Any] | None, report: dict[str, Any]) -> list[str]:
    """What to deploy on this machine, and the lines that serve or load exactly that."""
    if chosen is None:
        return ["## Deploy", "", "No variant passed its gate: nothing here is verified to deploy.", ""]
    metrics = ", ".join(f"{_metric_label(k)} {100 * v:.2f}" for k, v in chosen["metrics"].items())
    compared = report.get("compared_with") or "torch fp32"
    agreement = f", agreement with {compared} {100 * chosen['agreement']:.2f} %" \
        if chosen.get("agreement") is not None else ""
    return ["## Deploy", "",
            f"**{chosen['variant']}**: the fastest end to end that passed its gate on this machine "
            f"({chosen['rows_per_s']:,.0f} rows/s; {metrics}{agreement}).", "",
            f"- serve it: `{chosen['serve']}`", f"- or in Python: `model = {chosen['load']}`", ""] + (
            [f"Faster, passed its gate, not chosen: {'; '.join(chosen['passed_over'])} — a row's outputs "
             "depend on the rows batched with it, so served in other batches than the run's its verified "
             "predictions do not hold.", ""]
            if chosen.get("passed_over") else []) + _rebatch_line(chosen.get("rebatch"))


def _rebatch_line(check: dict[str, Any] | None) -> list[str]:
    """How far the chosen variant's rows moved when run alone (encoderzoo.rebatch)."""
    if not check:
        return []
    return [f"Checked here: {check['rows']} rows run again one at a time, as a lone request runs, moved by "
            f"at most {check['max_abs_diff']:.2g} ({check['relative']:.2g} of their largest output; "
            f"allowed {check['tolerance']:g}).", ""]


def _metric_label(key: str) -> str:
    """"matched.accuracy" -> "accuracy (matched)"."""
    split, _, metric = key.rpartition(".")
    return f"{metric} ({split})" if split else metric


REFERENCE_SOURCES = {
    "published": "the recipe's published reference (its own checkpoint)",
    "eval_results.json": "the checkpoint's own eval_results.json",
    "--reference": "--reference",
}


def _accuracy_section(report: dict[str, Any]) -> list[str]:
    rows = report["accuracy"]
    if not rows:
        return []
    keys = list(rows[0]["metrics"])
    gate, agreement = rows[0]["gate"], next((r["min_agreement"] for r in rows if r["min_agreement"]), None)
    reference = rows[0]["reference"]
    out = ["## Accuracy", ""]
    compared = report.get("compared_with") or "torch fp32"
    random = report["checkpoint"].get("random_weights")
    if random:
        out += [f"**Random weights ({random})**: these scores say nothing about the architecture; the "
                "gate only checks that every fp32 backend agrees with torch fp32 (reduced precisions "
                "are shown, not gated: a random model has no margins to keep).", ""]
    elif reference["reference"] is None:
        out += ["No published or recorded reference applies to this checkpoint (pass --reference "
                f"METRIC=VALUE to give one): {compared} is the reference.", ""]
    source = REFERENCE_SOURCES.get(reference["source"] or "", reference["source"])
    rules = [] if random else [f"keep ≥ {100 * gate:g} % of the baseline metric ({compared} for the other "
                               f"backends{f'; {source} for {compared}' if reference['reference'] else ''})"]
    if agreement is not None:
        rules.append(f"agree with {compared} on ≥ {100 * agreement:g} % of the predictions")
    scoring = report.get("scoring") or {}
    out += [f"Gate: {' and '.join(rules)}.", ""]
    if scoring:
        out += ["Scored with " + "; ".join(f"{k}: {v}" for k, v in scoring.items()) + ".", ""]
    out += ["| backend | precision | " + " | ".join(_metric_label(k) for k in keys)
            + f" | agreement with {compared.split()[0]} | max abs diff | gate |",
            "|---|---|" + "---:|" * len(keys) + "---:|---:|---|"]
    if reference["reference"]:
        label = "published reference" if reference["source"] == "published" else f"reference ({source})"
        out.append(f"| {label} | | " + " | ".join(_pct(reference["reference"].get(k)) for k in keys)
                   + " | | | |")
    for r in rows:
        vs = r["vs_torch"] or {}
        shown = f"{100 * vs['agreement']:.2f} %" if vs else "—"
        if "cosine_mean" in vs:  # embeddings: their cosine with the compared run's
            shown += f" (cosine mean {vs['cosine_mean']:.6f}, min {vs['cosine_min']:.6f})"
        drift = f"{vs['max_abs_diff']:.2g}" if vs else "—"
        verdict = "not gated" if not r["gated"] else "reference" if r["baseline"] == "none" else \
            "pass" if r["gate_passed"] else "**FAIL**"
        values = " | ".join(_pct(r["metrics"].get(k)) for k in keys)
        out.append(f"| {r['backend']} | {r['precision']} | {values} | {shown} | {drift} | {verdict} |")
    out.append("")
    if any(r["backend"] == "device" for r in rows):
        out += ["`device` rows: what a device runner (ais_bench, msame) wrote for the samples of `prepare "
                "--format bin`, read by `score --outputs` (the Ascend hand-off's `ascend/run.sh` runs both).",
                ""]
    failed = [r for r in rows if r["failures"]]
    if failed:
        out += ["Why rows failed their gate:", ""]
        out += [f"- {_label(r)}: {'; '.join(r['failures'])}" for r in failed]
        out.append("")
    out += _breakdown_table(rows)
    out += triage_lines(report.get("triage") or {})
    return out


def _inference_section(inference: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """Warm passes over the prepared data, timed in the process that ran inference, with the
    setup and the first batch as figures of their own; nothing for outputs reused or resumed."""
    runs = inference.get("runs") or []
    if not runs:
        return []
    unit = "examples/s" if all(r.get("windows") == r.get("examples") for r in runs) else "windows/s"
    out = [f"End-to-end inference over the prepared data (tokenized inputs; {_batching(inference)}): the "
           "median of warm passes timed right after each backend's real pass, in the same process; "
           "setup (verification, session or compilation) and the first batch apart:", "",
           f"| backend | precision | {unit} (warm) | GFLOP/s (% of ceiling) | passes × rows | setup s | "
           "first batch ms | first pass s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        timing = r.get("timing") or {}
        warm = timing.get("warm")
        if r.get("reused"):
            speed, passes = "reused outputs: not timed in this run", ""
        elif r.get("resumed_rows"):
            speed, passes = f"resumed ({r['resumed_rows']} of {r['windows']} rows done before): not timed", ""
        elif warm:
            speed, passes = f"{warm['rows_per_s']:.1f}", f"{warm['runs']} × {warm['rows']}"
        else:
            speed, passes = "not timed (--e2e-runs 0, or on Ray)", ""
        shown = {} if r.get("reused") else timing

        def figure(key: str, scale: float = 1.0, fmt: str = ".2f", t: dict[str, Any] = shown) -> str:
            return f"{scale * t[key]:{fmt}}" if t.get(key) is not None else "—"

        rate = rate_cell(warm) if warm and not r.get("reused") and not r.get("resumed_rows") else "—"
        out.append(f"| {r['backend']} | {r['precision']} | {speed} | {rate} | {passes} | "
                   f"{figure('setup_s')} | {figure('first_batch_s', 1000, '.1f')} | {figure('pass_s')} |")
    if not report.get("benchmark"):
        out += ["", *ceiling_lines(report)]
    return [*out, ""]


def _batching(inference: dict[str, Any]) -> str:
    """The batching of the runs: once when they share it, else per backend (defaults differ)."""
    described = {f"{r['backend']} {r['precision']}":  # recorded before max_padding existed: none
                 Batching(**({"max_padding": 0.0} | r["batching"])).describe() for r in inference["runs"]}
    if len(set(described.values())) == 1:
        return next(iter(described.values()))
    return "; ".join(f"{label}: {text}" for label, text in described.items())


_NOT_FRACTIONS = ("rmse", "threshold")  # breakdown values shown as numbers, not percentages


def _breakdown_table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per group and value (accuracy per genre; HasAns/NoAns exact and F1; F1 per
    entity type), one column per run."""
    groups = list(dict.fromkeys(g for r in rows for g in r["breakdown"]))
    if not groups:
        return []
    out = ["Per group:", "", "| group | examples | " + " | ".join(_label(r) for r in rows) + " |",
           "|---|---:|" + "---:|" * len(rows)]
    for group in groups:
        cells = [r["breakdown"].get(group) for r in rows]
        first = next(c for c in cells if c)
        for metric in (k for k in first if k != "examples"):
            shown = (lambda v: f"{v:.4f}") if metric in _NOT_FRACTIONS else _pct
            values = " | ".join(shown(c[metric]) if c and metric in c else "—" for c in cells)
            out.append(f"| {group} {metric} | {int(first['examples'])} | {values} |")
    out.append("")
    return out


def _performance_section(report: dict[str, Any]) -> list[str]:
    """Per sequence length: one row per backend and precision, one column per batch size;
    each cell "sequences/s (ratio to torch fp32)", then the latency percentiles."""
    rows = report["benchmark"]
    if not rows:
        return []
    labels = list(dict.fromkeys(_label(r) for r in rows))
    cell = {(r["seq_len"], r["batch_size"], _label(r)): r for r in rows}
    base = "torch fp32" if "torch fp32" in labels else labels[0]
    settings = report.get("benchmark_settings") or {}
    out = ["## Performance", "",
           f"Sequences per second at the median latency, and the ratio to {base} at the same "
           f"batch size; full-length inputs; {settings.get('warmup', '?')} warm-up runs, then "
           f"≥ {settings.get('min_runs', '?')} runs and ≥ {settings.get('min_seconds', '?')} s "
           "per point.", ""]
    for seq in sorted({r["seq_len"] for r in rows}):
        batches = sorted({r["batch_size"] for r in rows if r["seq_len"] == seq})
        out += [f"| seq {seq} | " + " | ".join(f"batch {b}" for b in batches) + " |",
                "|---|" + "---:|" * len(batches)]
        for label in labels:
            values = []
            for b in batches:
                here, ref = cell.get((seq, b, label)), cell.get((seq, b, base))
                if here is None:
                    values.append("—")
                elif label == base or ref is None:
                    values.append(f"{here['throughput_per_s']:.1f}")
                else:
                    ratio = here["throughput_per_s"] / ref["throughput_per_s"]
                    values.append(f"{here['throughput_per_s']:.1f} ({ratio:.2f}×)")
            out.append(f"| {label} | " + " | ".join(values) + " |")
        out += ["", f"Latency per batch at seq {seq}, ms: p50 / p90 / p99 (timed runs); a percentile "
                    "is shown only with enough runs to support it (p90: 10, p99: 100):", "",
                "| | " + " | ".join(f"batch {b}" for b in batches) + " |", "|---|" + "---:|" * len(batches)]
        for label in labels:
            values = [_latency(c) if (c := cell.get((seq, b, label))) else "—" for b in batches]
            out.append(f"| {label} | " + " | ".join(values) + " |")
        out.append("")
    out += roofline_section(report)
    if report.get("plot"):
        out += [f"![throughput]({report['plot']})", ""]
    return out


def _latency(row: dict[str, Any]) -> str:
    values = (row["latency_ms"].get(p) for p in ("p50", "p90", "p99"))
    shown = [f"{v:.1f}" if v is not None else "—" for v in values]
    return f"{' / '.join(shown)} ({row['runs']})"


def _backends_section(report: dict[str, Any]) -> list[str]:
    """What each backend and precision ran with (threads, providers, graph, hints)."""
    runs = (report.get("inference") or {}).get("runs") or []
    settings = {f"{r['backend']} {r['precision']}": r["settings"] for r in runs}
    settings |= {k.replace(":", " "): v for k, v in (report.get("benchmark_backends") or {}).items()}
    if not settings:
        return []
    out = ["## Backend settings", ""]
    for label, values in settings.items():
        shown = ", ".join(f"{k} {v}" for k, v in values.items() if v is not None)
        out.append(f"- {label}: {shown}")
    return [*out, ""]
