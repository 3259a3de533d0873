"""report.md's triage section: what the search tried, which nodes stayed in float, what each
regained of the task metric and what it cost in speed (measured side by side)."""

from __future__ import annotations

from typing import Any


def triage_lines(triage: dict[str, Any]) -> list[str]:
    out = []
    for label, result in triage.items():
        before = ", ".join(f"{k} {100 * v:.2f}" for k, v in result["before"].items())
        last = result.get("final") or result["attempts"][-1]
        after = ", ".join(f"{k} {100 * v:.2f}" for k, v in last["metrics"].items())
        if last.get("agreement") is not None:
            after += f" (agreement with torch fp32 {100 * last['agreement']:.2f} %)"
        verdict = "back above its gate" if result["recovered"] else "still below its gate"
        nodes = ", ".join(f"`{n}`" for n in result["float_nodes"]) or "none"
        out.append(f"Quantization triage, {label.replace(':', ' ')}: {before} missed the gate; "
                   f"{len(result['attempts'])} re-quantizations tried ({result.get('search', 'by drift')}); "
                   f"leaving {len(result['float_nodes'])} of {result['candidates']} quantized nodes "
                   f"in float ({nodes}) gave {after}, {verdict}."
                   + (f" Try {result['otherwise']}." if result.get("otherwise") else ""))
        out += _cost_lines(result)
        if result.get("steps"):
            out += ["", *_steps_table(result["steps"], _on_share(result)),
                    *_speed_lines(result.get("speed") or {})]
            if not result.get("speed"):
                out += ["What each node left in float costs in speed is timed side by side for ONNX graphs "
                        "only: compare this variant's end-to-end figure with an untriaged run's.", ""]
    return [*out, ""] if out else []


def _on_share(result: dict[str, Any]) -> bool:
    """Trials ran on a share of the examples."""
    share = result.get("share") or {}
    return bool(share) and not share.get("passed_as_built") and share["examples"] < share["of"]


def _cost_lines(result: dict[str, Any]) -> list[str]:
    """What the search took: the ranking, the trials on the share, the runs on every example."""
    cost, share = result.get("cost_s"), result.get("share")
    if not cost or not share:
        return []
    tried, everyone = len(result["attempts"]), f"all {share['of']} examples"
    if share.get("passed_as_built"):
        return ["", f"Search cost: ranking by drift {cost['ranking']:.0f} s; the share of "
                f"{share['examples']} examples passed as built (it could not guide the search): "
                f"{tried} trials on {everyone} {cost['all']:.0f} s."]
    if share["examples"] >= share["of"]:
        return ["", f"Search cost: ranking by drift {cost['ranking']:.0f} s; {tried} trials on {everyone} "
                f"{cost['all']:.0f} s."]
    confirmed = len(result.get("confirmed", []))
    after = sum(a.get("on") == "all" for a in result["attempts"])  # once all examples refuted the share
    tried -= after
    return ["", f"Search cost: ranking by drift {cost['ranking']:.0f} s; {tried} trials on "
            f"{share['examples']} of {share['of']} examples (a share stratified by {share['by']}) "
            f"{cost['share']:.0f} s; runs on {everyone} {cost['all']:.0f} s ("
            + (f"{confirmed} step(s) the share could not tell from noise or passed on it, checked there, "
               if confirmed else "")
            + (f"{after} trials there once all examples refuted the share, " if after else "")
            + "the chosen graph)."]


def _steps_table(steps: list[dict[str, Any]], shared: bool) -> list[str]:
    out = ["| node left in float | op | drift it added | metric regained | search s | rows/s | "
           "speed lost (this node) | speed lost (all so far) |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for s in steps:
        regained = ", ".join(f"{k} {100 * v:+.2f}" for k, v in s["regained"].items())
        regained += " (decided on all examples)" if s.get("decided_on") == "all" and shared else ""
        rate = f"{s['rows_per_s']:.1f}" if s.get("rows_per_s") else "—"
        own = f"{s['step_cost_pct']:.1f} %" if s.get("step_cost_pct") is not None else "—"
        lost = f"{s['speed_lost_pct']:.1f} %" if s.get("speed_lost_pct") is not None else "—"
        seconds = f"{s['seconds']:.0f}" if s.get("seconds") is not None else "—"
        out.append(f"| `{s['node']}` | {s['op_type']} | {s['drift']:.4f} | {regained} | {seconds} | {rate} | "
                   f"{own} | {lost} |")
    return out


def _speed_lines(speed: dict[str, Any]) -> list[str]:
    if not speed:
        return [""]
    final, quantized = speed["final_rows_per_s"], speed["quantized_rows_per_s"]
    float_rate = speed["float_rows_per_s"]
    batch = f"one batch of {speed['rows']} rows, {speed['width']} tokens wide"
    return ["", f"Speed measured side by side on {batch} (ONNX Runtime, median of 5 rounds taken in turns): "
            f"float graph {float_rate:.1f} rows/s, fully quantized {quantized:.1f}, with the nodes above in "
            f"float {final:.1f} ({final / float_rate:.2f}× the float graph). Differences of a few % are "
            "within this machine's noise.", ""]
