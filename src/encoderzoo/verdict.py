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
    """What to deploy from `out` (the run folder as it was named): None when no gated run passed.
    A variant whose rows' outputs depend on the rows batched with them — by its kind, or as
    measured on this machine (encoderzoo.rebatch) — is never chosen: a server batches other rows
    together than the run did, so its verified predictions would not hold; when it was the
    fastest, the verdict says so and why."""
    rates = {(r["backend"], r["precision"]): rate(r) for r in runs}
    invariant = {(r["backend"], r["precision"]): r.get("batch_invariant", True) for r in runs}
    measured = {(r["backend"], r["precision"]): r.get("rebatch") for r in runs}
    passed = [row for row in accuracy if row["gate_passed"] and row.get("gated", True)
              and rates.get((row["backend"], row["precision"]))]
    steady = [row for row in passed if invariant[(row["backend"], row["precision"])]]
    if not steady:
        return None

    def speed(row: dict[str, Any]) -> float:
        return rates[(row["backend"], row["precision"])] or 0.0

    best = max(steady, key=speed)
    variant = f"{best['backend']}:{best['precision']}"
    faster = [f"{key[0]}:{key[1]} ({batch_dependence(measured[key])})" for r in passed
              if not invariant[key := (r["backend"], r["precision"])] and speed(r) > speed(best)]
    return {"variant": variant, "rows_per_s": rates[(best["backend"], best["precision"])],
            "metrics": best["metrics"], "agreement": (best.get("vs_torch") or {}).get("agreement"),
            "serve": f"encoderzoo serve {out} --variant {variant}",
            "load": f'encoderzoo.load("{out}", variant="{variant}")',
            "rebatch": measured.get((best["backend"], best["precision"])),
            "passed_over": faster}  # faster, but batch-dependent


def batch_dependence(check: dict[str, Any] | None) -> str:
    """Why a variant's outputs count as depending on the rows batched with it: its kind, or its
    check on this machine (encoderzoo.rebatch's record)."""
    if check is None or check["within"]:
        return "its kind quantizes over the whole batch"
    by = "a non-finite amount" if check["relative"] is None else f"{check['relative']:.2g}"
    return f"rows run alone moved by {by} of its largest output on this machine"
