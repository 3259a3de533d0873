"""report.md's roofline view: achieved GFLOP/s of every benchmark point against the machine's
measured ceiling for its precision, and what that ceiling is."""

from __future__ import annotations

import time
from typing import Any

from encoderzoo.precision import ceiling_kinds


def rate_cell(figures: dict[str, Any]) -> str:
    """"GFLOP/s (% of ceiling)", "—" without a FLOP count."""
    gflops = figures.get("gflops")
    if gflops is None:
        return "—"
    pct = figures.get("ceiling_pct")
    return f"{gflops:.0f} ({pct:.0f} %)" if pct is not None else f"{gflops:.0f}"


def ceiling_lines(report: dict[str, Any]) -> list[str]:
    ceiling = report.get("ceiling") or {}
    shape = report.get("model_shape")
    out = []
    if shape:
        out.append(f"FLOPs are counted from the model's config ({shape['layers']} layers, hidden "
                   f"{shape['hidden']}, FFN {shape['ffn']}), attention included, over the real tokens "
                   "(padding is not useful work); a multiply-add is 2 operations.")
        if ((report.get("export") or {}).get("first_token") or {}).get("applied"):
            out.append("Graphs count their last layer as they compute it, for the first token only; "
                       "torch rows count the whole model.")
    if ceiling.get("gflops"):
        shapes = " and ".join("×".join(map(str, g)) for g in ceiling.get("gemms") or []) or "?"
        rates = ", ".join(f"{p} {v:,.0f}" for p, v in sorted(ceiling["gflops"].items()))
        libraries = "; ".join(f"{lib}: " + ", ".join(f"{p} {v:,.0f}" for p, v in sorted(r.items()))
                              for lib, r in (ceiling.get("per_library") or {}).items())
        missing = sorted(ceiling_kinds() - set(ceiling["gflops"]))
        probes = ""
        if ceiling.get("measured_at"):
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ceiling["measured_at"]))
            count = ceiling.get("probes", 1)
            probes = f"; the best of {count} probes, the last {when}" if count > 1 else f"; probed {when}"
        out.append(f"Ceiling (GFLOP/s, the better of {shapes} GEMMs on {ceiling.get('threads', '?')} "
                   f"threads, the best library per precision{probes}): {rates} ({libraries})"
                   + (f"; {', '.join(missing)}: not native on this CPU, so not rated" if missing else "")
                   + ".")
        if ceiling.get("disturbed"):
            share = 100 * ceiling.get("share", 0)
            out.append(f"**Other programs used the cores while the ceiling was measured** (the probe had "
                       f"{share:.0f} % of them): the ceiling is too low and every % of "
                       "it too high. It was not cached; run again on a quiet machine.")
    elif report.get("benchmark"):
        out.append("No ceiling was measured (--no-ceiling): rates are shown without a % of it.")
    return [*out, ""] if out else []


def roofline_section(report: dict[str, Any]) -> list[str]:
    """Per sequence length: GFLOP/s (% of ceiling) per backend and batch size."""
    rows = [r for r in report.get("benchmark") or [] if r.get("gflops") is not None]
    if not rows:
        return []
    labels = list(dict.fromkeys(f"{r['backend']} {r['precision']}" for r in rows))
    cell = {(r["seq_len"], r["batch_size"], f"{r['backend']} {r['precision']}"): r for r in rows}
    out = ["Achieved GFLOP/s at the median latency (% of the ceiling for that precision):", ""]
    for seq in sorted({r["seq_len"] for r in rows}):
        batches = sorted({r["batch_size"] for r in rows if r["seq_len"] == seq})
        out += [f"| seq {seq} | " + " | ".join(f"batch {b}" for b in batches) + " |",
                "|---|" + "---:|" * len(batches)]
        for label in labels:
            values = [rate_cell(c) if (c := cell.get((seq, b, label))) else "—" for b in batches]
            out.append(f"| {label} | " + " | ".join(values) + " |")
        out.append("")
    return out + ceiling_lines(report)
