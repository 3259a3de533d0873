"""PyTorch → ONNX with dynamic batch and sequence axes, checked against PyTorch on real inputs.

The TorchScript-based exporter over an `attn_implementation="eager"` model is used on purpose:
measured with onnxruntime 1.31, it is the only export whose attention ONNX Runtime's
transformer optimizer fuses (SDPA or dynamo exports stay unfused).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import ArtifactError, ExportParityError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path

OPSET = 17


@dataclass(frozen=True)
class ParityCase:
    description: str  # e.g. "batch 8 x seq 23, dynamic padding"
    feeds: dict[str, np.ndarray]


@dataclass(frozen=True)
class ParityResult:
    model: str
    inputs: str
    output: str
    shape: tuple[int, ...]
    max_abs_diff: float
    atol: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape), "passed": self.passed}


def parity_cases(features: Features, static_batch: int | None = None) -> list[ParityCase]:
    """Real examples with padding, at shapes other than the trace's: batches of 8 (dynamic
    padding), 3 (padded to the full sequence length) and 1; a graph of fixed batch size gets
    its batches of the first and last rows, padded to the full length."""
    n = len(features)
    if static_batch is not None:
        rows = [slice(0, static_batch), slice(max(n - static_batch, 0), n)]
        picked = [features.take(r, features.seq_len) for r in rows]
        picked = [{k: np.resize(v, (static_batch, *v.shape[1:])) for k, v in p.items()} for p in picked]
        return [ParityCase(f"batch {static_batch} x seq {features.seq_len} (the graph's fixed shape)", p)
                for p in picked]
    cases = []
    for padding, rows, width in (
        ("dynamic", slice(0, min(8, n)), None),
        ("fixed", slice(max(n - 3, 0), n), features.seq_len),
        ("dynamic", slice(n - 1, n), None),
    ):
        feeds = features.take(rows, width)
        shape = next(iter(feeds.values())).shape
        batch, seq = shape[0], shape[-1]
        cases.append(ParityCase(f"batch {batch} x seq {seq} ({padding} padding)", feeds))
    return cases


def positional(model: Any, input_names: tuple[str, ...], output_names: tuple[str, ...]) -> Any:
    """`model` as a module of positional inputs (in `input_names` order) returning a tuple of
    its `output_names`: what torch.onnx.export traces."""
    import torch

    class Positional(torch.nn.Module):
        """Fixes the graph's input and output order to the names we declare."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.model(**dict(zip(input_names, inputs, strict=True)), return_dict=True)
            return tuple(out[name] for name in output_names)

    return Positional().eval()


def check_onnx_file(path: Path) -> None:
    """Refuse an ONNX file that is missing, truncated or corrupt, or whose external data
    (weights stored beside the graph) would be read from outside the model's folder."""
    import onnx

    if not path.is_file():
        raise ArtifactError(f"{path}: no such ONNX file; run `encoderzoo export` first")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf DecodeError, ...
        raise _invalid(path, err) from None
    folder = path.parent.resolve()
    tensors = list(model.graph.initializer) + [
        a.t for node in model.graph.node for a in node.attribute if a.HasField("t")]
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (folder / location).resolve()
        if not target.is_relative_to(folder):
            raise ArtifactError(f"{path}: tensor '{tensor.name}' keeps its data at {location!r}, outside "
                                "the model's folder; refusing to read it (move the data beside the model)")
        if not target.is_file():
            raise ArtifactError(f"{path}: tensor '{tensor.name}' needs the external data file {location!r}, "
                                "which is missing; copy it beside the model")
    try:
        onnx.checker.check_model(str(path))  # by path: external data are looked up beside the model
    except Exception as err:  # onnx ValidationError
        raise _invalid(path, err) from None


def _invalid(path: Path, err: Exception) -> ArtifactError:
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
    return ArtifactError(f"{path}: not a valid ONNX model ({reason}); the file is truncated or corrupt: "
                         "export it again (`encoderzoo export`, or delete it and rerun)")


def torch_outputs(
    model: Any, feeds: dict[str, np.ndarray], output_names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    import torch

    with torch.inference_mode():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, return_dict=True)
    return {name: out[name].float().numpy() for name in output_names}


def export_onnx(
    model: Any, features: Features, path: Path, *, output_axes: dict[str, dict[int, str]],
    opset: int = OPSET,
) -> float:
    """Trace `model` (loaded with eager attention) to `path`; returns the seconds it took."""
    import torch

    input_names = features.input_names
    output_names = tuple(output_axes)
    sample = features.take(slice(0, min(2, len(features))))
    rank = len(features.row_shape) + 2  # (batch, sequence), or (batch, choices, sequence)
    dims = {0: "batch", rank - 1: "sequence"} | {axis: "choices" for axis in range(1, rank - 1)}
    axes: dict[str, dict[int, str]] = dict.fromkeys(input_names, dims)
    axes |= {name: dict(a) for name, a in output_axes.items()}
    start = time.perf_counter()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            positional(model, input_names, output_names),
            tuple(torch.from_numpy(sample[name]) for name in input_names),
            str(tmp), input_names=list(input_names), output_names=list(output_names),
            dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    return time.perf_counter() - start


def graph_outputs(path: Path, cases: list[ParityCase]) -> list[dict[str, np.ndarray]]:
    """A graph's outputs on every case: ONNX Runtime for .onnx, OpenVINO for an IR (.xml)."""
    if path.suffix == ".xml":
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        results = [compiled(case.feeds) for case in cases]
        return [{port.get_any_name(): np.asarray(r[port]) for port in compiled.outputs} for r in results]
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(names, case.feeds), strict=True)) for case in cases]


def check_parity(
    onnx_path: Path, cases: list[ParityCase], expected: list[dict[str, np.ndarray]], atol: float,
    *, strict: bool = True,
) -> list[ParityResult]:
    """Run the graph on every case; raise ExportParityError on the worst mismatch (`strict`)."""
    results = []
    for case, want, got in zip(cases, expected, graph_outputs(onnx_path, cases), strict=True):
        for name, reference in want.items():
            diff = float(np.max(np.abs(got[name] - reference), initial=0.0))
            if not np.isfinite(got[name]).all():
                diff = float("inf")
            results.append(ParityResult(onnx_path.name, case.description, name,
                                        tuple(reference.shape), diff, atol))
    worst = max(results, key=lambda r: r.max_abs_diff)
    if strict and not worst.passed:
        raise ExportParityError(model=worst.model, output=worst.output, shape=worst.shape,
                                max_abs_diff=worst.max_abs_diff, atol=atol, inputs=worst.inputs)
    return results


def save_parity_cases(path: Path, cases: list[ParityCase], expected: list[dict[str, np.ndarray]]) -> None:
    """Keep the parity inputs and PyTorch's outputs, so that later graphs (fused, quantized)
    are checked against PyTorch without loading it again."""
    arrays: dict[str, np.ndarray] = {"descriptions": np.array([c.description for c in cases])}
    for i, (case, want) in enumerate(zip(cases, expected, strict=True)):
        arrays |= {f"{i}.in.{k}": v for k, v in case.feeds.items()}
        arrays |= {f"{i}.out.{k}": v for k, v in want.items()}
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **arrays)


def load_parity_cases(path: Path) -> tuple[list[ParityCase], list[dict[str, np.ndarray]]]:
    if not path.is_file():
        raise ArtifactError(f"{path}: no parity inputs; run `encoderzoo export` first")
    with np.load(path, allow_pickle=False) as z:
        cases, expected = [], []
        for i, description in enumerate(z["descriptions"]):
            feeds = {k.split(".", 2)[2]: z[k] for k in z.files if k.startswith(f"{i}.in.")}
            cases.append(ParityCase(str(description), feeds))
            expected.append({k.split(".", 2)[2]: z[k] for k in z.files if k.startswith(f"{i}.out.")})
    return cases, expected
