"""report.md's account of the model files: the export (or the graph made elsewhere) with its
parity, the fusion, and each reduced-precision artifact with how it was made."""

from __future__ import annotations

from typing import Any


def export_section(report: dict[str, Any]) -> list[str]:
    export, optimize = report.get("export"), report.get("optimize")
    if not export:
        return []
    batches = (f"{len({p['inputs'] for p in export['parity']})} padded batches of "
               f"{export.get('parity_inputs', 'the prepared examples')}")
    imported = export.get("imported")
    if imported:
        fixed = [f"{what} {imported[f'static_{what}']}" for what in ("batch", "seq")
                 if imported[f"static_{what}"]]
        out = ["## Graph (made elsewhere)", "",
               f"- `{imported['file']}` ({imported['format']}, SHA-256 {imported['sha256'][:12]}…), "
               f"imported as `{export['file']}` with inputs {imported['inputs']} and outputs "
               f"{imported['outputs']}",
               f"- shape: fixed {' x '.join(fixed)}; every batch is padded to it" if fixed else
               "- shape: dynamic batch and sequence",
               f"- max abs diff vs {export['parity_against']} {export['max_abs_diff']:.2g} over {batches}"]
    else:
        out = ["## Export", "",
               f"- `{export['file']}`: ONNX opset {export['opset']}, {export['bytes'] / 2**20:.1f} MiB, "
               f"max abs diff vs PyTorch {export['max_abs_diff']:.2g} over {batches}"]
        out += first_token_lines(export.get("first_token") or {})
    if optimize and optimize["fused"]:
        fused = ", ".join(f"{op} × {n}" for op, n in optimize["fused_ops"].items()) or "nothing"
        against = export.get("parity_against", "PyTorch")
        out.append(f"- `{optimize['file']}`: fused {fused}; max abs diff vs {against} "
                   f"{optimize['max_abs_diff']:.2g}")
    elif optimize:
        out.append(f"- ONNX Runtime's optimizer {optimize['reason']}; the backends run the "
                   f"unfused `{optimize['file']}`")
    for kind, info in (report.get("quantize") or {}).items():
        calibration = (f", calibrated on {info['calibration_rows']} {info['calibration']}"
                       if "calibration_rows" in info else "")
        kept = info.get("excluded_nodes") or []
        shown = ", ".join(f"`{n}`" for n in kept[:6]) + (", …" if len(kept) > 6 else "")
        excluded = f", {len(kept)} nodes left in float by triage ({shown})" if kept else ""
        out.append(f"- {kind}: {info['method']} of `{info['source']}`{calibration}{excluded} "
                   f"({info['bytes'] / 2**20:.1f} MiB, {info['seconds']:.1f} s)")
    out.append("")
    return out


def first_token_lines(first_token: dict[str, Any]) -> list[str]:
    """How the export's last layer was traced: for the first token only, or whole and why."""
    if first_token.get("applied"):
        saved = first_token.get("flops_saved")
        share = "" if saved is None else f"{100 * saved:.1f} % of the FLOPs at the rows' mean length saved, "
        return [f"- last layer computed for the first token only (the head reads no other; keys and "
                f"values still for every token): {share}the slimmed PyTorch model within "
                f"{first_token['max_abs_diff']:.2g} of the untouched one, and the graph's parity above is "
                "against the untouched model"]
    if first_token.get("reason"):
        return [f"- last layer whole: {first_token['reason']}"]
    return []
