"""A run over a graph made elsewhere (`--onnx`, `--openvino`): what the run context puts in place
of a checkpoint's family, config and runs when there is no PyTorch model (or beside it), the
options a static-shape graph imposes, and the wrapper that pads batches to its fixed shape."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from encoderzoo.checkpoints import Checkpoint
from encoderzoo.config import DEFAULT_BACKENDS, RunConfig
from encoderzoo.errors import ConfigError
from encoderzoo.families import WITH_SEGMENTS, Family
from encoderzoo.graphs import GraphInfo, import_key, inspect_graph, match_inputs, match_outputs, static_shape
from encoderzoo.options import whole_number

GRAPH_BACKENDS = {"onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",)}


@dataclass(frozen=True)
class ImportedGraph:
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


def shaped_config(config: RunConfig, graph: ImportedGraph) -> RunConfig:
    """The options a graph imposes: its fixed sequence (every batch padded to it) and batch size
    (the benchmark measures that one); an IR is run as given (nothing to fuse)."""
    changes: dict[str, Any] = {}
    if graph.info.format == "openvino":
        changes["optimize"] = False
    if graph.seq is not None:
        if config.seq_len not in (None, graph.seq):
            raise ConfigError(f"{graph.info.option} is fixed to sequences of {graph.seq} tokens; leave out "
                              f"--seq-len {config.seq_len} (or pass {graph.seq})")
        changes |= {"seq_len": graph.seq, "padding": "fixed", "buckets": (), "seq_lens": (graph.seq,)}
    if graph.batch is not None:
        changes |= {"batch_size": graph.batch, "batch_sizes": (graph.batch,)}
    return dataclasses.replace(config, **changes) if changes else config


def graph_family(graph: ImportedGraph) -> Family:
    """What the run needs of a family when only the graph is given."""
    return Family(name="graph", model_types=(), tokenizer_class="AutoTokenizer", tokenizer_files=(),
                  architecture="", hub_tokenizer="", input_names=graph.input_names)


def graph_model_config(graph: ImportedGraph, tokenizer_folder: Path, vocab_size: int,
                       label_names: tuple[str, ...] | None, task_labels: int | None) -> Any:
    """A config for a graph without its checkpoint: the labels from --labels, else the folder's
    config.json (an Optimum export folder has one), else the graph's logits width."""
    found: dict[str, Any] = {}
    config_json = tokenizer_folder / "config.json"
    if config_json.is_file():
        found = json.loads(config_json.read_text(encoding="utf-8"))
    id2label = {whole_number(str(k)): v for k, v in (found.get("id2label") or {}).items()}
    if None in id2label:
        raise ConfigError(f"{config_json}: id2label keys are class indices (0, 1, ...); fix the file or "
                          "pass --labels")
    width = next(iter(graph.info.outputs.values()), (None,))[-1] if task_labels else None
    count = len(label_names) if label_names else len(id2label) or width or task_labels or 0
    if label_names is None and id2label and len(id2label) != count:
        id2label = {}
    id2label = id2label or {i: f"LABEL_{i}" for i in range(count)}
    return SimpleNamespace(model_type="graph", vocab_size=vocab_size, num_labels=count, id2label=id2label,
                           max_position_embeddings=graph.seq, num_attention_heads=0, hidden_size=0)


def graph_checkpoint(graph: ImportedGraph, tokenizer: Path, label_names: tuple[str, ...] | None,
                     task: Any) -> Checkpoint:
    """What stands for the checkpoint of a graph given alone: its --tokenizer folder and a config
    made from the labels (see graph_model_config)."""
    from encoderzoo.checkpoints import load_tokenizer

    folder = tokenizer.expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"--tokenizer {tokenizer}: no such folder")
    loaded = load_tokenizer(Checkpoint(location=str(folder), is_local=True, config=SimpleNamespace(),
                                       folder=folder))
    labels = getattr(task, "labels", None)
    config = graph_model_config(graph, folder, len(loaded), label_names, len(labels) if labels else None)
    return Checkpoint(location=str(graph.info.path), is_local=True, config=config, folder=folder)


def graph_runs(runs: list[tuple[str, str]], notes: list[str], config: RunConfig,
               graph: ImportedGraph) -> tuple[list[tuple[str, str]], list[str]]:
    """Runs a graph can have: torch only with its --checkpoint, an IR on openvino only."""
    explicit = config.backends != DEFAULT_BACKENDS
    allowed = GRAPH_BACKENDS[graph.info.format] + ("torch",) * (config.checkpoint is not None)
    kept = []
    for name, precision in runs:
        if name in allowed:
            kept.append((name, precision))
            continue
        why = "needs --checkpoint (the graph's PyTorch model)" if name == "torch" else \
            "runs ONNX graphs, and this is an OpenVINO IR"
        if explicit:
            raise ConfigError(f"--backends {name}: {why}")
        notes.append(f"{name} left out: {why}")
    if not kept:
        raise ConfigError(f"--backends {','.join(config.backends)}: none runs {graph.info.option}")
    return kept, notes


class StaticBatch:
    """A backend over a graph of fixed batch size: a smaller batch is padded with copies of its
    last row (their outputs dropped), a larger one split."""

    def __init__(self, backend: Any, batch: int) -> None:
        self.inner, self.batch = backend, batch
        self.name, self.precision = backend.name, backend.precision

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(feeds.values())))
        parts = []
        for start in range(0, rows, self.batch):
            chunk = {k: v[start:start + self.batch] for k, v in feeds.items()}
            real = len(next(iter(chunk.values())))
            if real < self.batch:
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], self.batch - real, axis=0)])
                         for k, v in chunk.items()}
            parts.append({k: v[:real] for k, v in self.inner.run(chunk).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def settings(self) -> dict[str, Any]:
        return dict(self.inner.settings()) | {"static_batch": self.batch}

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()
