"""Batched inference over prepared features, with a progress bar; outputs saved with their ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from encoderzoo.backends import Backend
from encoderzoo.console import progress_bar
from encoderzoo.errors import ArtifactError
from encoderzoo.features import Batching, Features
from encoderzoo.fileio import atomic_path

SEQUENCE_FILL = np.finfo(np.float32).min  # value of sequence positions beyond a batch's width


def run_inference(
    backend: Backend, features: Features, batching: Batching, *,
    sequence_outputs: frozenset[str] = frozenset(), label: str = "", progress: bool = True,
) -> dict[str, np.ndarray]:
    """Outputs for every feature row, back in feature order whatever order the batches ran in.
    Outputs named in `sequence_outputs` (axis 1 = tokens) are padded to the full sequence
    length with a very negative value."""
    outputs: dict[str, np.ndarray] = {}
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task(label or f"{backend.name} {backend.precision}", total=len(features))

        def sink(rows: np.ndarray, results: dict[str, np.ndarray]) -> None:
            for name, array in results.items():
                if name in sequence_outputs and array.shape[1] < features.seq_len:
                    pad = [(0, 0)] * array.ndim
                    pad[1] = (0, features.seq_len - array.shape[1])
                    array = np.pad(array, pad, constant_values=SEQUENCE_FILL)
                if name not in outputs:
                    outputs[name] = np.empty((len(features), *array.shape[1:]), dtype=array.dtype)
                outputs[name][rows] = array
            bar.advance(task, len(rows))

        batches = features.batches(batching)
        if hasattr(backend, "run_all"):  # backends that keep several batches in flight
            backend.run_all(batches, sink)
        else:
            for rows, feeds in batches:
                sink(rows, backend.run(feeds))
    return outputs


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
