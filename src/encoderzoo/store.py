"""The artifacts of one run folder (see encoderzoo.artifacts), from plain values: the folder, the
model source, the task, the options and the rows builds read. It keys them, builds on demand
whatever a requested kind is made from, reuses what is current and verifies what a runtime opens.

An artifact is reused only while the key recorded when it was built equals the key of what it
would be built from now (see encoderzoo.cache), and opened only after its bytes are checked
against the SHA-256 recorded then. A kind whose build fell back (the optimizer could not fuse)
stands for the kind it was made from: it opens that file, with that key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from encoderzoo import kinds as _builtin  # noqa: F401  the built-in kinds are registered there
from encoderzoo.artifacts import ARTIFACTS, BuildOptions, BuildStep, derived_from, shares_record
from encoderzoo.cache import file_hash, files_hash, make_key
from encoderzoo.console import step
from encoderzoo.environment import free_memory
from encoderzoo.errors import ArtifactError
from encoderzoo.export import check_onnx_file
from encoderzoo.features import Features
from encoderzoo.fileio import read_json, write_json
from encoderzoo.model_source import ModelSource
from encoderzoo.tasks.base import Task


class ArtifactStore:
    def __init__(self, folder: Path, model: ModelSource, task: Task, options: BuildOptions,
                 rows: Callable[[], Features]) -> None:
        self.folder, self.model, self.task, self.options, self.rows = folder, model, task, options, rows
        self._announced: set[str] = set()  # kinds whose reuse was said

    @property
    def parity(self) -> Path:
        """The parity cases: the model's outputs on padded batches, that every graph is checked on."""
        return self.folder / "parity.npz"

    def files(self, name: str) -> list[Path]:
        return [self.folder / f for f in ARTIFACTS[name].file_names(self.model)]

    # -- records -------------------------------------------------------------------------------

    def record_path(self, name: str) -> Path:
        """model/<record>.json: how the artifact was built (a shared record holds one entry per kind)."""
        return self.folder / f"{ARTIFACTS[name].record_name}.json"

    def record(self, name: str) -> dict[str, Any]:
        path = self.record_path(name)
        try:
            data = read_json(path) if path.is_file() else {}
        except ValueError:
            return {}
        if shares_record(ARTIFACTS[name]):
            data = data.get(name, {}) if isinstance(data, dict) else {}
        return data if isinstance(data, dict) else {}

    def recorded(self, name: str, field: str) -> Any:
        return self.record(name).get(field)

    def _write_record(self, name: str, record: dict[str, Any]) -> None:
        path = self.record_path(name)
        if shares_record(ARTIFACTS[name]):
            entries = read_json(path) if path.is_file() else {}
            record = entries | {name: record}
        write_json(path, record)

    def stands_for(self, name: str) -> str:
        """The kind whose file `name` opens: itself, or what it was made from when its build fell back."""
        standing = self.recorded(name, "stands_for")
        return self.stands_for(standing) if standing and standing in ARTIFACTS else name

    # -- keys ----------------------------------------------------------------------------------

    def build_key(self, name: str) -> str:
        """The key over everything the artifact is built from: its source's key, its own inputs."""
        kind = ARTIFACTS[name]
        if kind.made_from is None:
            return self.model.identity["model"]
        inputs = kind.key_inputs(self.model, self.task, self.options) if kind.key_inputs else {}
        return make_key(name, revision=kind.revision, source=self.key(kind.made_from), **inputs)

    def key(self, name: str) -> str:
        """What identifies the artifact in use: its build key with the nodes triage left in float
        (those replace the plain artifact); the key of what it stands for, when its build fell back."""
        kind = ARTIFACTS[name]
        if kind.made_from is None:
            return self.build_key(name)
        if self.stands_for(name) != name:
            return self.key(str(kind.made_from))
        excluded = self.recorded(name, "excluded_nodes") or []
        return make_key("in-use", key=self.build_key(name), excluded=excluded)

    def current(self, name: str) -> bool:
        """Built from exactly what it would be built from now, and its files are there."""
        if ARTIFACTS[name].made_from is None:
            return True
        if self.recorded(name, "key") != self.build_key(name):
            return False
        standing = self.stands_for(name)
        return self.current(standing) if standing != name else all(f.is_file() for f in self.files(name))

    # -- use -----------------------------------------------------------------------------------

    def opened(self, name: str) -> Path | None:
        """The file a runtime opens for `name` as the folder holds it, building nothing: None for
        the model source itself, or when it is not there."""
        if not ARTIFACTS[name].is_graph:
            return None
        path = self.files(self.stands_for(name))[0]
        return path if path.is_file() else None

    def get(self, name: str) -> Path | None:
        """The file for `name`, built first (with what it is made from) when it is not current."""
        kind = ARTIFACTS[name]
        if not kind.is_graph:
            return None
        if kind.made_from is not None:
            self.get(kind.made_from)
        if not self.current(name):
            self.build(name)
        elif name not in self._announced:
            step(f"{kind.record_name}: reusing {self.files(self.stands_for(name))[0].name} for {name} (same "
                 "model content and options)")
        self._announced.add(name)
        return self.opened(name)

    def build(self, name: str, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """Build (or rebuild, leaving the `exclude` nodes in float) the artifact `name` from what it
        is made from (which must be current), and record its key and SHA-256."""
        kind = ARTIFACTS[name]
        assert kind.build is not None
        source = None
        if kind.made_from is not None and ARTIFACTS[kind.made_from].is_graph:
            source = self.opened(kind.made_from)
            if source is None:
                raise ArtifactError(f"{self.files(kind.made_from)[0]}: missing; it is built before {name}")
            self.verify(kind.made_from)
        self.invalidate_derived(name)
        job = BuildStep(kind=kind, source=source, files=self.files(name), model=self.model, task=self.task,
                        rows=self.rows, options=self.options, parity=self.parity, exclude=tuple(exclude))
        record = kind.build(job) | {"key": self.build_key(name)}
        if record.get("stands_for") is None:
            record |= {"bytes": sum(f.stat().st_size for f in self.files(name) if f.is_file()),
                       "sha256": self.sha256(name)}
        self._write_record(name, record)
        free_memory()  # what the builder held (NNCF kept ~0.9 GB of a base model) before a runtime loads
        return record

    def build_copy(self, name: str, files: list[Path], exclude: Sequence[str] = ()) -> dict[str, Any]:
        """Build `name` into other `files` (from its current source), recording nothing: to compare
        variants side by side."""
        kind = ARTIFACTS[name]
        assert kind.build is not None and kind.made_from is not None
        job = BuildStep(kind=kind, source=self.opened(kind.made_from), files=files, model=self.model,
                        task=self.task, rows=self.rows, options=self.options, parity=self.parity,
                        exclude=tuple(exclude))
        return kind.build(job)

    def sha256(self, name: str) -> str:
        """SHA-256 of the artifact (`sha256sum` prints the same for one file; over an IR's files)."""
        files = self.files(self.stands_for(name))
        return file_hash(files[0]) if len(files) == 1 else files_hash(files)

    def verify(self, name: str) -> str:
        """Before a runtime opens it: its bytes must be those recorded when it was built (SHA-256,
        streamed); without a record, the ONNX file is parsed and checked. Returns its SHA-256."""
        source = self.stands_for(name)
        path = self.files(source)[0]
        expected = self.recorded(source, "sha256")
        if expected is None:
            if path.suffix == ".onnx":
                check_onnx_file(path)
            return self.sha256(source)
        missing = [f for f in self.files(source) if not f.is_file()]
        if missing:
            raise ArtifactError(f"{missing[0]}: missing; run the stage that builds it again (or delete the "
                                "run folder's model/ and rerun)")
        if self.sha256(source) != expected:
            raise ArtifactError(f"{path}: not the file encoderzoo built and checked (its SHA-256 changed: "
                                "truncated, corrupt or replaced); export it again (`encoderzoo export`, or "
                                "delete it and rerun)")
        return str(expected)

    def invalidate_derived(self, name: str) -> None:
        """Delete everything built from `name`, before `name` is rebuilt."""
        for kind in derived_from(name):
            for path in self.files(kind.name):
                path.unlink(missing_ok=True)
            if shares_record(kind):
                path = self.record_path(kind.name)
                if path.is_file():
                    write_json(path, {k: v for k, v in read_json(path).items() if k != kind.name})
            else:
                self.record_path(kind.name).unlink(missing_ok=True)

    def plan(self, names: Sequence[str]) -> list[tuple[str, str, str]]:
        """(its record, the kind and its file, build/reuse) for what `names` need, in build order,
        building nothing."""
        order: list[str] = []

        def visit(name: str) -> None:
            kind = ARTIFACTS[name]
            if kind.made_from is not None:
                visit(kind.made_from)
            if kind.is_graph and name not in order:
                order.append(name)

        for name in names:
            visit(name)
        return [(ARTIFACTS[n].record_name, f"{n} ({self.files(n)[0].name})",
                 "reuse" if self.current(n) else "build") for n in order]
