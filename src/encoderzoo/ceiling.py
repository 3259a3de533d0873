"""The machine's ceiling: the sustained GEMM rate, per precision, of the libraries the backends
run (ONNX Runtime's MatMul and MatMulInteger, OpenVINO's FullyConnected in f32, bf16 and u8 x i8),
with the run's thread count. A precision's ceiling is the best of the libraries; each library's
own figure is kept beside it.

Two GEMMs (M x K x N: 2048 x 4096 x 4096, and a base encoder's 4096 x 768 x 3072 FFN, whose
weights stay in the caches; the weight a constant as in a model) are timed after a warm-up; a
library's figure is the better median rate of the two. A probe takes about 40 s on 2 cores, so
its result is cached per machine, thread count, GEMM and library versions.

A ceiling is what the machine can do, and a probe taken while the host was slow (other virtual
machines on it: one cached here read fp32 185, int8 838 GFLOP/s where later probes read 204 and
873, and bert-base then ran at 110 % of it) would make every % of it too high for good. So a
cached ceiling older than REFRESH_AFTER is probed again and each rate keeps the best of every
probe: it never goes down, and a slow moment's figure is replaced by the next better one.

A ceiling measured while other programs held the cores would be too low, and every % of it too
high, for good. So each timed call also counts the CPU time this process got: when its threads
had the cores for less than MIN_SHARE of the time, the probe is taken again, and one still
disturbed is returned marked `disturbed` (its share given) and never cached."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.cache import make_key, versions
from encoderzoo.environment import cpu_identity
from encoderzoo.fileio import read_json, write_json

GEMM = (2048, 4096, 4096)  # M (tokens), K, N: weights larger than the caches
CACHED = (4096, 768, 3072)  # a base encoder's FFN: weights that stay in the caches
GEMMS = (GEMM, CACHED)  # the ceiling is the best rate of these
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
# of threads x wall time the probe's threads must have had the cores for (measured on 2 cores:
# 0.92-1.0 on a quiet machine, 0.51-0.72 with one other busy process)
MIN_SHARE = 0.8
TRIES = 3  # probes taken before a disturbed one is given up on
REFRESH_AFTER = 12 * 3600.0  # seconds after which a cached ceiling is probed again (best of both kept)
Timer = Callable[[], None]


class Rate:
    """Timed calls of one GEMM: the median rate, and the share of the cores the process had."""

    def __init__(self, run: Timer, flops: float, threads: int, runs: int = 7, warmup: int = 2) -> None:
        for _ in range(warmup):
            run()
        times, cpu = [], 0.0
        for _ in range(runs):
            c0, t0 = time.process_time(), time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
            cpu += time.process_time() - c0
        self.gflops = flops / statistics.median(times) / 1e9
        # the libraries' worker threads spin or work for the whole call: less CPU time than
        # threads x wall means another program ran on these cores meanwhile
        self.share = min(1.0, cpu / (threads * sum(times)))


def _ort_gemm(gemm: tuple[int, int, int], threads: int, int8: bool) -> Timer:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = gemm
    rng = np.random.default_rng(0)
    if int8:
        weight = numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "B")
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
        feed = rng.integers(0, 256, (m, k), dtype=np.uint8)
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type = y_type = TensorProto.FLOAT
        feed = rng.standard_normal((m, k), dtype=np.float32)
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", a_type, [m, k])],
                              [helper.make_tensor_value_info("Y", y_type, [m, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"A": feed}) and None


OV_CHAIN = 4  # GEMMs in a row in OpenVINO's probe (see _ov_gemm)


def _ov_gemm(gemm: tuple[int, int, int], threads: int, precision: str) -> Timer:
    """OV_CHAIN GEMMs in a row (M x K -> M x N -> M x K ...), as in a model: OpenVINO converts a
    graph's f32 input and output to and from bf16 or u8 at its edges, which a single GEMM pays in
    full (its bf16 probe then read 373 GFLOP/s where bert-base's layers ran at 403) and a model's
    inner layers never do."""
    import openvino as ov
    import openvino.opset13 as ops

    m, k, n = gemm
    rng = np.random.default_rng(0)
    a = ops.parameter([m, k], ov.Type.f32, name="A")

    def fq(node: Any, low: float, high: float, levels: int) -> Any:
        lo, hi = ops.constant(np.float32(low)), ops.constant(np.float32(high))
        return ops.fake_quantize(node, lo, hi, lo, hi, levels)

    x = a
    for i in range(OV_CHAIN):
        shape = (n, k) if i % 2 == 0 else (k, n)  # (out, in)
        w = ops.constant((rng.standard_normal(shape) / np.sqrt(shape[1])).astype(np.float32))
        if precision == "int8":  # FakeQuantize on both sides: OpenVINO runs it as a u8 x i8 GEMM
            x, w = fq(x, 0.0, 4.0, 256), fq(w, -4.0, 4.0, 255)
        x = ops.matmul(x, w, transpose_a=False, transpose_b=True)
    model = ov.Model([x], [a], "gemm")
    hint = {"bf16": "bf16"}.get(precision, "f32")
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1})
    request = compiled.create_infer_request()
    feed = np.abs(rng.standard_normal((m, k), dtype=np.float32))
    return lambda: request.infer({0: feed}) and None


def _ov_has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def measure(threads: int, gemms: tuple[tuple[int, int, int], ...] = GEMMS) -> dict[str, Any]:
    """Measure every (library, precision) GEMM this machine runs natively, the best of `gemms`;
    `share` is the least share of the cores a timed GEMM had (see MIN_SHARE)."""
    per_library: dict[str, dict[str, float]] = {"onnxruntime": {}, "openvino": {}}
    shares = []

    def keep(library: str, precision: str, timer: Timer, flops: float) -> None:
        rate = Rate(timer, flops, threads)
        shares.append(rate.share)
        per_library[library][precision] = max(per_library[library].get(precision, 0.0), rate.gflops)

    bf16 = _ov_has_bf16()  # emulated bf16 would be no ceiling: without it, bf16 runs are unrated
    for gemm in gemms:
        flops = 2.0 * gemm[0] * gemm[1] * gemm[2]
        keep("onnxruntime", "fp32", _ort_gemm(gemm, threads, int8=False), flops)
        keep("onnxruntime", "int8", _ort_gemm(gemm, threads, int8=True), flops)
        for precision in ("fp32", "int8", "bf16") if bf16 else ("fp32", "int8"):
            keep("openvino", precision, _ov_gemm(gemm, threads, precision), OV_CHAIN * flops)
    return {"gflops": _best(per_library.values()), "per_library": per_library, "share": round(min(shares), 3)}


def _best(rates: Iterable[dict[str, float]]) -> dict[str, float]:
    """Each precision's best rate among `rates` (one mapping per library, or per probe)."""
    best: dict[str, float] = {}
    for mapping in rates:
        for precision, rate in mapping.items():
            best[precision] = max(best.get(precision, 0.0), rate)
    return best


def key(threads: int, gemms: tuple[tuple[int, int, int], ...]) -> dict[str, Any]:
    model, flags = cpu_identity()
    return {"cpu": model, "flags": sorted(f for f in FLAGS if f in flags), "threads": threads,
            "gemms": [list(g) for g in gemms], "openvino_chain": OV_CHAIN,
            "versions": versions("onnxruntime", "openvino")}


def default_cache_dir() -> Path:
    """Where ceilings are kept between runs: the user's cache folder (XDG_CACHE_HOME)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "encoderzoo" / "ceiling"


def _best_of(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` with each library's and precision's rate the better of the two probes."""
    before, after = old.get("per_library") or {}, new.get("per_library") or {}
    per_library = {lib: _best([before.get(lib, {}), after.get(lib, {})]) for lib in {**before, **after}}
    gflops = _best([old.get("gflops") or {}, new.get("gflops") or {}])
    return new | {"gflops": gflops, "per_library": per_library, "probes": old.get("probes", 1) + 1}


def ceiling(threads: int, cache_dir: Path | None = None,
            gemms: tuple[tuple[int, int, int], ...] = GEMMS,
            measure_fn: Callable[[int, tuple[tuple[int, int, int], ...]], dict[str, Any]] = measure,
            now: Callable[[], float] = time.time) -> dict[str, Any]:
    """The ceiling for `threads`, from the cache when this machine and these libraries measured
    it less than REFRESH_AFTER ago, else probed (again: the best of both kept); {gflops:
    {precision: GFLOP/s}, per_library, share, gemms, threads, measured_at, probes, cached, key},
    and disturbed: True when every try shared the cores with another program and no earlier
    probe is cached (not cached itself)."""
    identity = key(threads, gemms)
    path = (cache_dir or default_cache_dir()) / f"{make_key('ceiling', **identity)}.json"
    found: dict[str, Any] = {}
    if path.is_file():
        try:
            found = read_json(path)
        except (OSError, ValueError):
            found = {}  # unreadable: measured again and rewritten
        if not isinstance(found, dict) or found.get("key") != identity:
            found = {}
        elif now() - float(found.get("measured_at", 0.0)) < REFRESH_AFTER:
            return found | {"cached": True}
    for _ in range(TRIES):
        result = measure_fn(threads, gemms) | {"gemms": [list(g) for g in gemms], "threads": threads,
                                               "key": identity, "measured_at": now(), "probes": 1}
        if result.get("share", 1.0) >= MIN_SHARE:
            result = _best_of(found, result) if found else result
            with contextlib.suppress(OSError):  # a read-only cache folder costs the next run a probe
                write_json(path, result)
            return result | {"cached": False}
    if found:  # an older quiet probe is a truer ceiling than a disturbed one
        return found | {"cached": True}
    return result | {"cached": False, "disturbed": True}
