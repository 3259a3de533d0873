"""The server's batcher on a stand-in model: a lone client's request runs at once (it never
waits --max-wait-ms for inputs that cannot come); after a batch that held several requests, the
next waits for more and takes them together; answers come back in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from encoderzoo.server import Batcher, Metrics, ServeOptions


class Doubler:
    """Answers each input doubled after `seconds`, recording the batches it was given."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.seconds = seconds

    def answer(self, inputs: Sequence[int]) -> tuple[list[int], list[int], list[bool]]:
        self.batches.append(list(inputs))
        time.sleep(self.seconds)
        return [2 * x for x in inputs], [1] * len(inputs), [False] * len(inputs)


async def serving(model: Doubler, wait_ms: float, body: Any) -> Any:
    batcher = Batcher(model, ServeOptions(max_wait_ms=wait_ms), Metrics())  # type: ignore[arg-type]
    task = asyncio.create_task(batcher.run())
    try:
        return await body(batcher)
    finally:
        task.cancel()
        batcher.pool.shutdown(wait=True)


def test_a_lone_request_runs_at_once() -> None:
    model = Doubler()

    async def lone(batcher: Batcher) -> list[float]:
        took = []
        for values in ([1, 2], [3], [4, 5, 6]):  # one client, one request at a time
            start = time.perf_counter()
            answers = await batcher.submit(values, [2] * len(values))
            assert [a for a, _, _ in answers] == [2 * v for v in values]
            took.append(time.perf_counter() - start)
        return took

    took = asyncio.run(serving(model, 500.0, lone))  # a wait of half a second, never spent
    assert max(took) < 0.25 and model.batches == [[1, 2], [3], [4, 5, 6]]


def test_after_a_batch_of_several_requests_the_next_waits_for_more() -> None:
    model = Doubler(seconds=0.05)
    arrivals = (0.0, 0.01, 0.02, 0.2, 0.25)  # 2 and 3 queue behind 1; 5 comes within 4's wait

    async def clients(batcher: Batcher) -> list[Any]:
        async def client(i: int) -> Any:
            await asyncio.sleep(arrivals[i])
            return await batcher.submit([10 * i, 10 * i + 1], [2, 2])

        return list(await asyncio.gather(*(client(i) for i in range(len(arrivals)))))

    replies = asyncio.run(serving(model, 150.0, clients))
    assert [[a for a, _, _ in r] for r in replies] == [[20 * i, 20 * i + 2] for i in range(len(arrivals))]
    assert model.batches == [[0, 1], [10, 11, 20, 21], [30, 31, 40, 41]]


class Embedder:
    """An embedding stand-in: each text's vector is float32 (the text "nan" gives a NaN)."""

    name, variant, seq_len = "stand-in", "onnxruntime:fp32", 128
    task = type("Task", (), {"model_kind": "sentence-embedding", "inputs_layout": "text"})()

    def serving(self) -> Embedder:
        return self

    def warm(self, seconds: float) -> tuple[int, float]:
        return 0, 0.0

    def check(self, inputs: Sequence[str]) -> list[int]:
        return [2] * len(inputs)

    def answer(self, inputs: Sequence[str]) -> tuple[list[Any], list[int], list[bool]]:
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(inputs), 6)).astype(np.float32)
        vectors[[i for i, text in enumerate(inputs) if text == "nan"], 0] = np.nan
        return list(vectors[:, ::2]), [3] * len(inputs), [False] * len(inputs)  # strided rows too


def test_vectors_go_out_exactly_and_a_non_finite_answer_is_a_500() -> None:
    from starlette.testclient import TestClient

    from encoderzoo.server import create_app

    expected = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)[:, ::2]
    with TestClient(create_app(Embedder())) as client:  # type: ignore[arg-type]
        reply = client.post("/v1/embeddings", json={"input": ["a", "b", "c"]})
        vectors = np.array([d["embedding"] for d in reply.json()["data"]], dtype=np.float32)
        assert reply.status_code == 200 and np.array_equal(vectors, expected)  # float32 round-trips
        assert reply.json()["usage"] == {"prompt_tokens": 9, "total_tokens": 9}
        broken = client.post("/v1/predict", json={"inputs": ["a", "nan"]})
        assert broken.status_code == 500 and "not finite" in broken.json()["error"]
        assert client.post("/v1/predict", json={"inputs": ["a"]}).status_code == 200  # still serving
