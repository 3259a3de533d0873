"""`encoderzoo serve`: the command's options and checks; the server itself is encoderzoo.server
(here) or encoderzoo.serve_ray (--engine ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from encoderzoo.api import load
from encoderzoo.errors import ConfigError
from encoderzoo.serve_ray import serve_on_ray
from encoderzoo.server import ServeOptions
from encoderzoo.server import serve as run_server

DEFAULT = ServeOptions()


def serve(
    run_folder: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder `encoderzoo run` made.")],
    variant: Annotated[str | None, typer.Option("--variant", help=escape(
        "BACKEND:PRECISION, e.g. openvino:int8 [default: the variant the report names to deploy]."))] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    max_wait_ms: Annotated[float, typer.Option(
        "--max-wait-ms", help="How long a batch waits for more inputs when the queue runs dry, after a "
                              "batch of several requests (a lone client's request never waits).")
    ] = DEFAULT.max_wait_ms,
    max_batch_tokens: Annotated[int, typer.Option(
        "--max-batch-tokens", help="Tokens one inference batch takes at most.")] = DEFAULT.max_batch_tokens,
    max_queue: Annotated[int, typer.Option(
        "--max-queue", help="Inputs waiting at most; beyond, 503 with Retry-After.")] = DEFAULT.max_queue,
    max_inputs: Annotated[int, typer.Option(
        "--max-inputs", help="Inputs per request at most.")] = DEFAULT.max_inputs,
    warm_seconds: Annotated[float, typer.Option(
        "--warm-seconds", help="Seconds at start running the batch shapes the server will meet, before "
                               "/health answers (0: none).")] = DEFAULT.warm_seconds,
    threads: Annotated[int | None, typer.Option("--threads", help=escape(
        "Intra-op threads [default: the run's].")), ] = None,
    allow_failed: Annotated[bool, typer.Option(
        "--allow-failed", help="Serve a variant whose gate failed.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local: this process; ray: a Ray Serve "
                                                         "deployment of --replicas replicas.")] = "local",
    replicas: Annotated[int, typer.Option("--replicas", help="With --engine ray: replicas.")] = 2,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="With --engine ray: the cluster [default: a local one].")] = None,
) -> None:
    """Serve the variant a run verified over HTTP: POST /v1/predict, /v1/embeddings (OpenAI's
    format), GET /health, /metrics, /v1/model; concurrent requests batched together."""
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine is local or ray, not {engine!r}")
    numbers = {"--port": port, "--max-batch-tokens": max_batch_tokens, "--max-queue": max_queue,
               "--max-inputs": max_inputs, "--replicas": replicas, "--threads": threads or 1}
    bad = next((f"{k} {v}" for k, v in numbers.items() if v < 1), None)
    if bad:
        raise ConfigError(f"{bad}: must be positive")
    for name, value in (("--max-wait-ms", max_wait_ms), ("--warm-seconds", warm_seconds)):
        if value < 0:
            raise ConfigError(f"{name} {value}: must be 0 or more")
    options = ServeOptions(max_wait_ms=max_wait_ms, max_batch_tokens=max_batch_tokens, max_queue=max_queue,
                           max_inputs=max_inputs, warm_seconds=warm_seconds)
    if engine == "ray":
        serve_on_ray(run_folder, variant=variant, allow_failed=allow_failed, threads=threads, options=options,
                     host=host, port=port, replicas=replicas, address=ray_address)
        return
    run_server(load(run_folder, variant=variant, allow_failed=allow_failed, threads=threads), host=host,
               port=port, options=options)
