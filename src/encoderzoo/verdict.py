"""The verdict of a run: the variant to deploy on the machine it ran on — the fastest end to end
(the median of the warm passes over the data) among those whose gate passed — with its speed,
scores and agreement, and the exact lines that serve or load it."""

from __future__ import annotations

from typing import Any


def rate(run: dict[str, Any]) -> float | None:
    """Rows per second of an inference run end to end: its warm passes, else its real pass."""
    timing = run.get("timing") or {}
    warm = timing.get("warm") or {}
    if warm.get("rows_per_s"):
        return float(warm["rows_per_s"])
    return float(run["windows"]) / timing["pass_s"] if timing.get("pass_s") else None


def verdict(accuracy: list[dict[str, Any]], runs: list[dict[str, Any]], out: str) -> dict[str, Any] | None:
    """What to deploy from `out` (the run folder as it was named): None when no gated run passed."""
    rates = {(r["backend"], r["precision"]): rate(r) for r in runs}
    passed = [row for row in accuracy if row["gate_passed"] and row.get("gated", True)
              and rates.get((row["backend"], row["precision"]))]
    if not passed:
        return None
    best = max(passed, key=lambda row: rates[(row["backend"], row["precision"])] or 0.0)
    variant = f"{best['backend']}:{best['precision']}"
    return {"variant": variant, "rows_per_s": rates[(best["backend"], best["precision"])],
            "metrics": best["metrics"], "agreement": (best.get("vs_torch") or {}).get("agreement"),
            "serve": f"encoderzoo serve {out} --variant {variant}",
            "load": f'encoderzoo.load("{out}", variant="{variant}")'}
