"""encoderzoo: turn a fine-tuned BERT-family checkpoint and a task dataset into a verified,
optimized and benchmarked inference artifact."""

from encoderzoo.version import __version__

__all__ = ["__version__"]
