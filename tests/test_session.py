"""One session, the path every caller runs (the local engine, the Ray actors, the benchmark, a
served model): a task's encode → session run → decode works on raw examples with no run folder,
and gives PyTorch's own predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from encoderzoo.backends import BackendContext
from encoderzoo.features import Batching
from encoderzoo.model_source import SourceSpec, resolve_source
from encoderzoo.recipes import get_recipe
from encoderzoo.session import open_session
from encoderzoo.tasks import get_task
from encoderzoo.tasks.classification import ClassificationExample


def test_encode_run_decode_without_a_run_folder(tiny_bert: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    task = get_task("sst2")
    source = resolve_source(SourceSpec(checkpoint=str(tiny_bert)), get_recipe("sst2"), task)
    bound = task.for_model(source.config, source.location)
    texts = ["a gripping , funny film", "dull", "it 's a charming and often affecting journey ."]
    examples = [ClassificationExample(id=str(i), line=i, texts=(t,), label="0") for i, t in enumerate(texts)]
    tokenizer = source.tokenizer()
    features = bound.encode(examples, tokenizer, seq_len=32, input_names=source.input_names)
    context = BackendContext(checkpoint=source.checkpoint().source, auto_class=bound.auto_class,
                             output_names=bound.output_names, graph=None, threads=1)
    session = open_session("torch", "fp32", context, Batching(batch_size=2), bound.output_axes)
    outputs = session.run(features, progress=False)
    session.close()
    predictions = bound.predict(examples, features, outputs)

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    with torch.inference_mode():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(outputs["logits"], logits, atol=1e-5)
    assert predictions == [("0", "1")[i] for i in logits.argmax(axis=-1)]  # SST-2: 0 negative, 1 positive


class Recorder:
    """A backend that records the rows of each batch it runs and answers each row's first id."""

    name, precision = "stand-in", "fp32"

    def __init__(self, parallel: int = 1) -> None:
        self.shapes: list[tuple[int, int]] = []
        if parallel > 1:
            self.parallel = parallel
            self.run_all = self._run_all

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.shapes.append(feeds["input_ids"].shape)
        return {"logits": feeds["input_ids"][:, :1].astype(np.float32)}

    def _run_all(self, batches, sink) -> None:  # type: ignore[no-untyped-def]
        for rows, feeds in batches:
            sink(rows, self.run(feeds))


def test_a_served_backend_runs_rows_in_steps_and_drops_the_copies() -> None:
    from encoderzoo.session import RowSteps, row_step

    assert [row_step(n) for n in (1, 5, 8, 9, 12, 13, 31, 32, 33)] == [1, 5, 8, 12, 12, 16, 32, 32, 36]
    for parallel in (1, 2):
        inner = Recorder(parallel)
        served = RowSteps(inner)
        ids = np.arange(11 * 4).reshape(11, 4)
        assert served.run({"input_ids": ids})["logits"][:, 0].tolist() == ids[:, 0].tolist()
        seen: list[tuple[list[int], list[float]]] = []
        served.run_all([(np.arange(3), {"input_ids": ids[:3]}), (np.arange(3, 12), {"input_ids": ids[2:]})],
                       lambda r, out, seen=seen: seen.append((r.tolist(), out["logits"][:, 0].tolist())))
        assert seen == [([0, 1, 2], [0, 4, 8]), (list(range(3, 12)), ids[2:, 0].tolist())]
        assert inner.shapes == [(12, 4), (3, 4), (12, 4)]  # 11 and 9 rows ran as 12
        served.warm({"input_ids": ids[:8]})
        assert inner.shapes[3:] == [(8, 4)] * (1 + (parallel > 1) * parallel)  # alone, then each stream
