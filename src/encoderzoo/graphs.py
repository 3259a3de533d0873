"""Graphs made elsewhere (`--onnx FILE.onnx`, `--openvino FILE.xml`): what they take and give, how
their inputs and outputs map to ours, their static shapes, and their import into a run folder
with our names (the computation is left as it is).

Inputs are matched by name: ours (input_ids, attention_mask, token_type_ids), the seed pipelines'
input1/2/3 (ids, mask, segments, in that order), src_tokens, input_mask and segment_ids; or by
an explicit `--input-map GRAPH_NAME=OUR_NAME,...`. Outputs are matched to the task's by name, else
by position (one output: the logits; two: start then end logits)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from encoderzoo.cache import file_hash, files_hash, make_key
from encoderzoo.errors import ConfigError
from encoderzoo.export import check_onnx_file
from encoderzoo.families import WITH_SEGMENTS
from encoderzoo.fileio import atomic_path, temporary_folder

ALIASES = {
    "input_ids": ("input_ids", "input1", "src_tokens", "input.1", "ids", "tokens"),
    "attention_mask": ("attention_mask", "input2", "input_mask", "mask"),
    "token_type_ids": ("token_type_ids", "input3", "segment_ids", "token_type", "segments"),
}
Shape = tuple[int | None, ...]  # None: a dynamic dimension


@dataclass(frozen=True)
class GraphInfo:
    path: Path
    format: str  # "onnx" or "openvino"
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]

    @property
    def option(self) -> str:
        return f"--{self.format} {self.path}"

    @property
    def files(self) -> list[Path]:
        """The files the graph is: an IR's .xml and .bin; an ONNX file and its external data."""
        if self.format == "openvino":
            return [self.path, self.path.with_suffix(".bin")]
        return [self.path, *external_data(self.path)]

    def digest(self) -> str:
        return file_hash(self.path) if len(self.files) == 1 else files_hash(self.files)


def external_data(path: Path) -> list[Path]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    names = {e.value for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
             for e in t.external_data if e.key == "location"}
    return [path.parent / n for n in sorted(names)]


def inspect_graph(path: Path, fmt: str) -> GraphInfo:
    """The graph's inputs and outputs with their shapes, read without loading its weights."""
    option = f"--{fmt} {path}"
    if not path.is_file():
        raise ConfigError(f"{option}: no such file")
    if fmt == "openvino":
        if path.suffix != ".xml" or not path.with_suffix(".bin").is_file():
            raise ConfigError(f"{option}: an OpenVINO IR is FILE.xml with FILE.bin beside it")
        import openvino as ov

        try:
            model = ov.Core().read_model(str(path))
        except RuntimeError as err:
            reason = str(err).splitlines()[0][:160]
            raise ConfigError(f"{option}: OpenVINO cannot read it: {reason}") from None
        shapes = {p.get_any_name(): _ov_shape(p.get_partial_shape()) for p in model.inputs}
        outs = {p.get_any_name(): _ov_shape(p.get_partial_shape()) for p in model.outputs}
        return GraphInfo(path, fmt, shapes, outs)

    check_onnx_file(path)
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    inputs = {i.name: _onnx_shape(i) for i in graph.input if i.name not in weights}
    return GraphInfo(path, fmt, inputs, {o.name: _onnx_shape(o) for o in graph.output})


def _onnx_shape(value: Any) -> Shape:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def _ov_shape(shape: Any) -> Shape:
    return tuple(d.get_length() if d.is_static else None for d in shape)


def match_inputs(info: GraphInfo, input_map: tuple[str, ...]) -> dict[str, str]:
    """{graph input: our input}, every graph input mapped, input_ids among them."""
    mapping: dict[str, str] = {}
    if input_map:
        for entry in input_map:
            graph_name, sep, ours = entry.partition("=")
            if not sep or ours not in WITH_SEGMENTS:
                raise ConfigError(f"--input-map {entry!r}: use GRAPH_INPUT=OURS with OURS one of "
                                  f"{', '.join(WITH_SEGMENTS)}")
            if graph_name not in info.inputs:
                raise ConfigError(f"--input-map {entry!r}: the graph has no input {graph_name!r} (its "
                                  f"inputs: {', '.join(info.inputs)})")
            mapping[graph_name] = ours
    for name in info.inputs:
        if name in mapping:
            continue
        ours = next((k for k, names in ALIASES.items() if name.lower() in names), None)
        if ours is None:
            raise ConfigError(f"{info.option}: cannot tell what its input {name!r} is; name it with "
                              f"--input-map {name}=input_ids|attention_mask|token_type_ids")
        mapping[name] = ours
    taken = list(mapping.values())
    twice = next((o for o in taken if taken.count(o) > 1), None)
    if twice or "input_ids" not in taken:
        what = f"two inputs map to {twice}" if twice else "no input takes the token ids (input_ids)"
        raise ConfigError(f"{info.option}: {what} ({mapping}); set them with --input-map")
    return mapping


def match_outputs(info: GraphInfo, wanted: tuple[str, ...]) -> dict[str, str]:
    """{graph output: the task's output}: by name, else by position."""
    if all(name in info.outputs for name in wanted):
        return {name: name for name in wanted}
    names = list(info.outputs)
    if len(wanted) == 2 and len(names) >= 2:  # start and end logits
        start = next((n for n in names if "start" in n.lower()), names[0])
        end = next((n for n in names if "end" in n.lower()), names[1])
        return {start: wanted[0], end: wanted[1]}
    if len(wanted) == 1 and len(names) == 1:
        return {names[0]: wanted[0]}
    raise ConfigError(f"{info.option}: outputs {names} do not give the task's {', '.join(wanted)}; export "
                      "a graph whose outputs are those (by name or position)")


def static_shape(info: GraphInfo, mapping: dict[str, str]) -> tuple[int | None, int | None]:
    """(batch, sequence) the graph is fixed to; None where it takes any."""
    ids = info.inputs[next(g for g, ours in mapping.items() if ours == "input_ids")]
    if len(ids) != 2:
        raise ConfigError(f"{info.option}: its token ids input has shape {ids}; expected (batch, sequence)")
    return ids[0], ids[1]


def import_key(info: GraphInfo, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    return make_key("import", graph=info.digest(), format=info.format, inputs=inputs, outputs=outputs)


def import_graph(info: GraphInfo, inputs: dict[str, str], outputs: dict[str, str], dst: list[Path]) -> None:
    """Write the graph to `dst` (model.onnx, or an IR's .xml and .bin) with our input and output
    names; nothing else changes."""
    renames = inputs | outputs
    if info.format == "openvino":
        import openvino as ov

        model = ov.Core().read_model(str(info.path))
        for port in [*model.inputs, *model.outputs]:
            if port.get_any_name() in renames:
                port.get_tensor().set_names({renames[port.get_any_name()]})
        dst[0].parent.mkdir(parents=True, exist_ok=True)
        with temporary_folder(dst[0]) as tmp:  # ours: removed after
            ov.save_model(model, str(tmp / dst[0].name), compress_to_fp16=False)
            for path in reversed(dst):  # the .bin first: an .xml is never beside another's weights
                (tmp / path.name).replace(path)
        return
    import onnx

    model = onnx.load(str(info.path))
    graph = model.graph
    for value in [*graph.input, *graph.output]:
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    large = model.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: weights beside the graph
    with atomic_path(dst[0]) as tmp:
        onnx.save(model, str(tmp), save_as_external_data=large, location=f"{dst[0].name}.data")


@dataclass(frozen=True)
class ImportedGraph:
    """A graph made elsewhere, inspected: its inputs and outputs mapped to ours, its fixed shape."""

    info: GraphInfo
    inputs: dict[str, str]  # graph input -> ours
    outputs: dict[str, str]  # graph output -> the task's
    batch: int | None  # the fixed batch size, if any
    seq: int | None  # the fixed sequence length, if any

    @property
    def input_names(self) -> tuple[str, ...]:
        """Our names of the graph's inputs, in our order."""
        return tuple(n for n in WITH_SEGMENTS if n in self.inputs.values())

    @property
    def key(self) -> str:
        return import_key(self.info, self.inputs, self.outputs)

    @property
    def static(self) -> str | None:
        """How the graph's shape is fixed, for messages and the report."""
        parts = [f"batch {self.batch}"] if self.batch is not None else []
        parts += [f"sequence {self.seq}"] if self.seq is not None else []
        return " x ".join(parts) or None

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.info.path), "format": self.info.format, "sha256": self.info.digest(),
                "inputs": self.inputs, "outputs": self.outputs, "static_batch": self.batch,
                "static_seq": self.seq}


def imported_graph(path: Path, fmt: str, input_map: tuple[str, ...], task: Any) -> ImportedGraph:
    info = inspect_graph(path, fmt)
    inputs = match_inputs(info, input_map)
    outputs = match_outputs(info, task.output_names)
    check_outputs(info, outputs, task)
    batch, seq = static_shape(info, inputs)
    return ImportedGraph(info, inputs, outputs, batch, seq)


def check_outputs(info: GraphInfo, outputs: dict[str, str], task: Any) -> None:
    """Each output the task reads has its shape: the same number of axes, and a fixed size on
    every axis the task does not declare variable (a classifier's classes, an embedding's width);
    a graph that does not say its output shapes is taken as it is."""
    per_row = task.output_shapes(SimpleNamespace(num_labels=1, hidden_size=1), 1)
    for name, ours in outputs.items():
        shape, variable = info.outputs.get(name), task.output_axes.get(ours, {})
        if not shape:
            continue
        want = [variable.get(axis, "fixed") for axis in range(1 + len(per_row[ours]))]
        loose = [d is None and w == "fixed" for d, w in zip(shape, want, strict=False)]
        if len(shape) != len(want) or any(loose):
            shown = ", ".join("?" if d is None else str(d) for d in shape)
            raise ConfigError(f"{info.option}: output {name!r} has shape ({shown}); task '{task.name}' reads "
                              f"{ours} as ({', '.join(want)}): export the graph with the task's head")
