"""Whether a variant's outputs hold when its rows are batched otherwise, measured on the machine
that ran it. An artifact kind says whether a row's outputs may depend on the rows batched with it
(ONNX Runtime's dynamic int8 quantizes over the whole batch: they do), and the verdict deploys
only kinds that say they do not — a server batches other rows together than the run did. That
claim is checked, not trusted: runtimes choose kernels by shape, and on a Xeon with AMX OpenVINO's
int8 IR with bf16 float layers read logits (-0.12, 0.16) for a demo sentence run alone where the
whole pass had read (0.77, -0.73) — 21 of the 24 sentences of exactly 32 tokens were wrong alone,
none of another length, and no gate over the batched pass sees that. So one row of each width the
pass ran (SAMPLE widths at most, spread from the shortest to the longest) is run again alone, at its
own width, as a lone request to a server runs it, and compared with what the pass gave it: the
largest difference, relative to the largest output of those rows, must stay within TOLERANCE (the
float kinds differ by 0 to 3e-3 of it, torch bf16 the most; the wrong rows above by more than 0.5)."""

from __future__ import annotations

from typing import Any

import numpy as np

from encoderzoo.features import Features
from encoderzoo.session import Session

SAMPLE = 64  # widths whose row is run again alone (the demo's 872 sentences have 57)
# widths run in one session: a runtime keeps state per input shape (OpenVINO about 2 MB a width for
# the demo's int8 IR), so the check opens a fresh session for each group of them
TOLERANCE = 1e-2  # largest difference allowed, relative to the sampled rows' largest output
CHUNK = 32
# what decides a check's record, in the key of the outputs it is kept with (1: raised when the way
# rows are chosen or compared changes), so a record made under other settings is made again
SETTINGS = (1, SAMPLE, TOLERANCE)


def sample_rows(features: Features, rows: np.ndarray, count: int = SAMPLE) -> np.ndarray:
    """The first of `rows` at each of their widths (token counts); of more than `count` widths,
    `count` spread evenly from the shortest to the longest."""
    widths, first = np.unique(features.lengths[rows], return_index=True)
    if len(widths) > count:
        first = first[np.unique(np.linspace(0, len(widths) - 1, count).astype(np.int64))]
    return np.sort(rows[first])


class Collector:
    """Keeps the outputs the whole pass gave the sampled rows (an `on_batch` hook)."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = set(rows.tolist())
        self.seen: dict[int, dict[str, np.ndarray]] = {}

    def __call__(self, batch: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        for j, row in enumerate(batch.tolist()):
            if row in self.rows:
                self.seen[row] = {name: np.array(array[j]) for name, array in outputs.items()}


def measure(session: Session, features: Features,
            together: dict[int, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Each row of `together` (its outputs from the whole pass) run again alone; the largest
    difference, absolute and relative to those rows' largest output, and whether it is within
    TOLERANCE. A sequence output is compared over the row's own tokens."""
    worst, scale = 0.0, 0.0
    for row, outputs in sorted(together.items()):
        alone = session.run(features, rows=np.array([row]), progress=False)
        for name, value in outputs.items():
            mine = alone[name][row]
            if name in session.sequence:
                length = int(features.lengths[row])
                mine, value = mine[:length], value[:length]
            gap = np.abs(mine.astype(np.float64) - value.astype(np.float64))
            worst = max(worst, float(gap.max()) if gap.size and np.isfinite(gap).all() else float("inf"))
            scale = max(scale, float(np.abs(value).max()) if value.size else 0.0)
    return judged(len(together), worst, scale)


def judged(rows: int, worst: float, scale: float) -> dict[str, Any]:
    """The record of a check: the largest difference over `rows`, relative to `scale`."""
    relative = worst / scale if scale > 0 else worst
    return {"rows": rows, "max_abs_diff": worst if np.isfinite(worst) else None, "scale": scale,
            "relative": relative if np.isfinite(relative) else None,
            "within": bool(np.isfinite(relative) and relative <= TOLERANCE), "tolerance": TOLERANCE}


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One record of checks made in parts."""
    worst = max(float("inf") if p["max_abs_diff"] is None else p["max_abs_diff"] for p in parts)
    return judged(sum(p["rows"] for p in parts), worst, max(p["scale"] for p in parts))
