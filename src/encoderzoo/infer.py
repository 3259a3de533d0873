"""Batched inference over prepared features, with a progress bar; outputs saved with their ids.

Long runs write their outputs in shards as batches finish (`Shards`), so that an interrupted
run resumes where it stopped: the shards of a run are valid only for the key they were
started with (same features, artifact, backend and batching), and the final outputs hold
every row exactly once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from encoderzoo.backends import Backend
from encoderzoo.console import progress_bar, step
from encoderzoo.errors import ArtifactError
from encoderzoo.features import Batching, Features
from encoderzoo.fileio import atomic_path, read_json, write_json

SEQUENCE_FILL = np.finfo(np.float32).min  # value of sequence positions beyond a batch's width
DEFAULT_SHARD_ROWS = 1024

OnBatch = Callable[[np.ndarray, dict[str, np.ndarray]], None]


def run_inference(
    backend: Backend, features: Features, batching: Batching, *,
    sequence_outputs: frozenset[str] = frozenset(), label: str = "", progress: bool = True,
    rows: np.ndarray | None = None, on_batch: OnBatch | None = None, done: int = 0,
) -> dict[str, np.ndarray]:
    """Outputs for every feature row (or only `rows`), back in feature order whatever order
    the batches ran in; `on_batch(rows, outputs)` sees each batch as it finishes. Outputs named
    in `sequence_outputs` (axis 1 = tokens) are padded to the full sequence length with a very
    negative value. `done` rows already finished elsewhere start the progress bar."""
    outputs: dict[str, np.ndarray] = {}
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task(label or f"{backend.name} {backend.precision}", total=len(features),
                            completed=done)

        def sink(batch: np.ndarray, results: dict[str, np.ndarray]) -> None:
            padded = {name: pad_sequence(array, features.seq_len) if name in sequence_outputs else array
                      for name, array in results.items()}
            for name, array in padded.items():
                if name not in outputs:
                    outputs[name] = np.empty((len(features), *array.shape[1:]), dtype=array.dtype)
                outputs[name][batch] = array
            if on_batch is not None:
                on_batch(batch, padded)
            bar.advance(task, len(batch))

        plan = features.plan(batching, rows)
        batches = features.batches_of(plan)
        parallel = int(getattr(backend, "parallel", 1))  # batches it runs at once with run_all
        if hasattr(backend, "run_all") and len(plan) >= parallel:
            backend.run_all(batches, sink)  # several batches in flight
        else:
            for batch, feeds in batches:
                sink(batch, backend.run(feeds))
    return outputs


def pad_sequence(array: np.ndarray, seq_len: int) -> np.ndarray:
    if array.shape[1] >= seq_len:
        return array
    pad = [(0, 0)] * array.ndim
    pad[1] = (0, seq_len - array.shape[1])
    return np.pad(array, pad, constant_values=SEQUENCE_FILL)


class Shards:
    """Outputs of one inference run, flushed to `folder` every `shard_rows` rows (each shard
    written whole under a temporary name, then renamed)."""

    def __init__(self, folder: Path, key: str, total: int, shard_rows: int = DEFAULT_SHARD_ROWS) -> None:
        self.folder, self.key, self.total, self.shard_rows = folder, key, total, shard_rows
        self._rows: list[np.ndarray] = []
        self._outputs: list[dict[str, np.ndarray]] = []
        self._count = 0

    @property
    def meta(self) -> Path:
        return self.folder / "shards.json"

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz"))

    def start(self, *, resume: bool) -> np.ndarray:
        """Rows already done (resume, same key) or none (the folder is emptied)."""
        if resume and self.meta.is_file():
            meta = read_json(self.meta)
            if meta.get("key") == self.key and meta.get("total") == self.total:
                self._count = len(self.files())
                return self.done_rows()
            step(f"infer: the unfinished outputs in {self.folder.name} were made with another model, data, "
                 "backend or batching; starting this backend over")
        shutil.rmtree(self.folder, ignore_errors=True)
        write_json(self.meta, {"key": self.key, "total": self.total})
        return np.zeros(0, dtype=np.int64)

    def done_rows(self) -> np.ndarray:
        found = []
        for path in self.files():
            with np.load(path, allow_pickle=False) as z:
                found.append(z["rows"])
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def add(self, rows: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        self._rows.append(np.asarray(rows, dtype=np.int64))
        self._outputs.append(outputs)
        if sum(len(r) for r in self._rows) >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        arrays = {f"output.{name}": np.concatenate([o[name] for o in self._outputs])
                  for name in self._outputs[0]}
        path = self.folder / f"shard-{self._count:05d}.npz"
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, rows=np.concatenate(self._rows), **arrays)
        self._count += 1
        self._rows, self._outputs = [], []

    def collect(self) -> dict[str, np.ndarray]:
        """Every row's outputs, in row order; an error unless each row is there exactly once."""
        self.flush()
        seen = np.zeros(self.total, dtype=np.int64)
        outputs: dict[str, np.ndarray] = {}
        for path in self.files():
            with np.load(path, allow_pickle=False) as z:
                rows = z["rows"]
                seen[rows] += 1
                for key in z.files:
                    if key.startswith("output."):
                        name = key.removeprefix("output.")
                        if name not in outputs:
                            outputs[name] = np.empty((self.total, *z[key].shape[1:]), dtype=z[key].dtype)
                        outputs[name][rows] = z[key]
        if not (seen == 1).all():
            missing, repeated = int((seen == 0).sum()), int((seen > 1).sum())
            raise ArtifactError(f"{self.folder}: {missing} rows missing and {repeated} repeated in "
                                "the shards; delete the folder and run infer again")
        return outputs

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def save_outputs(path: Path, example_ids: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, example_ids=example_ids.astype(str), **{f"output.{k}": v for k, v in outputs.items()})


def load_outputs(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not path.is_file():
        raise ArtifactError(f"{path}: no outputs here; run `encoderzoo infer` first")
    try:
        with np.load(path, allow_pickle=False) as z:
            outputs = {k.removeprefix("output."): z[k] for k in z.files if k.startswith("output.")}
            return z["example_ids"], outputs
    except (OSError, ValueError, KeyError) as err:
        raise ArtifactError(f"{path}: unreadable outputs file ({err}); run infer again") from None
