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
