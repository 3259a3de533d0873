"""`--engine ray`: offline inference spread over a Ray cluster with Ray Data.

The driver plans the batches as the local engine does (Features.plan: batch size or token
budget, length order, buckets) and each planned batch, already padded, becomes one item of a Ray
dataset; `map_batches` runs them through a pool of actors, each of which builds the backend once
(one model load per actor) and returns one output row per input row; the driver streams the
results into the same output shards as the local engine, so `--resume` and the scorer work
unchanged. Without `--ray-address` (or RAY_ADDRESS) a local cluster is started on this machine.

Every node must see the run folder and the checkpoint at the same paths (a shared filesystem)
and have encoderzoo installed."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from encoderzoo.backends.base import BackendContext
from encoderzoo.errors import ConfigError
from encoderzoo.features import Batching, Features
from encoderzoo.session import open_session


@dataclass(frozen=True)
class ActorSpec:
    """What an actor needs (plain values: it travels to other machines): the backend, and the
    same BackendContext, batching and output layout the local engine's session is built from."""

    backend: str
    precision: str
    context: BackendContext
    batching: Batching = field(default_factory=Batching)
    seq_len: int = 128
    output_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    static_batch: int | None = None

    @property
    def threads(self) -> int:
        return self.context.threads


class Predictor:
    """A Ray Data actor: opens the session once, then runs batches of prepared rows."""

    def __init__(self, spec: ActorSpec) -> None:
        self.session = open_session(spec.backend, spec.precision, spec.context, spec.batching,
                                    spec.output_axes, spec.static_batch)
        self.spec = spec
        # what this actor really runs with (providers after any fallback), sent back with its rows
        self.settings = json.dumps({"node": socket.gethostname(), **self.session.settings()}, sort_keys=True,
                                   default=str)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One planned batch (a dataset item holding the rows' ids and their padded inputs)."""
        rows = np.asarray(batch["rows"][0], dtype=np.int64)
        feeds = {name: np.ascontiguousarray(batch[f"input.{name}"][0], dtype=np.int64)
                 for name in self.spec.context.input_names}
        outputs = self.session.run_batch(feeds, self.spec.seq_len)
        return {"row": rows, "settings": np.full(len(rows), self.settings),
                **{f"output.{name}": array for name, array in outputs.items()}}


def connect(address: str | None, *, num_cpus: int) -> Any:
    """ray.init once per process: to `address` (or RAY_ADDRESS), else a local cluster with
    `num_cpus` CPUs."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'encoderzoo[ray]' "
                          "(or 'ray[data]')") from None
    if not ray.is_initialized():
        import os

        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "configure_logging": False}
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    return ray


def run_ray(spec: ActorSpec, features: Features, rows: np.ndarray, *, actors: int,
            address: str | None, on_batch: Callable[[np.ndarray, dict[str, np.ndarray]], None],
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run `rows` of `features` through `actors` actors; results go to `on_batch` as they come
    back. Returns what the run record keeps of the engine."""
    ray = connect(address, num_cpus=max(actors * spec.threads, actors))
    plan = features.plan(spec.batching, np.asarray(rows, dtype=np.int64)) if len(rows) else []
    items = [{"rows": batch, **{f"input.{name}": features.arrays[name][batch, ..., :width]
                                for name in spec.context.input_names}}
             for batch, width in plan]
    if not items:
        return {"engine": "ray", "actors": actors}
    dataset = ray.data.from_items(items)
    gpus = 1 if spec.context.device == "cuda" else 0
    results = dataset.map_batches(
        Predictor, fn_constructor_kwargs={"spec": spec}, batch_size=1,
        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=spec.threads,
        num_gpus=gpus)
    seen: set[str] = set()
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        outputs = {k.removeprefix("output."): v for k, v in batch.items() if k.startswith("output.")}
        on_batch(batch["row"], outputs)
        seen.update(str(s) for s in np.unique(batch["settings"]))
        if progress is not None:
            progress(len(batch["row"]))
    resources = ray.cluster_resources()
    settings = [json.loads(s) for s in sorted(seen)]
    return {"engine": "ray", "actors": actors, "threads_per_actor": spec.threads,
            "cluster": {k: resources[k] for k in ("CPU", "GPU") if k in resources},
            "backend": {k: v for k, v in settings[0].items() if k != "node"} if settings else {},
            "nodes": sorted({s["node"] for s in settings})}
