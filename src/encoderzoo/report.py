"""report.json, report.md and a throughput plot, built from what the stages wrote."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from encoderzoo.fileio import atomic_path, read_json, write_json, write_text
from encoderzoo.report_md import markdown
from encoderzoo.verdict import verdict
from encoderzoo.workspace import Workspace


def _read(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def collect(ws: Workspace) -> dict[str, Any]:
    """The stage results present in the run folder, as report.json sections."""
    accuracy = _read(ws.accuracy_json)
    benchmark = _read(ws.benchmark_json)
    inference = _read(ws.infer_json) or {}
    measured = benchmark or inference
    return {
        "data": _read(ws.prepare_json),
        "export": _read(ws.record("export")),
        "optimize": _read(ws.record("optimize")),
        "quantize": _read(ws.record("quantize")),
        "triage": _read(ws.triage_json),
        "inference": _read(ws.infer_json),
        "accuracy": accuracy["rows"] if accuracy else [],
        "gate_passed": accuracy["gate_passed"] if accuracy else None,
        "compared_with": accuracy.get("compared_with", "torch fp32") if accuracy else None,
        "scoring": accuracy.get("scoring") if accuracy else None,
        "benchmark": benchmark["rows"] if benchmark else [],
        "benchmark_settings": benchmark["settings"] if benchmark else None,
        "benchmark_backends": benchmark["backends"] if benchmark else None,
        "environment": benchmark["environment"] if benchmark else None,
        "model_shape": measured.get("model_shape"),
        "ceiling": measured.get("ceiling"),
    }


def write_report(ws: Workspace, header: dict[str, Any], environment: dict[str, Any]) -> dict[str, Any]:
    sections = collect(ws)
    sections["environment"] = sections["environment"] or environment
    runs = (sections.get("inference") or {}).get("runs", [])
    out = str(header.get("config", {}).get("out", ws.root))  # the run folder as it was named
    sections["verdict"] = verdict(sections["accuracy"], runs, out)
    report = header | sections
    if report["benchmark"]:
        plot_throughput(report["benchmark"], ws.plot_png, title=header["recipe"]["name"])
        report["plot"] = ws.plot_png.name
    write_json(ws.report_json, report)
    write_text(ws.report_md, markdown(report))
    return sections


def plot_throughput(rows: list[dict[str, Any]], path: Path, *, title: str) -> None:
    """Throughput against batch size, one line per backend and precision, one panel per
    sequence length; below it, where a ceiling was measured, the % of it each point reached."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seq_lens = sorted({r["seq_len"] for r in rows})
    panels = [("throughput_per_s", "sequences / s", "")]
    if any(r.get("ceiling_pct") is not None for r in rows):
        panels.append(("ceiling_pct", "% of the GEMM ceiling", " (roofline)"))
    fig, axes = plt.subplots(len(panels), len(seq_lens), figsize=(5 * len(seq_lens), 4 * len(panels)),
                             squeeze=False)
    for (key, ylabel, suffix), axes_row in zip(panels, axes, strict=True):
        for ax, seq in zip(axes_row, seq_lens, strict=True):
            series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for r in rows:
                if r["seq_len"] == seq and r.get(key) is not None:
                    series[f"{r['backend']} {r['precision']}"].append((r["batch_size"], r[key]))
            for label, points in series.items():
                xs, ys = zip(*sorted(points), strict=True)
                ax.plot(xs, ys, marker="o", label=label)
            batch_sizes = sorted({r["batch_size"] for r in rows if r["seq_len"] == seq})
            ax.set_xscale("log", base=2)
            ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
            ax.set_ylim(bottom=0, top=100 if key == "ceiling_pct" else None)
            ax.set_xlabel("batch size")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{title}, seq {seq}{suffix}")
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
