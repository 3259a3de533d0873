"""A serving artifact: an NVIDIA Triton Inference Server model repository holding the verified
ONNX model and a `config.pbtxt` for Triton's ONNX Runtime backend (input and output names,
types and dynamic dimensions read from the graph, dynamic batching).

    REPOSITORY/NAME/config.pbtxt
    REPOSITORY/NAME/1/model.onnx

The configuration is checked by parsing it with Triton's own model-config protobuf schema
(`tritonclient`) and comparing every tensor with the ONNX graph."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.fileio import atomic_dir

# ONNX TensorProto element types -> Triton data types
TRITON_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 16: "TYPE_BF16", 6: "TYPE_INT32", 7: "TYPE_INT64",
                9: "TYPE_BOOL", 2: "TYPE_UINT8", 3: "TYPE_INT8"}
KINDS = ("KIND_CPU", "KIND_GPU")


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str  # a Triton TYPE_*
    dims: tuple[int, ...]  # without the batch dimension; -1 = dynamic


def graph_tensors(model_path: Path) -> tuple[list[Tensor], list[Tensor]]:
    """(inputs, outputs) of an ONNX graph as Triton sees them: the first (batch) dimension
    dropped, symbolic dimensions as -1."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def tensors(values: Any) -> list[Tensor]:
        found = []
        for value in values:
            if value.name in initializers:
                continue
            kind = value.type.tensor_type
            if kind.elem_type not in TRITON_TYPES:
                raise ArtifactError(f"{model_path}: tensor '{value.name}' has ONNX type {kind.elem_type}, "
                                    "which has no Triton data type here")
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim)
            found.append(Tensor(value.name, TRITON_TYPES[kind.elem_type], dims[1:]))
        return found

    return tensors(model.graph.input), tensors(model.graph.output)


def config_text(name: str, inputs: list[Tensor], outputs: list[Tensor], *, max_batch_size: int,
                kind: str = "KIND_CPU", instances: int = 1, preferred: tuple[int, ...] = (),
                queue_delay_us: int = 1000, tensorrt_fp16: bool = False) -> str:
    """config.pbtxt in protobuf text format."""
    def block(tensor: Tensor) -> str:
        dims = ", ".join(str(d) for d in tensor.dims)
        return (f'  {{\n    name: "{tensor.name}"\n    data_type: {tensor.data_type}\n'
                f"    dims: [ {dims} ]\n  }}")

    lines = [f'name: "{name}"', 'backend: "onnxruntime"', f"max_batch_size: {max_batch_size}",
             "input [", ",\n".join(block(t) for t in inputs), "]",
             "output [", ",\n".join(block(t) for t in outputs), "]",
             "dynamic_batching {"]
    sizes = sorted(b for b in set(preferred) if 1 < b <= max_batch_size)
    if sizes:
        lines.append(f"  preferred_batch_size: [ {', '.join(map(str, sizes))} ]")
    lines += [f"  max_queue_delay_microseconds: {queue_delay_us}", "}",
              "instance_group [", f"  {{\n    count: {instances}\n    kind: {kind}\n  }}", "]"]
    if tensorrt_fp16 and kind == "KIND_GPU":
        lines += ["optimization {", "  execution_accelerators {", "    gpu_execution_accelerator: [",
                  "      {", '        name: "tensorrt"',
                  '        parameters { key: "precision_mode" value: "FP16" }', "      }",
                  "    ]", "  }", "}"]
    return "\n".join(lines) + "\n"


def model_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")
    if not name:
        raise ConfigError(f"--triton-name {text!r}: use letters, digits, '_', '-' or '.'")
    return name


def write_repository(graph: Path, repository: Path, name: str, *, max_batch_size: int,
                     kind: str = "KIND_CPU", preferred: tuple[int, ...] = (),
                     tensorrt_fp16: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """REPOSITORY/NAME (replacing only that model, all at once) from an ONNX graph; returns
    what was written, after checking it against Triton's schema and the graph."""
    if kind not in KINDS:
        raise ConfigError(f"--triton-kind is {' or '.join(KINDS)}, not {kind!r}")
    if max_batch_size < 1:
        raise ConfigError(f"--triton-max-batch must be >= 1, got {max_batch_size}")
    name = model_name(name)
    inputs, outputs = graph_tensors(graph)
    text = config_text(name, inputs, outputs, max_batch_size=max_batch_size, kind=kind,
                       preferred=preferred, tensorrt_fp16=tensorrt_fp16)
    repository.mkdir(parents=True, exist_ok=True)
    with atomic_dir(repository / name, "triton-model", overwrite=overwrite, option="--triton") as tmp:
        (tmp / "1").mkdir()
        shutil.copyfile(graph, tmp / "1" / "model.onnx")
        (tmp / "config.pbtxt").write_text(text, encoding="utf-8")
        parsed = check_model(tmp)
    return {"repository": str(repository), "model": name, "config": str(repository / name / "config.pbtxt"),
            "inputs": [t.__dict__ for t in inputs], "outputs": [t.__dict__ for t in outputs],
            "validated_with": parsed}


def check_model(model_dir: Path) -> str:
    """Parse config.pbtxt with Triton's ModelConfig schema and compare it with 1/model.onnx;
    returns what validated it. Raises ArtifactError on any mismatch."""
    config_path, graph = model_dir / "config.pbtxt", model_dir / "1" / "model.onnx"
    config = parse_config(config_path)  # tritonclient is importable past this point
    from tritonclient.grpc import model_config_pb2

    inputs, outputs = graph_tensors(graph)
    for section, declared, actual in (("input", config.input, inputs), ("output", config.output, outputs)):
        names = {t.name: t for t in actual}
        if [t.name for t in declared] != [t.name for t in actual]:
            raise ArtifactError(f"{config_path}: {section} names {[t.name for t in declared]} differ from "
                                f"the graph's {list(names)}")
        for tensor in declared:
            want = names[tensor.name]
            data_type = model_config_pb2.DataType.Name(tensor.data_type)
            if data_type != want.data_type or tuple(tensor.dims) != want.dims:
                raise ArtifactError(f"{config_path}: {section} '{tensor.name}' is {data_type} "
                                    f"{list(tensor.dims)} but the graph has {want.data_type} "
                                    f"{list(want.dims)}")
    return "tritonclient model_config_pb2.ModelConfig"


def parse_config(path: Path) -> Any:
    """config.pbtxt as Triton's ModelConfig message (unknown fields or bad values are errors)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ConfigError("checking a Triton repository needs tritonclient: pip install "
                          "'encoderzoo[triton]'") from None
    try:
        return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())
    except text_format.ParseError as err:
        raise ArtifactError(f"{path}: not a valid Triton model configuration ({err})") from None
