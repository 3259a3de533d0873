"""`encoderzoo serve RUN`: the variant a run verified, over HTTP (Starlette on uvicorn), through
the same Model as `encoderzoo.load` — the run's tokenization, batching and decoding.

Concurrent requests coalesce (`Batcher`): their inputs queue with a rough token count (their
length: nothing is tokenized on the event loop), and one inference thread takes what is queued,
up to a token budget, waiting at most `max_wait_ms` for more when the queue runs dry after a batch
that held several requests (a lone client's request runs at once), then tokenizes, runs and
decodes the batch; a request's inputs may land in several batches and come
back in order. An input the run's --seq-len would cut is a 422 unless "truncate" is asked. Bad
input is a 4xx with a one-line JSON error, a full queue a 503 with Retry-After; the server never
dies on input. On SIGTERM uvicorn stops accepting, in-flight requests finish, then
the batcher stops.

    POST /v1/predict      {"inputs": [...], "truncate": false} -> {"predictions", "variant", "model"}
    POST /v1/embeddings   OpenAI's format ({"input": text or [texts]}) for an embedding run
    GET  /health          200 once the model is loaded
    GET  /metrics         Prometheus text: requests, errors, batch sizes, tokens, queue depth, latency
    GET  /v1/model        the variant, its gate figures, the hashes it was checked with
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from encoderzoo.api import Model
from encoderzoo.console import step
from encoderzoo.errors import EncoderzooError


class FastJSON(JSONResponse):
    """JSON through orjson, numpy arrays written directly as float32's shortest repr: an
    embedding's 384 floats through `json.dumps` of `.tolist()` cost the event loop 18x the time
    (600 vectors: 110 ms against 6, measured) and twice the bytes. A value that is not finite is
    refused (a 500 naming it) instead of going out as orjson's null."""

    def render(self, content: Any) -> bytes:
        if not finite(content):
            raise ValueError("the model answered a value that is not finite (NaN or infinity)")
        return orjson.dumps(content, default=plain, option=orjson.OPT_SERIALIZE_NUMPY)


def plain(value: Any) -> Any:
    """What orjson hands back: an array it does not write itself (strided, bf16) as a list."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def finite(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return not np.issubdtype(value.dtype, np.floating) or bool(np.isfinite(value).all())
    if isinstance(value, float | np.floating):
        return bool(np.isfinite(value))
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(finite(v) for v in value)
    return True


@dataclass(frozen=True)
class ServeOptions:
    # how long a batch waits for more inputs when the queue runs dry, after a batch that held
    # several requests (a lone client's request never waits; see README for what was measured)
    max_wait_ms: float = 2.0
    max_batch_tokens: int = 8192  # tokens per batch the inference thread takes at most
    max_queue: int = 4096  # inputs waiting at most; beyond, 503 with Retry-After
    max_inputs: int = 256  # inputs per request at most
    # seconds at start running the batch shapes the server will meet, before /health answers
    # (encoderzoo.api.Model.warm; on 2 cores the demo's 98 shapes took 4 s, all-MiniLM-L6-v2's 112, 7.5)
    warm_seconds: float = 10.0


class Refused(Exception):
    """A request answered with a 4xx/5xx and a one-line JSON error."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("encoderzoo_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("encoderzoo_request_seconds", "Request latency", ["endpoint"],
                                 buckets=(.002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10),
                                 registry=self.registry)
        self.batch_inputs = Histogram("encoderzoo_batch_inputs", "Inputs per inference batch",
                                      buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=self.registry)
        self.tokens = Counter("encoderzoo_tokens", "Tokens run through the model", registry=self.registry)
        self.queue = Gauge("encoderzoo_queue_depth", "Inputs waiting for the inference thread",
                           registry=self.registry)


@dataclass
class Item:
    value: Any
    tokens: int
    future: asyncio.Future[Any]
    request: int  # which request it came in (inputs of one request share it)


@dataclass
class Batcher:
    model: Model
    options: ServeOptions
    metrics: Metrics
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "encoderzoo-infer"))
    _requests: int = 0  # requests submitted so far (each input carries its request's number)
    _last_batch_requests: int = 0  # requests the batch before held inputs of

    async def submit(self, values: list[Any], tokens: list[int]) -> list[Any]:
        if self.queue.qsize() + len(values) > self.options.max_queue:
            raise Refused(503, f"the queue holds {self.queue.qsize()} inputs; retry shortly",
                          {"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        self._requests += 1
        items = [Item(v, n, loop.create_future(), self._requests)
                 for v, n in zip(values, tokens, strict=True)]
        for item in items:
            self.queue.put_nowait(item)
        self.metrics.queue.set(self.queue.qsize())
        return list(await asyncio.gather(*(item.future for item in items)))

    def more_may_come(self) -> bool:
        """Whether waiting for more inputs when the queue runs dry may bring some soon: when the
        batch before held several requests' inputs (clients answered together send again
        together). A lone client's request runs at once: nothing else can come."""
        return self._last_batch_requests > 1

    async def run(self) -> None:
        """Forever: the next batch, by token budget and wait, through the inference thread."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            tokens, deadline = batch[0].tokens, loop.time() + self.options.max_wait_ms / 1000
            while tokens < self.options.max_batch_tokens:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0 or not self.more_may_come():
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), left)
                    except TimeoutError:
                        break
                batch.append(item)
                tokens += item.tokens
            self._last_batch_requests = len({item.request for item in batch})
            self.metrics.queue.set(self.queue.qsize())
            self.metrics.batch_inputs.observe(len(batch))
            try:
                answers, counts, full = await loop.run_in_executor(self.pool, self.model.answer,
                                                                   [i.value for i in batch])
            except Exception as err:  # the whole batch fails; the server goes on
                for item in batch:
                    item.future.set_exception(err)
                continue
            self.metrics.tokens.inc(sum(counts))
            for item, *result in zip(batch, answers, counts, full, strict=True):
                item.future.set_result(tuple(result))


def create_app(model: Model, options: ServeOptions = ServeOptions()) -> Starlette:
    model = model.serving()  # widths in steps (see encoderzoo.api.SERVED_WIDTHS)
    metrics = Metrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher = Batcher(model, options, metrics)
        if options.warm_seconds > 0:
            shapes, took = await asyncio.get_running_loop().run_in_executor(
                batcher.pool, model.warm, options.warm_seconds)
            step(f"serve: ran {shapes} batch shapes in {took:.1f} s, before the first request")
        task = asyncio.create_task(batcher.run())
        state["batcher"] = batcher
        try:
            yield
        finally:  # uvicorn has let in-flight requests finish
            task.cancel()
            batcher.pool.shutdown(wait=True)

    async def inputs_of(request: Request, key: str) -> tuple[list[Any], dict[str, Any]]:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise Refused(400, "the body is not JSON; send {\"inputs\": [...]}") from None
        if not isinstance(body, dict) or key not in body:
            raise Refused(400, f"expected a JSON object with {key!r}")
        values = body[key]
        values = [values] if key == "input" and isinstance(values, str) else values
        if not isinstance(values, list) or not values:
            raise Refused(400, f"{key!r} must be a non-empty list (one {model.task.inputs_layout} each)")
        if len(values) > options.max_inputs:
            raise Refused(413, f"{len(values)} inputs in one request; send at most {options.max_inputs}")
        return values, body

    async def run(values: list[Any], truncate: bool) -> tuple[list[Any], int]:
        estimates = model.check(values)  # every input readable (InputError: 400), nothing tokenized here
        results = await state["batcher"].submit(values, estimates)
        over = [i for i, (_, _, full) in enumerate(results) if full]
        if over and not truncate:
            raise Refused(422, f"inputs[{over[0]}] reaches the model's {model.seq_len} tokens (the run's "
                               "--seq-len) and would be cut; shorten it or send \"truncate\": true")
        return [answer for answer, _, _ in results], sum(count for _, count, _ in results)

    def endpoint(name: str, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def wrapped(request: Request) -> Response:
            start = time.perf_counter()
            try:
                response = FastJSON(await handler(request))
            except Refused as err:
                response = JSONResponse({"error": str(err)}, err.status, headers=err.headers)
            except EncoderzooError as err:
                response = JSONResponse({"error": " ".join(str(err).split())}, 400)
            except Exception as err:  # a bug, not the input: still one line, and the server goes on
                response = JSONResponse({"error": f"internal error ({type(err).__name__}: {err})"}, 500)
            metrics.requests.labels(name, str(response.status_code)).inc()
            metrics.latency.labels(name).observe(time.perf_counter() - start)
            return response

        return wrapped

    async def predict(request: Request) -> dict[str, Any]:
        values, body = await inputs_of(request, "inputs")
        found, _ = await run(values, bool(body.get("truncate", False)))
        return {"predictions": found, "variant": model.variant, "model": model.name}

    async def embeddings(request: Request) -> dict[str, Any]:
        if model.task.model_kind != "sentence-embedding":
            raise Refused(404, f"{model.name} is a {model.task.model_kind} model; use /v1/predict")
        values, body = await inputs_of(request, "input")
        found, tokens = await run(values, bool(body.get("truncate", False)))
        return {"object": "list", "model": model.name,
                "data": [{"object": "embedding", "index": i, "embedding": v}
                         for i, v in enumerate(found)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def health(request: Request) -> dict[str, Any]:
        return {"status": "ok", "variant": model.variant, "pid": os.getpid()}  # which replica answered

    async def info(request: Request) -> dict[str, Any]:
        return model.info()

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/v1/predict", endpoint("predict", predict), methods=["POST"]),
              Route("/v1/embeddings", endpoint("embeddings", embeddings), methods=["POST"]),
              Route("/health", endpoint("health", health), methods=["GET"]),
              Route("/v1/model", endpoint("model", info), methods=["GET"]),
              Route("/metrics", prometheus, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(model: Model, *, host: str = "127.0.0.1", port: int = 8000,
          options: ServeOptions = ServeOptions()) -> None:
    """Serve `model` until SIGTERM or Ctrl-C (in-flight requests finish first)."""
    config = uvicorn.Config(create_app(model, options), host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=30, lifespan="on")
    step(f"serve: {model.name} as {model.variant} on http://{host}:{port} (POST /v1/predict)")
    # uvicorn shuts down gracefully on SIGTERM, then raises it again for the handler in place
    # before it: a stop that finished its work exits 0
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(config).run()
    step("serve: stopped (every accepted request answered)")
