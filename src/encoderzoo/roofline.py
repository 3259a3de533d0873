"""How much arithmetic a pass of an encoder is, counted from its config, and how close a measured
time comes to the machine's ceiling for that precision (see encoderzoo.ceiling).

FLOPs are the useful work over the real tokens: padding is not counted, so a configuration that
pads a lot shows a lower rate than one that does not. A multiply-add counts as two operations,
the same for int8 as for floats."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from encoderzoo.precision import ceiling_kind


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    ffn: int  # intermediate size of the feed-forward block
    embedding: int  # input embedding width (ALBERT projects it up to `hidden`)
    glu: bool = False  # gated feed-forward (ModernBERT): the input projection is twice as wide
    first_token: bool = False  # the last layer computed for the first token only (encoderzoo.first_token)

    @classmethod
    def of(cls, config: Any) -> EncoderShape | None:
        """The shape of a transformers config; None when it is not a plain encoder stack."""
        try:
            layers = int(config.num_hidden_layers)
            hidden = int(config.hidden_size)
            ffn = int(config.intermediate_size)
        except (AttributeError, TypeError, ValueError):
            return None
        embedding = int(getattr(config, "embedding_size", hidden) or hidden)
        glu = getattr(config, "model_type", "") == "modernbert"
        return cls(layers=layers, hidden=hidden, ffn=ffn, embedding=embedding, glu=glu)

    def flops_per_sequence(self, length: int) -> float:
        """Multiply-adds x 2 of one sequence of `length` tokens through the encoder stack:
        Q, K, V and output projections (4 n h^2), the feed-forward block (2 n h f, or 3 n h f
        gated), the attention scores and their weighted sum (2 n^2 h), and ALBERT's embedding
        projection (n e h). A first-token last layer does its keys and values for all n tokens
        but its query, output projection, feed-forward and attention for one. The task head and
        layer norms are left out (under 0.5 % at base size)."""
        n, h = float(length), float(self.hidden)
        projection = 2.0 * n * self.embedding * h if self.embedding != self.hidden else 0.0
        if not self.first_token:
            return self.layers * self._layer(n, n) + projection
        return (self.layers - 1) * self._layer(n, n) + self._layer(n, 1.0) + projection

    def _layer(self, tokens: float, queries: float) -> float:
        """One layer: keys and values of `tokens`, everything else for `queries` of them."""
        h, f = float(self.hidden), float(self.ffn)
        ffn = (3.0 if self.glu else 2.0) * queries * h * f
        return 2.0 * (2.0 * tokens * h * h + 2.0 * queries * h * h + ffn + 2.0 * queries * tokens * h)

    def saved(self, length: int) -> float:
        """The share of a sequence's FLOPs the first-token last layer saves."""
        full = replace(self, first_token=False).flops_per_sequence(length)
        return 1.0 - replace(self, first_token=True).flops_per_sequence(length) / full

    def flops(self, lengths: Iterable[int]) -> float:
        return float(sum(self.flops_per_sequence(int(n)) for n in lengths))

    def describe(self) -> str:
        gated = ", gated FFN" if self.glu else ""
        last = ", last layer for the first token only" if self.first_token else ""
        return f"{self.layers} layers, hidden {self.hidden}, FFN {self.ffn}{gated}{last}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def achieved(flops: float, seconds: float, ceiling: float | None) -> dict[str, float | None]:
    """{gflops, ceiling_pct} of `flops` done in `seconds`, against a ceiling in GFLOP/s."""
    gflops = flops / seconds / 1e9 if seconds > 0 else 0.0
    pct = 100.0 * gflops / ceiling if ceiling else None
    return {"gflops": gflops, "ceiling_pct": pct}


def ceiling_for(ceilings: dict[str, Any] | None, precision: str) -> float | None:
    """The ceiling (GFLOP/s) a run of `precision` is held against, None when unmeasured."""
    if not ceilings:
        return None
    kind = ceiling_kind(precision)  # an unlisted precision is not rated, rather than rated wrong
    value = ceilings.get("gflops", {}).get(kind) if kind else None
    return float(value) if value else None
