"""encoderzoo: turn a fine-tuned BERT-family checkpoint and a task dataset into a verified,
optimized and benchmarked inference artifact."""

__version__ = "0.1.0"
