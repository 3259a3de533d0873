"""--engine ray: the demo through a local Ray cluster (started here, 2 worker CPUs, 2 actors)
gives the local engine's predictions and scores, with its batches planned by a token budget."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.fileio import read_json
from encoderzoo.pipeline import run

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_and_local_engines_agree_on_the_demo(cluster: None, tmp_path: Path) -> None:
    local = RunConfig(recipe="demo", out=tmp_path / "local", backends=("torch:fp32", "onnxruntime:fp32"),
                      limit=160, bench=False, optimize=False, triage=False, shard_size=64)
    # batches filled by a token budget on Ray, by 32 rows locally: the same predictions
    on_ray = replace(local, out=tmp_path / "ray", engine="ray", ray_actors=2, max_tokens=512)
    run(local)
    run(on_ray)
    for name in ("torch-fp32", "onnxruntime-fp32"):
        assert predictions(on_ray.out, name) == predictions(local.out, name)
        record = read_json(on_ray.out / "outputs" / f"{name}.json")
        assert record["settings"]["engine"] == "ray" and record["settings"]["actors"] == 2
        assert record["settings"]["backend"]["threads"] == 1 and len(record["settings"]["nodes"]) == 1
        assert record["batching"]["max_tokens"] == 512
    assert metrics(on_ray.out) == metrics(local.out)


def predictions(out: Path, name: str) -> list[tuple[str, str]]:
    """(id, predicted label) per example: the logits may differ in the last bits, as batches differ."""
    lines = (out / "predictions" / f"{name}.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    at = header.index("id"), header.index("prediction")
    return [(fields[at[0]], fields[at[1]]) for fields in (line.split("\t") for line in lines[1:])]


def metrics(out: Path) -> dict[tuple[str, str], dict[str, float]]:
    return {(r["backend"], r["precision"]): r["metrics"] for r in read_json(out / "accuracy.json")["rows"]}
