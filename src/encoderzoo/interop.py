"""The per-sample file layouts of the reference tools (Ascend's ais_bench and msame).

`write_bin` writes one raw file per sample and model input, `INPUT/<i>.bin`, padded to the
prepared sequence length (the static shapes those runtimes compile), so that a device runner
reads them; `read_outputs` reads what the runner wrote back — ais_bench `<i>_<k>.bin` or `.npy`,
msame `<i>_output_<k>.bin` — into arrays aligned with the prepared feature rows, for scoring."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_dir, write_json

LAYOUTS = {  # file name pattern of output k of sample <name>
    "msame": re.compile(r"^(?P<name>\d+)_output_(?P<k>\d+)\.bin$"),
    "ais_bench": re.compile(r"^(?P<name>\d+)_(?P<k>\d+)\.(?:bin|npy)$"),
}
INPUT_DTYPES = ("int64", "int32")


def write_bin(features: Features, folder: Path, dtype: str = "int64",
              labels: list[str] | None = None, *, prepare_key: str | None = None,
              overwrite: bool = False) -> dict[str, Any]:
    """One file per sample and input (C order, no header), the gold label of each sample's
    example (labels.txt, one per line in sample order), an index and a summary; the whole folder
    appears at once."""
    if dtype not in INPUT_DTYPES:
        raise ConfigError(f"--bin-dtype is {' or '.join(INPUT_DTYPES)}, not {dtype!r}")
    info = {"samples": len(features), "inputs": list(features.input_names), "dtype": dtype,
            "seq_len": features.seq_len, "shape": [1, *features.row_shape, features.seq_len],
            "files": "INPUT/<sample>.bin",
            "index": "index.tsv: sample, example id, tokens before padding, gold label",
            "labels": "labels.txt: the gold label of each sample, one per line" if labels else None}
    if labels is not None and len(labels) != len(features):
        raise ValueError(f"{len(labels)} labels for {len(features)} samples")
    gold = [" ".join(str(label).split()) for label in labels] if labels else [""] * len(features)
    info["prepare_key"] = prepare_key  # score --outputs refuses outputs of other samples
    with atomic_dir(folder, "bin-samples", overwrite=overwrite, option="the bin folder") as tmp:
        for name, array in features.arrays.items():
            (tmp / name).mkdir()
            rows = array.astype(dtype)
            for i in range(len(features)):
                rows[i].tofile(tmp / name / f"{i}.bin")
        rows = zip(features.example_ids, features.lengths, gold, strict=True)
        lines = ["sample\texample_id\ttokens\tlabel"] + [
            f"{i}\t{eid}\t{int(n)}\t{label}" for i, (eid, n, label) in enumerate(rows)]
        (tmp / "index.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if labels:
            (tmp / "labels.txt").write_text("\n".join(gold) + "\n", encoding="utf-8")
        write_json(tmp / "bin.json", info)
    return info


def detect_layout(folder: Path) -> str:
    names = [p.name for p in folder.rglob("*") if p.is_file()]
    for layout, pattern in LAYOUTS.items():  # msame first: its names also look like ais_bench's
        if any(pattern.match(n) for n in names):
            return layout
    raise ArtifactError(f"{folder}: no output files named like ais_bench's <sample>_<k>.bin|.npy or "
                        "msame's <sample>_output_<k>.bin; point --outputs at the runner's output folder")


def read_outputs(folder: Path, samples: int, shapes: dict[str, tuple[int, ...]], *, layout: str = "auto",
                 dtype: str = "float32", not_before: float | None = None) -> dict[str, np.ndarray]:
    """{output name: (samples, *shape)} from a runner's output folder (searched recursively:
    ais_bench writes into a dated subfolder). Output k is the k-th of `shapes`, in the model's
    output order. Raw .bin files are read as `dtype`; .npy files carry their own. Files older than
    `not_before` (when the samples were written) were made for other samples: refused."""
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such output folder")
    if layout == "auto":
        layout = detect_layout(folder)
    if layout not in LAYOUTS:
        raise ConfigError(f"--layout is auto, {' or '.join(LAYOUTS)}, not {layout!r}")
    pattern, names = LAYOUTS[layout], list(shapes)
    found: dict[tuple[int, int], Path] = {}
    for path in folder.rglob("*"):
        match = pattern.match(path.name)
        if match and path.is_file():
            key = (int(match["name"]), int(match["k"]))
            if key in found:
                raise ArtifactError(f"{folder}: two files for sample {key[0]} output {key[1]} ("
                                    f"{found[key].relative_to(folder)}, {path.relative_to(folder)}); "
                                    "keep one run's outputs")
            found[key] = path
            if not_before is not None and path.stat().st_mtime < not_before:
                raise ArtifactError(f"{path}: older than the samples of `prepare --format bin` it should "
                                    "answer; were the outputs made for earlier samples? Run the device "
                                    "runner again on the current samples")
    extra = sorted({s for s, k in found if s >= samples or k >= len(names)})
    if extra:
        raise ArtifactError(f"{folder}: outputs for sample {extra[0]} or output index beyond the "
                            f"{samples} prepared samples x {len(names)} outputs; were they made from "
                            "another `prepare --format bin`?")
    outputs = {name: np.empty((samples, *shape), dtype=np.float32) for name, shape in shapes.items()}
    for i in range(samples):
        for k, name in enumerate(names):
            path = found.get((i, k))
            if path is None:
                example = "{i}_output_{k}.bin" if layout == "msame" else "{i}_{k}.bin"
                raise ArtifactError(f"{folder}: no output {k} ({name}) for sample {i} (expected "
                                    f"{example.format(i=i, k=k)}); did the runner stop early?")
            outputs[name][i] = _read_one(path, shapes[name], dtype)
    return outputs


def _read_one(path: Path, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    want = int(np.prod(shape))
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ArtifactError(f"{path}: not a readable .npy file ({err})") from None
    else:
        array = np.fromfile(path, dtype=np.dtype(dtype))
        if array.size != want:
            size = path.stat().st_size
            raise ArtifactError(
                f"{path}: {size} bytes, expected {want} {dtype} values ({want * np.dtype(dtype).itemsize} "
                f"bytes) of shape {list(shape)}; pass --output-dtype if the model outputs another type")
    if array.size != want:
        raise ArtifactError(f"{path}: shape {list(array.shape)}, expected {list(shape)} (batch 1)")
    return array.reshape(shape).astype(np.float32)
