"""Sentence embeddings (feature extraction): each sentence of an STS-B-layout pair embedded on
its own by the checkpoint's pooling (see encoderzoo.sentence_embedding), the pair's prediction
the cosine similarity of its two embeddings, scored by the Spearman (and Pearson) correlation
with the gold scores as scipy computes them. Two runs agree on a sentence when its embeddings'
cosine similarity is at least `min_cosine`; the mean and least cosine are reported too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo.errors import DataError
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_path
from encoderzoo.tasks.base import Score, split_key, splits_of, texts_of
from encoderzoo.tasks.classification import ClassificationExample
from encoderzoo.tasks.regression import REGRESSION_METRICS, Regression
from encoderzoo.tasks.tokenize import encode_fixed


@dataclass(frozen=True)
class Embedded:
    """A pair's cosine similarity, with the two embeddings (absent when read from a file)."""

    similarity: float
    embeddings: Any = field(default=None, compare=False, repr=False)  # (2, hidden) float32


@dataclass(frozen=True)
class SentenceEmbedding(Regression):
    model_kind: str = "sentence-embedding"
    auto_class: str = "AutoModelForSentenceEmbedding"  # encoderzoo's: encoder + pooling in one graph
    output_axes: dict[str, dict[int, str]] = field(
        default_factory=lambda: {"sentence_embedding": {0: "batch"}})
    metric_names: tuple[str, ...] = ("spearman",)  # of cosine similarity with the gold scores: gated
    # a sentence's embedding agrees with the reference's at this cosine or above (ONNX Runtime's
    # dynamic int8 of all-MiniLM-L6-v2: mean 0.993, least 0.987 on STS-B-layout pairs)
    min_cosine: float = 0.98
    agreement_floor: float = 0.99

    def for_model(self, config: Any, source: str, label_names: tuple[str, ...] | None = None
                  ) -> SentenceEmbedding:
        return self  # any encoder embeds; its head (if any) is not used

    def scoring_options(self) -> dict[str, Any]:
        """What the scores depend on besides the model outputs (shown beside them)."""
        return {"agreement": f"share of sentences whose embedding has cosine ≥ {self.min_cosine:g} with the "
                             "compared run's"}

    def head_config(self) -> dict[str, Any]:
        return {}

    @property
    def inputs_layout(self) -> str:
        return "a text"

    def examples_from(self, inputs: Sequence[Any]) -> list[ClassificationExample]:
        """One example, and one row, per text."""
        return [ClassificationExample(id=str(i), line=i, texts=texts_of(value, 1, i, self.inputs_layout),
                                      label="", split="input") for i, value in enumerate(inputs)]

    def present(self, inputs: Sequence[Any], examples: list[ClassificationExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Any]:
        """The embedding of each text (float32, the checkpoint's pooling and normalization)."""
        return list(outputs["sentence_embedding"].astype(np.float32))

    def output_shapes(self, config: Any, seq_len: int) -> dict[str, tuple[int, ...]]:
        return {"sentence_embedding": (int(config.hidden_size),)}

    def encode(self, examples: list[ClassificationExample], tokenizer: Any, *, seq_len: int,
               input_names: tuple[str, ...]) -> Features:
        """Two rows per pair (its first sentence, then its second), each encoded alone; one row
        per example of a single text (what a served model reads)."""
        texts = [text for e in examples for text in e.texts[:2]]
        arrays = encode_fixed(tokenizer, [texts], seq_len)
        arrays = {name: arrays[name] if name in arrays else np.zeros_like(arrays["attention_mask"])
                  for name in input_names}
        owners = np.repeat(np.arange(len(examples)), [len(e.texts[:2]) for e in examples])
        return Features(example_ids=np.array([examples[i].id for i in owners], dtype=str), arrays=arrays,
                        lengths=arrays["attention_mask"].sum(axis=1).astype(np.int32),
                        extras={"example_index": owners})

    def predict(self, examples: list[ClassificationExample], features: Features,
                outputs: dict[str, np.ndarray]) -> list[Embedded]:
        vectors = outputs["sentence_embedding"].astype(np.float32).reshape(len(examples), 2, -1)
        return [Embedded(float(_cosine(pair[0], pair[1])), pair) for pair in vectors]

    def agreement(self, found: list[Any], reference: list[Any]) -> float:
        cosines = self.cosines(found, reference)
        return float(np.mean(cosines >= self.min_cosine - 1e-9)) if cosines.size else 1.0

    def similarity(self, found: list[Any], reference: list[Any]) -> dict[str, float]:
        """The mean and least cosine between each sentence's embedding and the reference's."""
        cosines = self.cosines(found, reference)
        if not cosines.size:
            return {}
        return {"cosine_mean": float(cosines.mean()), "cosine_min": float(cosines.min())}

    @staticmethod
    def cosines(found: list[Any], reference: list[Any]) -> np.ndarray:
        if not found or found[0].embeddings is None or reference[0].embeddings is None:
            return np.zeros(0)
        a = np.stack([f.embeddings for f in found]).reshape(-1, found[0].embeddings.shape[-1])
        b = np.stack([r.embeddings for r in reference]).reshape(a.shape)
        return np.asarray(_cosine(a, b))

    def score(self, examples: list[ClassificationExample], predictions: list[Any]) -> Score:
        missing = sum(1 for p in predictions if p is None)
        if missing:
            raise DataError(f"no prediction for {missing} of {len(examples)} pairs; predict every one")
        splits = splits_of(examples)
        metrics, breakdown = {}, {}
        for split in splits:
            rows = [i for i, e in enumerate(examples) if e.split == split]
            gold = np.array([float(examples[i].label) for i in rows])
            found = np.array([float(predictions[i].similarity) for i in rows])
            metrics[split_key(split, "spearman", splits)] = REGRESSION_METRICS["spearman"](gold, found)
            breakdown[f"{split} pearson" if len(splits) > 1 else "pearson"] = {
                "pearson": REGRESSION_METRICS["pearson"](gold, found), "examples": float(len(rows))}
        return Score(metrics, breakdown)

    def write_predictions(self, examples: list[ClassificationExample], predictions: list[Any],
                          outputs: dict[str, np.ndarray], path: Path) -> None:
        """The cosine of each pair as a TSV (as a regression's), and the embeddings beside it
        (…embeddings.npz: ids, and (pairs, 2, hidden) float32)."""
        super().write_predictions(examples, [p.similarity for p in predictions], outputs, path)
        vectors = np.stack([p.embeddings for p in predictions]) if predictions else np.zeros((0, 2, 0))
        with atomic_path(path.with_name(path.stem + ".embeddings.npz")) as tmp, tmp.open("wb") as f:
            np.savez(f, example_ids=np.array([e.id for e in examples], dtype=str), embeddings=vectors)

    def read_predictions(self, path: Path, examples: list[ClassificationExample]) -> list[Any]:
        return [None if v is None else Embedded(v) for v in super().read_predictions(path, examples)]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return np.asarray((a64 * b64).sum(axis=-1) / np.maximum(norms, 1e-12))
