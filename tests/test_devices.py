"""GPU selection, TensorRT profiles and fallbacks, tested without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from encoderzoo.backends import resolve_runs
from encoderzoo.config import RunConfig
from encoderzoo.devices import (
    CPU,
    CUDA,
    TENSORRT,
    Machine,
    choose_providers,
    fallen_back,
    provider_options,
    resolve_device,
    trt_profiles,
)
from encoderzoo.errors import ConfigError

CPU_BUILD = ["AzureExecutionProvider", CPU]
GPU_BUILD = [TENSORRT, CUDA, CPU]


def test_auto_uses_a_gpu_only_when_one_is_present() -> None:
    assert resolve_device("auto", gpu=True) == "cuda"
    assert resolve_device("auto", gpu=False) == "cpu"
    assert resolve_device("cpu", gpu=True) == "cpu"
    assert resolve_device("cuda", gpu=True) == "cuda"
    with pytest.raises(ConfigError, match="--device cuda: no CUDA GPU is visible"):
        resolve_device("cuda", gpu=False)
    with pytest.raises(ConfigError, match="--device is auto, cpu, cuda"):
        resolve_device("tpu", gpu=False)


def test_this_machine_resolves_to_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_device("auto") == "cpu"


def test_providers_follow_the_device() -> None:
    assert choose_providers("cuda", (), GPU_BUILD) == ([CUDA, CPU], None)
    assert choose_providers("cpu", (), GPU_BUILD) == ([CPU], None)
    providers, note = choose_providers("cuda", (), CPU_BUILD)  # auto found a GPU, the build has no CUDA
    assert providers == [CPU] and note is not None and "onnxruntime-gpu" in note
    with pytest.raises(ConfigError, match="this onnxruntime build has no CUDAExecutionProvider"):
        choose_providers("cuda", (), CPU_BUILD, explicit_device=True)


def test_named_providers_win_and_keep_the_cpu_last() -> None:
    assert choose_providers("cpu", ("tensorrt", "cuda"), GPU_BUILD) == ([TENSORRT, CUDA, CPU], None)
    assert choose_providers("cuda", ("cpu",), GPU_BUILD) == ([CPU], None)
    with pytest.raises(ConfigError, match="TensorrtExecutionProvider is not in this onnxruntime build"):
        choose_providers("cpu", ("tensorrt",), CPU_BUILD)


def test_tensorrt_profiles_match_the_buckets() -> None:
    profiles = trt_profiles(("input_ids", "attention_mask"), 32, 128, (32, 64))
    assert profiles["trt_profile_min_shapes"] == (
        "input_ids:1x1,attention_mask:1x1,input_ids:1x33,attention_mask:1x33,"
        "input_ids:1x65,attention_mask:1x65")
    assert profiles["trt_profile_opt_shapes"] == profiles["trt_profile_max_shapes"] == (
        "input_ids:32x32,attention_mask:32x32,input_ids:32x64,attention_mask:32x64,"
        "input_ids:32x128,attention_mask:32x128")
    single = trt_profiles(("input_ids",), 8, 256)
    assert single == {"trt_profile_min_shapes": "input_ids:1x1", "trt_profile_opt_shapes": "input_ids:8x256",
                      "trt_profile_max_shapes": "input_ids:8x256"}
    assert trt_profiles(("x",), 4, 64, (64,))["trt_profile_min_shapes"] == "x:1x1"  # bucket = seq_len


def test_tensorrt_options_cache_engines_and_enable_fp16(tmp_path: Path) -> None:
    options = provider_options(TENSORRT, precision="fp16", input_names=("input_ids",), batch_size=16,
                               seq_len=128, buckets=(), cache_dir=tmp_path, graph_hash="ab" * 32)
    assert options["trt_fp16_enable"] is True and options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == str(tmp_path / "tensorrt" / ("ab" * 12))  # per graph
    other = provider_options(TENSORRT, precision="fp16", input_names=("input_ids",), batch_size=16,
                             seq_len=128, buckets=(), cache_dir=tmp_path, graph_hash="cd" * 32)
    assert other["trt_engine_cache_path"] != options["trt_engine_cache_path"]
    assert other["trt_timing_cache_path"] == other["trt_engine_cache_path"]
    assert options["trt_profile_max_shapes"] == "input_ids:16x128"
    fp32 = provider_options(TENSORRT, precision="fp32", input_names=("input_ids",), batch_size=16,
                            seq_len=128, buckets=(), cache_dir=tmp_path)
    assert fp32["trt_fp16_enable"] is False
    assert provider_options(CUDA, precision="fp16", input_names=(), batch_size=1, seq_len=8, buckets=(),
                            cache_dir=tmp_path)["device_id"] == 0
    assert provider_options(CPU, precision="fp32", input_names=(), batch_size=1, seq_len=8, buckets=(),
                            cache_dir=tmp_path) == {}


def test_a_provider_that_failed_to_load_is_noticed() -> None:
    assert fallen_back([TENSORRT, CUDA, CPU], [CUDA, CPU]) == [TENSORRT]
    assert fallen_back([CUDA, CPU], [CUDA, CPU]) == []
    assert fallen_back([CPU], [CPU]) == []


def test_precisions_the_machine_cannot_run() -> None:
    gpu, cpu = Machine("cuda", native_bf16=False), Machine("cpu", native_bf16=False, cpu="AMD EPYC")
    with_bf16 = Machine("cpu", native_bf16=True)
    assert resolve_runs(("onnxruntime:fp16",), gpu) == ([("onnxruntime", "fp16")], [])
    with pytest.raises(ConfigError, match="onnxruntime:fp16: it runs on a CUDA GPU and none is in use"):
        resolve_runs(("onnxruntime:fp16",), cpu)
    with pytest.raises(ConfigError, match=r"openvino:bf16: this CPU \(AMD EPYC\) does not compute "
                                          "bfloat16 natively"):
        resolve_runs(("torch", "openvino:bf16"), cpu)
    # bare names: what the machine cannot run (or runs only emulated, slowly) is left out, with a note
    runs, notes = resolve_runs(("torch", "openvino"), cpu)
    assert runs == [("torch", "fp32"), ("openvino", "fp32"), ("openvino", "int8")]
    assert len(notes) == 2 and notes[0].startswith("torch bf16 left out: this CPU")
    assert "name torch:bf16 to run it anyway" in notes[0]
    assert resolve_runs(("torch:bf16",), cpu)[0] == [("torch", "bf16")]  # asked for: emulated
    assert resolve_runs(("torch", "openvino"), with_bf16)[0] == [
        ("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"),
        ("openvino", "int8")]
    assert resolve_runs(("torch:fp32", "torch"), with_bf16)[0] == [("torch", "fp32"), ("torch", "bf16")]


def test_fp16_on_this_cpu_is_a_one_line_error(tmp_path: Path) -> None:
    from tests.conftest import cli

    result = cli("run", "demo", "--backends", "torch:fp32,onnxruntime:fp16", "--limit", "4",
                 "--no-bench", "--out", str(tmp_path / "run"), "--device", "auto")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: onnxruntime:fp16: it runs on a CUDA GPU")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_fp16_graph_builds_on_the_cpu(tmp_path: Path) -> None:
    """Only its run needs a GPU: the conversion is checked here."""
    import numpy as np
    import onnx

    from encoderzoo.context import RunContext
    from encoderzoo.stages import prepare

    ctx = RunContext(RunConfig(recipe="demo", out=tmp_path / "run", limit=8))
    prepare.run(ctx)
    path = ctx.store.get("onnx-fp16")  # with the graphs it is made from
    assert path is not None and path.name == "model.fp16.onnx"
    model = onnx.load(str(path))
    weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer]
    assert sum(w.size for w in weights if w.dtype == np.float16) > 0.9 * sum(w.size for w in weights
                                                                               if w.dtype.kind == "f")
    assert {i.type.tensor_type.elem_type for i in model.graph.output} == {onnx.TensorProto.FLOAT}
    assert ctx.store.get("onnx-fp16") == path and ctx.store.current("onnx-fp16")  # reused: same key


def test_a_cuda_request_without_a_gpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from encoderzoo.context import RunContext

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device cuda: no CUDA GPU"):
        _ = RunContext(RunConfig(recipe="demo", out=Path("unused"), device="cuda")).device
    assert RunContext(RunConfig(recipe="demo", out=Path("unused"))).device == "cpu"


def test_the_inference_key_knows_the_device_and_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from encoderzoo.backends import Run
    from encoderzoo.context import RunContext
    from encoderzoo.inference import key

    config = RunConfig(recipe="demo", out=tmp_path / "run", backends=("onnxruntime:fp32",))
    cpu = RunContext(config)
    ort, torch = Run("onnxruntime", "fp32"), Run("torch", "fp32")
    on_cpu = key(cpu, ort), key(cpu, torch)
    assert cpu.providers == [CPU]
    gpu = RunContext(config)
    gpu.device, gpu.providers = "cuda", [CUDA, CPU]  # what a GPU machine resolves
    assert key(gpu, ort) != on_cpu[0] and key(gpu, torch) != on_cpu[1]
    # another CPU: outputs that depend on its instructions (bf16, VNNI) are computed again
    import encoderzoo.inference

    assert key(cpu, ort) == on_cpu[0]  # the same machine: the same key
    monkeypatch.setattr(encoderzoo.inference, "cpu_identity", lambda: ("Other CPU", frozenset({"avx2"})))
    assert key(cpu, ort) != on_cpu[0] and key(cpu, torch) != on_cpu[1]
