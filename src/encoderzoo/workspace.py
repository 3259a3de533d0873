"""The layout of a run folder (where every stage reads and writes) and its life: `run` builds it
as a hidden partial folder, locked against a second run, renamed into place when complete."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from encoderzoo.console import step
from encoderzoo.errors import ConfigError
from encoderzoo.fileio import MARKER, check_replaceable, is_temporary, mark, marker

RUN = "run"  # the marker kind of a run folder


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def examples(self) -> Path:
        return self.root / "data" / "examples.jsonl"

    @property
    def features(self) -> Path:
        return self.root / "data" / "features.npz"

    @property
    def prepare_json(self) -> Path:
        return self.root / "data" / "prepare.json"

    @property
    def random_checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def model_dir(self) -> Path:
        """The artifacts (see encoderzoo.artifacts: each kind names its files here)."""
        return self.root / "model"

    def record(self, stage: str) -> Path:
        """What a stage building artifacts recorded: model/export.json, optimize.json, quantize.json."""
        return self.model_dir / f"{stage}.json"

    @property
    def parity_inputs(self) -> Path:
        return self.root / "model" / "parity.npz"

    @property
    def infer_json(self) -> Path:
        return self.root / "outputs" / "infer.json"

    def outputs(self, backend: str, precision: str) -> Path:
        return self.root / "outputs" / f"{backend}-{precision}.npz"

    def output_shards(self, backend: str, precision: str) -> Path:
        """Outputs of an unfinished inference run, in shards (see infer.Shards)."""
        return self.root / "outputs" / f"{backend}-{precision}.shards"

    def run_record(self, backend: str, precision: str) -> Path:
        """What infer recorded of one finished run (its key among it)."""
        return self.root / "outputs" / f"{backend}-{precision}.json"

    def predictions(self, backend: str, precision: str, suffix: str) -> Path:
        return self.root / "predictions" / f"{backend}-{precision}{suffix}"

    @property
    def triage_json(self) -> Path:
        return self.root / "triage.json"

    @property
    def accuracy_json(self) -> Path:
        return self.root / "accuracy.json"

    @property
    def benchmark_json(self) -> Path:
        return self.root / "benchmark.json"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def plot_png(self) -> Path:
        return self.root / "throughput.png"

    def results(self) -> list[Path]:
        """What score, triage, bench and report wrote: stale once inference runs again."""
        return [self.accuracy_json, self.triage_json, self.report_json, self.report_md, self.plot_png]

    @property
    def bin_dir(self) -> Path:
        """`prepare --format bin`: one file per sample and input, as the reference tools read."""
        return self.root / "bin"

    @property
    def ascend_dir(self) -> Path:
        """`export --ascend`: the graph ATC gets and run.sh (see encoderzoo.ascend)."""
        return self.root / "ascend"

    @property
    def device_dir(self) -> Path:
        """What device runners wrote, as `score --outputs` kept it: NAME.npz and NAME.json each."""
        return self.root / "device"

    def device_outputs(self, name: str) -> Path:
        """A device runner's outputs as `score --outputs` read them, kept as a row of the run."""
        return self.device_dir / f"{name}.npz"


def unlink(*paths: Path) -> None:
    """Remove results that a stage about to run makes stale, so that none looks current."""
    for path in paths:
        path.unlink(missing_ok=True)


def partial_folder(out: Path) -> Path:
    """Where `run` builds `out` until it is complete (kept when a run is interrupted or fails
    after prepare, for --resume)."""
    return out.with_name(f".{out.name}.partial")


def lock_file(out: Path) -> Path:
    """Beside the run folder, not in it: it is held across the rename that publishes the run."""
    return out.with_name(f".{out.name}.lock")


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """One encoderzoo command at a time writes a run folder (and its partial folder). The lock
    file is removed on release; a command that locked a file another one had just removed
    (its inode no longer at the path) tries again, so two commands never both hold it. The lock
    is the folder's, not the path's: a path through a symlink takes the same lock."""
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = lock_file(out)
    while True:
        lock = path.open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ConfigError(f"{out}: another encoderzoo command is writing this run folder; wait for it "
                              "to finish or pass another --out") from None
        try:
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        lock.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        lock.close()


def is_run_folder(folder: Path) -> bool:
    """Made by encoderzoo as a run folder: its marker, written in this very folder (a report,
    prepared data or a marker copied from another run folder prove nothing)."""
    return marker(folder).get("kind") == RUN


def check_out(out: Path, *, replaced: bool = False) -> None:
    """Refuse an --out that cannot be a run folder: a file, the filesystem root, and for a
    command that replaces the folder (`run`), the current folder or one holding it."""
    given, out = out, out.expanduser().resolve()
    if out.parent == out:
        raise ConfigError(f"--out {given}: the filesystem root cannot be a run folder; pass a folder of its "
                          "own, e.g. --out runs/NAME")
    if replaced and Path.cwd().resolve().is_relative_to(out):
        raise ConfigError(f"--out {given}: holds the current folder, which `run` would replace when it is "
                          "complete; pass a folder of its own, e.g. --out runs/NAME")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; pass another --out (a new folder, or "
                          "a run folder encoderzoo made)")


def check_inputs(out: Path, inputs: tuple[Path, ...]) -> None:
    """Refuse an --out holding what the run reads (the checkpoint, the data, a cache): the run
    folder replaces --out when it is complete, which would delete them, --overwrite or not."""
    root = out.resolve()
    for path in inputs:
        resolved = path.expanduser().resolve()
        if resolved.is_relative_to(root):
            raise ConfigError(f"--out {out}: holds this run's input {path}; the run folder replaces --out "
                              "when it is complete, so pass another --out")


def check_run_folder(out: Path, *, overwrite: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an --out encoderzoo cannot prove it made (unless --overwrite), and always one that
    holds this run's own inputs (the checkpoint, the data, the caches): replacing it would delete
    them."""
    out = out.expanduser().resolve()
    check_out(out)
    check_inputs(out, inputs)
    if out.is_dir() and any(out.iterdir()) and not overwrite and not is_run_folder(out):
        check_replaceable(out, RUN, overwrite=overwrite)


def recover(out: Path) -> None:
    """Finish a publication a kill interrupted: a run folder moved aside (.NAME.old-*) comes
    back when `out` is missing; once `out` is there, what was moved aside is deleted."""
    aside = [*sorted(out.parent.glob(f".{out.name}.old-*")), out.with_name(f".{out.name}.partial.old")]
    aside = [old for old in aside if old.is_dir()]
    for old in aside:
        if not is_run_folder(old):
            continue
        if not out.exists():
            step(f"run: restoring {out} from {old.name} (a run was stopped while replacing it)")
            os.replace(old, out)
        else:
            shutil.rmtree(old, ignore_errors=True)


def clear(partial: Path) -> None:
    """Empty a partial run folder (its marker stays)."""
    for child in partial.iterdir():
        if child.name != MARKER:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def has_work(partial: Path) -> bool:
    return any(p.name != MARKER for p in partial.iterdir())


def clean_temporary(folder: Path) -> list[Path]:
    """Delete what killed writes left in a run folder (under its lock, so nothing is writing)."""
    found = [p for p in folder.rglob(".*") if is_temporary(p)]
    for path in found:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return found


@contextmanager
def stage_folder(out: Path, *, overwrite: bool = False) -> Iterator[Workspace]:
    """A run folder for a stage command: locked, proven ours (or new, or empty), marked, and
    cleaned of temporary files a killed command left. A folder it made for a command that then
    failed before writing anything is removed again."""
    out = out.expanduser().resolve()
    check_out(out)
    with locked(out):
        recover(out)
        check_run_folder(out, overwrite=overwrite)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        mark(out, RUN)
        clean_temporary(out)
        try:
            yield Workspace(out)
        except BaseException:
            if created and not has_work(out):
                shutil.rmtree(out, ignore_errors=True)
            raise


def seed_from(out: Path, partial: Path) -> None:
    """Hard-link an earlier run's model artifacts (and random checkpoint) into the new run;
    their recorded keys decide whether they are reused. Every write replaces a file whole, so
    the earlier run's files are never changed through the links. Temporary and hidden files are
    never carried over."""
    for folder in (Workspace(out).model_dir, Workspace(out).random_checkpoint):
        if not folder.is_dir():
            continue
        for source in folder.rglob("*"):
            relative = source.relative_to(out)
            if any(part.startswith(".") for part in relative.parts):
                continue
            target = partial / relative
            if source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
