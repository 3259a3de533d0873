"""A stand-in for an Ascend device runner: reads the per-sample input files that
`encoderzoo prepare --format bin` wrote, runs an ONNX model one sample at a time with ONNX
Runtime, and writes the outputs the way ais_bench (`<i>_<k>.bin` or `.npy` in a dated
subfolder) or msame (`<i>_output_<k>.bin`) does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_folder(model: Path, bin_dir: Path, out: Path, layout: str = "ais_bench", npy: bool = False) -> Path:
    import onnxruntime as ort

    info = json.loads((bin_dir / "bin.json").read_text())
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    target = out / "2026_11_22-06_00_00" if layout == "ais_bench" else out  # ais_bench: a dated folder
    target.mkdir(parents=True, exist_ok=True)
    for i in range(info["samples"]):
        feeds = {name: np.fromfile(bin_dir / name / f"{i}.bin", dtype=info["dtype"])
                 .reshape(info["shape"]).astype(np.int64) for name in info["inputs"]}
        for k, array in enumerate(session.run(None, feeds)):
            if layout == "msame":
                array.astype(np.float32).tofile(target / f"{i}_output_{k}.bin")
            elif npy:
                np.save(target / f"{i}_{k}.npy", array)
            else:
                array.astype(np.float32).tofile(target / f"{i}_{k}.bin")
    if layout == "ais_bench":
        (target / "sumary.json").write_text(json.dumps({"NPU_compute_time": {}}))  # as ais_bench leaves it
    return out


# -- stand-ins for the tools the Ascend hand-off (ascend/run.sh) calls, as its tests run it:
#    `python tests/standin_runner.py atc|ais_bench|msame ARGS` with the tools' own arguments.
#    They check what the real tools would refuse (input names, order, shapes, dtypes, file sizes)
#    and run the graph with ONNX Runtime on the CPU in place of the NPU.

def _options(args: list[str]) -> dict[str, str]:
    """`--key=value` and `--key value` pairs (atc writes the first, ais_bench and msame either)."""
    found, i = {}, 0
    while i < len(args):
        key = args[i]
        if not key.startswith("--"):
            raise SystemExit(f"unexpected argument {key!r}")
        if "=" in key:
            name, value = key[2:].split("=", 1)
            i += 1
        else:
            name, value = key[2:], args[i + 1]
            i += 2
        found[name] = value
    return found


def _inputs(model: object) -> list[tuple[str, list[object], int]]:
    graph = model.graph  # type: ignore[attr-defined]
    initializers = {i.name for i in graph.initializer}
    return [(v.name, [d.dim_value if d.HasField("dim_value") else d.dim_param
                      for d in v.type.tensor_type.shape.dim],
             v.type.tensor_type.elem_type) for v in graph.input if v.name not in initializers]


def atc(args: list[str]) -> None:
    """ATC in miniature: --framework=5 --model=M.onnx --output=NAME --input_format=ND
    --input_shape="a:1,128;b:1,128" --soc_version=S; writes NAME.om (here: the graph, shapes fixed)."""
    import onnx

    opts = _options(args)
    if opts.get("framework") != "5" or opts.get("input_format") != "ND" or not opts.get("soc_version"):
        raise SystemExit(f"atc: expected --framework=5 --input_format=ND --soc_version=..., got {opts}")
    model = onnx.load(opts["model"])
    if any(n.domain not in ("", "ai.onnx") for n in model.graph.node):
        raise SystemExit("atc: operators outside the ONNX domain")
    given = [part.split(":") for part in opts["input_shape"].split(";")]
    declared = _inputs(model)
    if [name for name, _ in given] != [name for name, _, _ in declared]:
        raise SystemExit(f"atc: --input_shape names {[n for n, _ in given]} != graph inputs {declared}")
    values = [v for v in model.graph.input if v.name in dict(given)]
    for (name, dims), value in zip(given, values, strict=True):
        sizes = [int(d) for d in dims.split(",")]
        graph_dims = value.type.tensor_type.shape.dim
        if len(sizes) != len(graph_dims):
            raise SystemExit(f"atc: {name}: {len(sizes)} dims given, the graph has {len(graph_dims)}")
        for dim, size in zip(graph_dims, sizes, strict=True):
            if dim.HasField("dim_value") and dim.dim_value != size:
                raise SystemExit(f"atc: {name}: dimension {dim.dim_value} given as {size}")
            dim.Clear()
            dim.dim_value = size
    onnx.save(model, opts["output"] + ".om")


def _session(path: str) -> tuple[object, list[tuple[str, list[object], int]]]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]), _inputs(model)


def _run_files(model: str, folders: list[str], target: Path, name_of: str) -> None:
    """Every sample file of the first folder with the same-named files of the others, joined into
    the model's batch (the last batch padded with zeros), outputs split back per file."""
    from onnx import helper

    session, inputs = _session(model)
    if len(folders) != len(inputs):
        raise SystemExit(f"{len(folders)} input folders for a model of {len(inputs)} inputs")
    batch = int(inputs[0][1][0])
    names = sorted(p.name for p in Path(folders[0]).iterdir() if p.suffix == ".bin")
    target.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(names), batch):
        chunk = names[start:start + batch]
        feeds = {}
        for folder, (name, dims, elem) in zip(folders, inputs, strict=True):
            dtype = helper.tensor_dtype_to_np_dtype(elem)
            per_file = int(np.prod(dims[1:]))
            rows = []
            for file in chunk:
                data = np.fromfile(Path(folder) / file, dtype=dtype)
                if data.size * data.itemsize != Path(folder, file).stat().st_size or data.size != per_file:
                    size = Path(folder, file).stat().st_size
                    raise SystemExit(f"{folder}/{file}: {size} bytes, the model's '{name}' takes "
                                     f"{per_file} {dtype} values per sample")
                rows.append(data)
            rows += [np.zeros(per_file, dtype=dtype)] * (batch - len(chunk))
            feeds[name] = np.stack(rows).reshape([batch, *dims[1:]])
        results = session.run(None, feeds)  # type: ignore[attr-defined]
        for i, file in enumerate(chunk):
            for k, array in enumerate(results):
                array[i:i + 1].tofile(target / name_of.format(stem=Path(file).stem, k=k))


def ais_bench(args: list[str]) -> None:
    opts = _options(args)
    if "input" not in opts:  # performance: the tool's own zero inputs
        session, inputs = _session(opts["model"])
        feeds = {n: np.zeros([int(d) for d in dims], dtype=np.int64 if elem == 7 else np.int32)
                 for n, dims, elem in inputs}
        for _ in range(int(opts.get("loop", 1))):
            session.run(None, feeds)  # type: ignore[attr-defined]
        print(f"[INFO] throughput: batch {inputs[0][1][0]}, {opts.get('loop', 1)} loops")
        return
    if opts.get("outfmt", "BIN") != "BIN":
        raise SystemExit("stand-in ais_bench writes BIN only")
    target = Path(opts["output"]) / opts.get("output_dirname", "2026_12_06-00_00_00")
    _run_files(opts["model"], opts["input"].split(","), target, "{stem}_{k}.bin")


def msame(args: list[str]) -> None:
    opts = _options(args)
    _, inputs = _session(opts["model"])
    if int(inputs[0][1][0]) != 1:
        raise SystemExit("msame reads one file per input and inference: a batch-1 model")
    target = Path(opts["output"]) / "20261206_000000"
    _run_files(opts["model"], opts["input"].split(","), target, "{stem}_output_{k}.bin")


if __name__ == "__main__":
    import sys

    {"atc": atc, "ais_bench": ais_bench, "msame": msame}[sys.argv[1]](sys.argv[2:])
