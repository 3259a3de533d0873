"""Graph optimization with ONNX Runtime's transformer optimizer (attention, LayerNorm, GELU
fusion), recording which fused operators it produced.

The optimizer runs in a child process with a time limit and an address-space limit: on some
graphs (seen here: a DeBERTa export with `If` nodes) its symbolic shape inference ran for 8+
minutes at 11.7 GB. When the child overruns or fails, the chain goes on with the unfused graph
and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.fileio import temporary

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class OptimizeResult:
    fused: bool  # False: the optimizer failed or overran, the unfused graph stays in use
    fused_ops: dict[str, int]  # fused operator -> count (only those present)
    seconds: float
    reason: str | None = None  # why it fell back


def default_memory_limit(src: Path) -> int:
    """Bytes of address space for the optimizer: 10x the graph, at least 4 GiB, at most 80 %
    of the machine's memory."""
    import psutil

    wanted = max(4 << 30, 10 * src.stat().st_size)
    return min(wanted, int(0.8 * psutil.virtual_memory().total))


def optimize_onnx(
    src: Path, dst: Path, *, model_type: str, config: Any, timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit: int | None = None,
) -> OptimizeResult:
    """Fuse `src` into `dst` (opt_level 0: Python fusions only, so the file stays portable
    across execution providers; sessions apply their own level at load)."""
    limit = memory_limit or default_memory_limit(src)
    tmp, result = temporary(dst), temporary(dst.with_name(f"{dst.name}.result.json"))
    command = [sys.executable, "-m", "encoderzoo.optimize", str(src), str(tmp), str(result),
               model_type, str(int(config.num_attention_heads)), str(int(config.hidden_size)),
               str(limit), str(os.getpid())]
    start = time.perf_counter()
    try:
        try:
            child = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:  # run() has killed the child
            return OptimizeResult(False, {}, time.perf_counter() - start,
                                  f"timed out after {timeout_s:g} s")
        seconds = time.perf_counter() - start
        written = result.read_text(encoding="utf-8") if result.is_file() else ""
        outcome = json.loads(written) if written else {}
        if child.returncode != 0 or "fused_ops" not in outcome:
            last = (child.stderr.strip().splitlines() or [""])[-1]
            error = outcome.get("error") or last or f"exit code {child.returncode}"
            return OptimizeResult(False, {}, seconds,
                                  f"failed within {limit / 2**30:.1f} GiB of address space: {error}")
        os.replace(tmp, dst)
        return OptimizeResult(True, outcome["fused_ops"], seconds)
    finally:
        tmp.unlink(missing_ok=True)
        result.unlink(missing_ok=True)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Make this (child) process get SIGKILL when its parent dies, even by kill -9 (Linux
    prctl); elsewhere, exit now if the parent is already gone."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # died before the signal was armed
        os._exit(1)


def _child(src: str, dst: str, result: str, model_type: str, num_heads: int, hidden_size: int,
           memory_limit: int) -> int:
    """Runs in the child process: limit the address space, optimize, report through `result`."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(src, model_type=model_type, num_heads=num_heads,
                                   hidden_size=hidden_size, opt_level=0)
        stats = optimized.get_fused_operator_statistics()
        optimized.save_model_to_file(dst)
        outcome: dict[str, Any] = {"fused_ops": {op: int(n) for op, n in stats.items() if n}}
    except BaseException as err:  # reported to the parent, which falls back
        outcome = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
    Path(result).write_text(json.dumps(outcome), encoding="utf-8")
    return 1 if "error" in outcome else 0


if __name__ == "__main__":
    die_with_parent(int(sys.argv[8]))  # a killed run leaves no optimizer behind
    src, dst, result, model_type, heads, hidden, limit = sys.argv[1:8]
    sys.exit(_child(src, dst, result, model_type, int(heads), int(hidden), int(limit)))
