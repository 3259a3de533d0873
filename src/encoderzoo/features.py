"""Prepared model inputs: fixed-width token arrays with their true lengths and example ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from encoderzoo.errors import ArtifactError
from encoderzoo.fileio import atomic_path

Padding = Literal["dynamic", "fixed"]


@dataclass
class Features:
    """N encoded rows (an example, or one window of a long one), each right-padded to `seq_len`
    tokens."""

    example_ids: np.ndarray  # (N,) str: the example each row belongs to
    arrays: dict[str, np.ndarray]  # model input name -> (N, S) int64
    lengths: np.ndarray  # (N,) int32: tokens before padding
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # task data per row, not model input

    def __post_init__(self) -> None:
        n = len(self.example_ids)
        for name, array in self.arrays.items():
            if array.ndim != 2 or array.shape[0] != n:
                raise ValueError(f"input {name!r} has shape {array.shape}, expected ({n}, S)")
        for name, array in self.extras.items():
            if array.shape[0] != n:
                raise ValueError(f"extra {name!r} has {array.shape[0]} rows, expected {n}")
        if self.lengths.shape != (n,):
            raise ValueError(f"lengths has shape {self.lengths.shape}, expected ({n},)")

    def __len__(self) -> int:
        return len(self.example_ids)

    @property
    def seq_len(self) -> int:
        return next(iter(self.arrays.values())).shape[1]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    def take(self, index: np.ndarray | slice, padding: Padding = "fixed") -> dict[str, np.ndarray]:
        """Model inputs for the rows `index`; "dynamic" trims padding to the longest row."""
        width = self.seq_len
        if padding == "dynamic":
            width = max(int(self.lengths[index].max(initial=1)), 1)
        return {name: np.ascontiguousarray(a[index, :width]) for name, a in self.arrays.items()}

    def batches(
        self, batch_size: int, padding: Padding = "dynamic"
    ) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
        """Consecutive batches in dataset order: (rows, inputs)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        for start in range(0, len(self), batch_size):
            rows = slice(start, min(start + batch_size, len(self)))
            yield rows, self.take(rows, padding)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(
                f, example_ids=self.example_ids.astype(str), lengths=self.lengths,
                **{f"input.{k}": v for k, v in self.arrays.items()},
                **{f"extra.{k}": v for k, v in self.extras.items()},
            )

    @classmethod
    def load(cls, path: Path) -> Features:
        if not path.is_file():
            raise ArtifactError(f"{path}: no prepared features here; run `encoderzoo prepare` first")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k.removeprefix("input."): z[k] for k in z.files if k.startswith("input.")}
                extras = {k.removeprefix("extra."): z[k] for k in z.files if k.startswith("extra.")}
                return cls(example_ids=z["example_ids"], arrays=arrays, lengths=z["lengths"], extras=extras)
        except (OSError, ValueError, KeyError) as err:
            raise ArtifactError(f"{path}: unreadable features file ({err}); run prepare again") from None
