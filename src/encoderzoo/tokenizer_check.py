"""Does this tokenizer belong to this model? A wrong vocabulary (bert-base-cased's 28,996 tokens
beside an uncased model of 30,522) tokenizes without complaint and scores near chance, so it is
caught before anything runs:

1. a folder that ships its vocabulary twice (tokenizer.json and vocab.txt / vocab.json) must
   give the same token → id pairs in both (checked on a sample spread over the vocabulary);
2. the padding id the model was trained with (config.json `pad_token_id`) is the tokenizer's;
3. every id fits the embedding, and the embedding is not much larger than the vocabulary: models
   pad their embedding by at most a little (DeBERTa-v3: 99 rows; none seen by more than 1 %).

Each failure is one line naming both files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from encoderzoo.errors import CheckpointError

SPARE_ROWS = 128  # embedding rows beyond the vocabulary a model may have, at least...
SPARE_FRACTION = 0.01  # ...or this share of the embedding
SAMPLE = 2000  # token -> id pairs compared between two vocabulary files
VOCAB_FILES = ("vocab.txt", "vocab.json")
TOKENIZER_FILES = ("tokenizer.json", *VOCAB_FILES, "spiece.model", "spm.model", "sentencepiece.bpe.model")


def tokenizer_file(folder: Path) -> Path:
    """The file the tokenizer was read from (for messages)."""
    return next((folder / n for n in TOKENIZER_FILES if (folder / n).is_file()), folder)


def _vocabulary(path: Path) -> dict[str, int]:
    if path.name == "vocab.txt":
        lines = path.read_text(encoding="utf-8").split("\n")
        return {token: i for i, token in enumerate(lines[:-1] if lines[-1] == "" else lines)}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def check_tokenizer(tokenizer: Any, config: Any, folder: Path, *, model_config: Path | None = None) -> None:
    """Raise CheckpointError when `tokenizer` (read from `folder`) does not fit the model of
    `config` (read from `model_config`, default folder/config.json)."""
    source = tokenizer_file(folder)
    model_file = model_config or folder / "config.json"
    if (folder / "tokenizer.json").is_file():
        vocab_files = [folder / n for n in VOCAB_FILES if (folder / n).is_file()]
        if vocab_files:
            _same_vocabulary(tokenizer.get_vocab(), folder / "tokenizer.json", vocab_files[0])
    tokens = len(tokenizer)
    embedded = int(getattr(config, "vocab_size", 0) or 0)
    pad = getattr(config, "pad_token_id", None)
    if pad is not None and tokenizer.pad_token_id is not None and int(pad) != int(tokenizer.pad_token_id):
        raise CheckpointError(
            f"{source} pads with id {tokenizer.pad_token_id} ({tokenizer.pad_token!r}) but {model_file} was "
            f"trained with pad_token_id {pad}: the tokenizer and the model come from different checkpoints; "
            "use the tokenizer files the model was trained with")
    if embedded and tokens > embedded:
        raise CheckpointError(
            f"{source} has {tokens} tokens but {model_file} embeds only {embedded}: the tokenizer and the "
            "model come from different checkpoints; use the tokenizer files the model was trained with")
    if embedded and embedded - tokens > max(SPARE_ROWS, SPARE_FRACTION * embedded):
        raise CheckpointError(
            f"{source} has {tokens} tokens but {model_file} embeds {embedded}: the tokenizer files are "
            "missing or belong to another model (e.g. a cased vocabulary beside an uncased model); use "
            "the tokenizer files the model was trained with")


def _same_vocabulary(loaded: dict[str, int], tokenizer_json: Path, vocab_file: Path) -> None:
    try:
        other = _vocabulary(vocab_file)
    except (OSError, ValueError, UnicodeDecodeError):
        return  # an unreadable second copy is not what the tokenizer was built from
    ids = sorted(other.values())
    step = max(1, len(ids) // SAMPLE)
    by_id = {i: t for t, i in other.items()}
    sample = [(by_id[i], i) for i in ids[::step]]
    for token, token_id in sample:
        if token in loaded and loaded[token] != token_id:
            raise CheckpointError(
                f"{tokenizer_json} and {vocab_file} disagree: {token!r} is id {loaded[token]} in one and "
                f"{token_id} in the other; keep the tokenizer files of one model")
    absent = sum(token not in loaded for token, _ in sample)
    if absent > SPARE_FRACTION * len(sample) or abs(len(other) - len(loaded)) > SPARE_ROWS:
        raise CheckpointError(
            f"{tokenizer_json} ({len(loaded)} tokens) and {vocab_file} ({len(other)} tokens) are two "
            "different vocabularies; keep the tokenizer files of one model")
