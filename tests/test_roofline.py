"""FLOP counts from a config, the ceiling probe and its cache, and the roofline view in report.md."""

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from encoderzoo import ceiling
from encoderzoo.report_md import markdown
from encoderzoo.roofline import EncoderShape, achieved, ceiling_for
from tests.test_report import bench_row, report

MINILM = SimpleNamespace(num_hidden_layers=6, hidden_size=384, intermediate_size=1536, model_type="bert")


def test_flops_of_minilm_by_hand() -> None:
    shape = EncoderShape.of(MINILM)
    assert shape is not None
    n, h, f = 25, 384, 1536
    # per layer: Q K V O (4 n h^2 MACs), FFN (2 n h f MACs), scores and weighted sum (2 n^2 h MACs)
    by_hand = 6 * 2 * (4 * n * h * h + 2 * n * h * f + 2 * n * n * h)
    assert shape.flops_per_sequence(n) == by_hand
    assert by_hand / n == pytest.approx(21.5e6, rel=0.01)  # ~21 MFLOP per token, as the issue says
    assert shape.flops([25, 10]) == by_hand + shape.flops_per_sequence(10)


def test_albert_projection_and_gated_ffn_are_counted() -> None:
    albert = EncoderShape.of(SimpleNamespace(num_hidden_layers=1, hidden_size=8, intermediate_size=16,
                                             embedding_size=4, model_type="albert"))
    plain = EncoderShape(layers=1, hidden=8, ffn=16, embedding=8)
    assert albert is not None
    assert albert.flops_per_sequence(3) - plain.flops_per_sequence(3) == 2 * 3 * 4 * 8
    gated = EncoderShape.of(SimpleNamespace(num_hidden_layers=1, hidden_size=8, intermediate_size=16,
                                            model_type="modernbert"))
    assert gated is not None and gated.glu
    assert gated.flops_per_sequence(3) - plain.flops_per_sequence(3) == 2 * 3 * 8 * 16
    assert EncoderShape.of(SimpleNamespace(hidden_size=8)) is None  # no layer count: no FLOPs


def test_achieved_rate_and_ceiling_lookup() -> None:
    ceilings = {"gflops": {"fp32": 200.0, "int8": 800.0}}
    assert achieved(4e9, 0.5, 200.0) == {"gflops": 8.0, "ceiling_pct": 4.0}
    assert achieved(4e9, 0.5, None)["ceiling_pct"] is None
    assert ceiling_for(ceilings, "int8") == 800.0
    assert ceiling_for(ceilings, "fp16") == 200.0  # held against the float GEMM
    assert ceiling_for(ceilings, "bf16") is None  # not measured: not native here
    assert ceiling_for(None, "fp32") is None


def test_ceiling_is_cached_per_machine_and_thread_count(tmp_path: Path) -> None:
    calls: list[int] = []

    def fake(threads: int, gemms: tuple[tuple[int, int, int], ...]) -> dict[str, Any]:
        calls.append(threads)
        return {"gflops": {"fp32": 100.0 * threads}, "per_library": {}}

    first = ceiling.ceiling(2, tmp_path, measure_fn=fake)
    again = ceiling.ceiling(2, tmp_path, measure_fn=fake)
    other = ceiling.ceiling(1, tmp_path, measure_fn=fake)
    assert calls == [2, 1]  # measured once per thread count
    assert not first["cached"] and again["cached"]
    assert again["gflops"] == {"fp32": 200.0} and other["gflops"] == {"fp32": 100.0}
    for path in tmp_path.iterdir():  # a damaged cache file is measured again, not trusted
        path.write_text("{not json")
    assert not ceiling.ceiling(2, tmp_path, measure_fn=fake)["cached"]


def test_an_old_ceiling_is_probed_again_and_keeps_the_best_rates(tmp_path: Path) -> None:
    """A probe taken while the host was slow must not stay the ceiling: after REFRESH_AFTER the
    machine is probed again, each rate keeps the better figure, and a disturbed probe changes
    nothing."""
    clock = [1000.0]
    probes = [{"fp32": 185.0, "int8": 900.0}, {"fp32": 204.0, "int8": 873.0}]
    shares = [0.95, 0.95, 0.5, 0.5, 0.5]

    def probe(threads: int, gemms: tuple[tuple[int, int, int], ...]) -> dict[str, Any]:
        rates = probes.pop(0) if shares[0] >= ceiling.MIN_SHARE else {"fp32": 1.0, "int8": 1.0}
        return {"gflops": rates, "per_library": {"openvino": dict(rates)}, "share": shares.pop(0)}

    first = ceiling.ceiling(2, tmp_path, measure_fn=probe, now=lambda: clock[0])
    assert first["gflops"] == {"fp32": 185.0, "int8": 900.0} and first["probes"] == 1
    clock[0] += ceiling.REFRESH_AFTER - 1
    assert ceiling.ceiling(2, tmp_path, measure_fn=probe, now=lambda: clock[0])["cached"]
    clock[0] += 2
    again = ceiling.ceiling(2, tmp_path, measure_fn=probe, now=lambda: clock[0])
    assert not again["cached"] and again["probes"] == 2
    assert again["gflops"] == {"fp32": 204.0, "int8": 900.0} == again["per_library"]["openvino"]
    assert ceiling.ceiling(2, tmp_path, measure_fn=probe, now=lambda: clock[0])["gflops"] == again["gflops"]
    clock[0] += ceiling.REFRESH_AFTER + 1
    busy = ceiling.ceiling(2, tmp_path, measure_fn=probe, now=lambda: clock[0])  # 3 disturbed tries
    assert not busy.get("disturbed") and busy["gflops"] == again["gflops"]
    assert not shares
    row = bench_row("onnxruntime", 8, 80.0) | {"gflops": 1.0, "ceiling_pct": 1.0}
    text = markdown(report(benchmark=[row], ceiling=busy | {"measured_at": 86400.0}))
    assert "the best library per precision; the best of 2 probes, the last 1970-01-02 00:00 UTC)" in text


def test_a_probe_that_shared_the_cores_is_retried_and_never_cached(tmp_path: Path) -> None:
    shares = [0.5, 0.6, 0.55, 0.97]  # below and above MIN_SHARE

    def busy(threads: int, gemms: tuple[tuple[int, int, int], ...]) -> dict[str, Any]:
        share = shares.pop(0)
        return {"gflops": {"fp32": 300.0 * share}, "per_library": {}, "share": share}

    disturbed = ceiling.ceiling(2, tmp_path, measure_fn=busy)
    assert disturbed["disturbed"] and disturbed["share"] == 0.55  # every try was disturbed
    assert not list(tmp_path.iterdir())  # nothing cached
    quiet = ceiling.ceiling(2, tmp_path, measure_fn=busy)  # the next run measures again: quiet now
    assert not quiet.get("disturbed") and quiet["gflops"] == {"fp32": 300.0 * 0.97}
    assert ceiling.ceiling(2, tmp_path, measure_fn=busy)["cached"]
    row = bench_row("onnxruntime", 8, 80.0) | {"gflops": 1.0, "ceiling_pct": 1.0}
    text = markdown(report(benchmark=[row], ceiling=disturbed | {"threads": 2}))
    assert "Other programs used the cores" in text and "55 %" in text


def test_the_probe_counts_the_share_of_the_cores_it_had() -> None:
    spin = lambda: sum(range(2_000_000)) and None  # noqa: E731  one thread busy the whole call (~50 ms:
    # long beside a scheduler's time slice, so that a busy neighbour on the other worker shares fairly)
    assert ceiling.Rate(spin, 1e6, threads=1).share > 0.5
    assert ceiling.Rate(lambda: time.sleep(0.01), 1e6, threads=1).share < 0.2  # the cores left idle


def test_probe_measures_each_precision_the_libraries_run() -> None:
    result = ceiling.measure(1, gemms=((64, 128, 128), (32, 64, 256)))
    assert set(result["per_library"]) == {"onnxruntime", "openvino"}
    assert 0 < result["share"] <= 1
    for precision in ("fp32", "int8"):
        assert result["gflops"][precision] > 0
        assert result["gflops"][precision] == max(r.get(precision, 0) for r in result["per_library"].values())


def test_report_shows_rates_against_the_ceiling() -> None:
    row = bench_row("onnxruntime", 8, 80.0) | {"precision": "int8", "gflops": 123.4, "ceiling_pct": 41.2}
    text = markdown(report(benchmark=[row], ceiling={"gflops": {"fp32": 100.0, "int8": 300.0}, "threads": 2,
                                                     "gemms": [[2048, 4096, 4096], [4096, 768, 3072]],
                                                     "per_library": {"onnxruntime": {"int8": 300.0}}},
                           model_shape={"layers": 6, "hidden": 384, "ffn": 1536}))
    assert "| onnxruntime int8 | 123 (41 %) |" in text
    assert "Ceiling (GFLOP/s, the better of 2048×4096×4096 and 4096×768×3072 GEMMs on 2 threads" in text
    assert "bf16: not native on this CPU" in text
    assert "6 layers, hidden 384, FFN 1536" in text
    unmeasured = markdown(report(benchmark=[bench_row("torch", 8, 80.0) | {"gflops": 5.0}]))
    assert "--no-ceiling" in unmeasured


def test_every_precision_of_every_backend_is_held_against_a_ceiling() -> None:
    """int8-static was held against the float ceiling (224 % on bert-base) before it was listed."""
    from encoderzoo.backends import BACKENDS
    from encoderzoo.precision import ceiling_kind

    for spec in BACKENDS.values():
        for precision in spec.precisions:
            assert ceiling_kind(precision) is not None, f"{spec.name}:{precision}"
    assert ceiling_for({"gflops": {"fp32": 200.0, "int8": 800.0}}, "int8-static") == 800.0


def test_cpu_generations_behind_one_bare_model_name_are_told_apart(tmp_path: Path) -> None:
    """A VM's "AMD EPYC" is Zen 4 (family 25) or Zen 5 (family 26) with the same flags, and twice
    the bf16 and int8 GEMM rate on Zen 5: the ceiling's key must tell them apart."""
    from encoderzoo.environment import cpu_identity

    names = []
    for family in (25, 26):
        info = tmp_path / f"cpuinfo{family}"
        info.write_text(f"processor\t: 0\ncpu family\t: {family}\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
                        "stepping\t: 1\nflags\t\t: fpu avx512f avx512_vnni avx512_bf16\n")
        name, flags = cpu_identity(str(info))
        assert "avx512_bf16" in flags
        names.append(name)
    assert names == [f"AMD EPYC (family {f}, model 17, stepping 1)" for f in (25, 26)]
