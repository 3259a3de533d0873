"""Artifact kinds: what backends run, each declared once — what it is made from, its files, the
precision it holds, what its key holds beside its source's, and the callable that builds it.
The built-in kinds are declared in encoderzoo.kinds; encoderzoo.store keys, builds, reuses and
verifies them in a run folder. Adding a kind: a builder and one `register_artifact(...)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encoderzoo.features import Features
from encoderzoo.model_source import ModelSource
from encoderzoo.precision import PRECISIONS
from encoderzoo.registry import Registry
from encoderzoo.tasks.base import Task

MODEL = "checkpoint"  # the kind that is the model source itself (a PyTorch module, nothing to build)


@dataclass(frozen=True)
class BuildOptions:
    """The run's options a build may read (all of them enter the keys of the kinds that read them)."""

    optimize: bool = True  # fuse graphs with ONNX Runtime's transformer optimizer
    optimize_timeout: float = 300.0  # seconds before the optimizer is given up
    calibration_size: int = 100  # rows, spread over the data, that calibrate int8 kinds
    export_atol: float = 1e-4  # max |Δ| between PyTorch's outputs and a graph's
    prepared: bool = True  # the rows are prepared examples (else synthetic inputs)
    rows_key: str = "synthetic"  # what the rows are: the prepared data's key, else synthetic


@dataclass(frozen=True)
class BuildStep:
    """What a builder gets, in plain values: where to read and write, the model, the task."""

    kind: ArtifactKind
    source: Path | None  # the file of the kind it is made from (None: made from the model itself)
    files: list[Path]  # where it writes, the first being what a runtime opens
    model: ModelSource
    task: Task
    rows: Callable[[], Features]  # rows to check (parity) or calibrate on: prepared, else synthetic
    options: BuildOptions
    parity: Path  # the parity cases: the model's outputs on padded batches of `rows`
    exclude: tuple[str, ...] = ()  # nodes to leave in float (triage)


Builder = Callable[[BuildStep], dict[str, Any]]  # returns what the record keeps of the build
KeyInputs = Callable[[ModelSource, Task, BuildOptions], Mapping[str, Any]]


@dataclass(frozen=True)
class ArtifactKind:
    name: str
    description: str
    # under the run folder's model/, the first is what a runtime opens (a callable: per model source)
    files: tuple[str, ...] | Callable[[ModelSource], tuple[str, ...]] = ()
    made_from: str | None = MODEL  # the kind it is built from (None: nothing, it is the model)
    precision: str = "fp32"  # what it holds (see encoderzoo.precision: its ceiling)
    build: Builder | None = None  # None: the model source is the artifact
    key_inputs: KeyInputs | None = None  # what its key holds beside its source's key
    record: str = ""  # its record, model/<record>.json (shared: one entry per kind); default: its name
    calibrated: bool = False  # built with calibration rows
    triageable: bool = False  # triage can rebuild it with some nodes left in float
    quantized_ops: tuple[str, ...] | None = None  # the operators it quantizes (None: the builder's default)
    otherwise: str = ""  # what to try when triage cannot bring it back above its gate
    # triageable but no ONNX graph: the ONNX kind quantized alike, from the same source, whose drift
    # ranks its nodes (the node names are the source graph's: its builder maps them to its own)
    ranked_on: str | None = None
    # False: a row's outputs depend on the rows batched with it (activations quantized with one scale
    # per batch): served in other batches than the run's, its verified predictions do not hold
    batch_invariant: bool = True
    revision: int = 1  # raised whenever encoderzoo changes how it builds the kind: old files rebuild
    options: tuple[str, ...] = ()  # the RunConfig fields its build reads (a command building it offers them)
    extra: Mapping[str, Any] = field(default_factory=dict)  # free for builders' own declarations

    @property
    def is_graph(self) -> bool:
        """A file a runtime opens (everything but the model source itself)."""
        return self.build is not None

    @property
    def record_name(self) -> str:
        return self.record or self.name

    def file_names(self, model: ModelSource) -> tuple[str, ...]:
        return self.files(model) if callable(self.files) else self.files


ARTIFACTS: Registry[ArtifactKind] = Registry("artifact kind")


def register_artifact(kind: ArtifactKind) -> ArtifactKind:
    if kind.made_from is not None and kind.made_from not in ARTIFACTS:
        raise ValueError(f"artifact {kind.name!r} is made from unknown {kind.made_from!r}")
    if kind.precision not in PRECISIONS:
        raise ValueError(f"artifact {kind.name!r}: unknown precision {kind.precision!r}")
    if kind.ranked_on is not None and (kind.ranked_on not in ARTIFACTS or not kind.triageable
                                       or ARTIFACTS[kind.ranked_on].made_from != kind.made_from):
        raise ValueError(f"artifact {kind.name!r}: ranked on {kind.ranked_on!r}, which must be a registered "
                         "kind made from the same source (and the kind triageable)")
    return ARTIFACTS.register(kind.name, kind)


def derived_from(name: str) -> list[ArtifactKind]:
    """Every kind built (directly or not) from `name`: stale once `name` is rebuilt."""
    found = [k for k in ARTIFACTS.values() if k.made_from == name]
    return found + [d for k in found for d in derived_from(k.name)]


def shares_record(kind: ArtifactKind) -> bool:
    """Several kinds keep their records in one file (quantize.json): one entry each."""
    return sum(k.record_name == kind.record_name for k in ARTIFACTS.values()) > 1
