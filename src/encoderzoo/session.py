"""One inference session: a backend with its batching and the task's output layout, the one
path from prepared rows to outputs that the local engine, the Ray actors, the benchmark and a
served model all run: batches planned by length and token budget, padded to their width, run,
and their outputs put back in row order (sequence outputs padded to the full length)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from encoderzoo.backends import Backend, BackendContext, create_backend
from encoderzoo.features import Batching, Features
from encoderzoo.infer import OnBatch, pad_sequence, run_inference


def sequence_outputs(output_axes: Mapping[str, Mapping[int, str]]) -> frozenset[str]:
    """The outputs with a token axis (its padding depends on the batch's width, not the model)."""
    return frozenset(name for name, axes in output_axes.items() if "sequence" in axes.values())


def _padded(feeds: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """`feeds` made `rows` rows long with copies of its last row."""
    real = len(next(iter(feeds.values())))
    if real == rows:
        return feeds
    return {k: np.concatenate([v, np.repeat(v[-1:], rows - real, axis=0)]) for k, v in feeds.items()}


def _kept(outputs: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """The outputs of a padded batch's first `rows` rows (the copies' dropped)."""
    return {k: v[:rows] for k, v in outputs.items()}


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
            parts.append(_kept(self.inner.run(_padded(chunk, self.batch)), real))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def settings(self) -> dict[str, Any]:
        return dict(self.inner.settings()) | {"static_batch": self.batch}

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


def row_step(rows: int) -> int:
    """The rows a served batch of `rows` runs as: 1 to 8 as they are, more up to a multiple of 4.
    Replaying server-like batches on 2 cores (Xeon with AMX; 9-36 / 60-150 random SST-2 sentences,
    sentences/s): all-MiniLM-L6-v2 openvino:int8 exact rows 591-599 / 954-956, steps of 4 687-731 /
    1,020-1,047, of 8 652 / 946-949; the demo's openvino:bf16 (cheaper to prepare a shape for)
    790-823 / 1,182-1,190, 755-776 / 1,143-1,169, 700-732 / 1,123-1,132. Exact rows, every shape
    prepared at start, held 3.3 GB (int8) against 1.2 with steps of 4, and were no faster."""
    return rows if rows <= 8 else -(-rows // 4) * 4


class RowSteps:
    """A backend as a server runs it: each batch's rows rounded up (`row_step`) with copies of
    its last row, their outputs dropped, so that the runtime meets few batch shapes (OpenVINO and
    oneDNN prepare kernels per input shape: 15-45 ms each the first time, measured). A row's
    outputs do not depend on the rows beside it wherever the variant's batch-invariance check
    passed, and copies of a row leave a batch's range (dynamic int8's scales) as it was."""

    def __init__(self, backend: Any) -> None:
        self.inner, self.name, self.precision = backend, backend.name, backend.precision
        self.parallel = int(getattr(backend, "parallel", 1))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(feeds.values())))
        return _kept(self.inner.run(_padded(feeds, row_step(rows))), rows)

    def run_all(self, batches: Iterable[tuple[np.ndarray, dict[str, np.ndarray]]], sink: OnBatch) -> None:
        stepped = ((rows, _padded(feeds, row_step(len(rows)))) for rows, feeds in batches)
        if not hasattr(self.inner, "run_all"):
            for rows, feeds in stepped:
                sink(rows, _kept(self.inner.run(feeds), len(rows)))
            return
        self.inner.run_all(stepped, lambda rows, out: sink(rows, _kept(out, len(rows))))

    def warm(self, feeds: dict[str, np.ndarray]) -> None:
        """Run one batch shape on every form of the backend a served batch may take: alone (`run`)
        and, where several run at once, once on each of the `run_all` streams."""
        self.inner.run(feeds)
        if self.parallel > 1 and hasattr(self.inner, "run_all"):
            rows = np.arange(len(next(iter(feeds.values()))))
            self.inner.run_all([(rows, feeds)] * self.parallel, lambda *_: None)

    def settings(self) -> dict[str, Any]:
        return dict(self.inner.settings())

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


class Session:
    def __init__(self, backend: Backend, batching: Batching, sequence: frozenset[str] = frozenset()) -> None:
        self.backend, self.batching, self.sequence = backend, batching, sequence

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def precision(self) -> str:
        return self.backend.precision

    def run(self, features: Features, *, rows: np.ndarray | None = None, on_batch: OnBatch | None = None,
            progress: bool = True, label: str = "", done: int = 0) -> dict[str, np.ndarray]:
        """Outputs for every row of `features` (or `rows`), in row order (see run_inference)."""
        return run_inference(self.backend, features, self.batching, sequence_outputs=self.sequence,
                             label=label, progress=progress, rows=rows, on_batch=on_batch, done=done)

    def run_batch(self, feeds: dict[str, np.ndarray], seq_len: int | None = None) -> dict[str, np.ndarray]:
        """Outputs of one batch as given; sequence outputs padded to `seq_len` when given."""
        outputs = self.backend.run(feeds)
        if seq_len is None:
            return outputs
        return {k: pad_sequence(v, seq_len) if k in self.sequence else v for k, v in outputs.items()}

    def settings(self) -> dict[str, Any]:
        return dict(self.backend.settings())

    def close(self) -> None:
        if hasattr(self.backend, "close"):
            self.backend.close()


def open_session(name: str, precision: str, context: BackendContext, batching: Batching,
                 output_axes: Mapping[str, Mapping[int, str]], static_batch: int | None = None) -> Session:
    """The backend `name` at `precision` built from `context`, in a session."""
    backend: Any = create_backend(name, precision, context)
    if static_batch is not None and context.graph is not None:
        backend = StaticBatch(backend, static_batch)
    return Session(backend, batching, sequence_outputs(output_axes))
