"""`encoderzoo serve RUN --engine ray --replicas N`: the same server (encoderzoo.server's app over
encoderzoo.load's Model, batcher included) as a Ray Serve deployment of N replicas, each loading
the variant once; Ray Serve's proxy spreads the requests over them."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

from encoderzoo.api import load
from encoderzoo.console import step
from encoderzoo.ray_engine import connect
from encoderzoo.server import ServeOptions, create_app


def build_app(run: str, variant: str | None, allow_failed: bool, threads: int | None,
              options: ServeOptions) -> Any:
    """What each replica runs: the run's variant, loaded once, behind the server's app."""
    return create_app(load(run, variant=variant, allow_failed=allow_failed, threads=threads), options)


def deploy(run: Path, *, variant: str | None, allow_failed: bool, threads: int | None, options: ServeOptions,
           host: str, port: int, replicas: int, address: str | None = None) -> Any:
    """Start Ray Serve (a local cluster unless `address`) with the deployment; returns Ray Serve."""
    per_replica = threads or 1
    connect(address, num_cpus=max(replicas * per_replica, replicas))
    from ray import serve  # deferred: Ray Serve, imported only with --engine ray

    serve.start(http_options={"host": host, "port": port})
    ingress = serve.ingress(lambda: build_app(str(run), variant, allow_failed, per_replica, options))
    deployment = serve.deployment(ingress(), name="encoderzoo", num_replicas=replicas,
                                  ray_actor_options={"num_cpus": per_replica}, graceful_shutdown_timeout_s=30)
    serve.run(deployment.bind(), name="encoderzoo", route_prefix="/")
    return serve


def serve_on_ray(run: Path, **settings: Any) -> None:
    """Serve until SIGTERM or Ctrl-C, then shut the deployment down (in-flight requests finish)."""
    serve = deploy(run, **settings)
    step(f"serve: {run} on Ray Serve, {settings['replicas']} replicas, http://{settings['host']}:"
         f"{settings['port']} (POST /v1/predict)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    serve.shutdown()
