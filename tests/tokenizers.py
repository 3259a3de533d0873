"""Tokenizer folders for tests and benchmarks, per family. The ALBERT and DeBERTa-v3
SentencePiece models are not available offline, so small ones are trained on real SST-2 and
MNLI text; BERT and RoBERTa use the real vocabularies in ../shared.

    python -m tests.tokenizers OUT    # writes OUT/bert, OUT/roberta, OUT/albert, OUT/deberta-v2
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SST2_TRAIN = SHARED / "data" / "sst2" / "train.tsv"
MNLI_MATCHED = SHARED / "data" / "mnli" / "dev_matched.tsv"
REAL = {
    "bert": SHARED / "data" / "tokenizers" / "bert-base-cased",
    "roberta": SHARED / "data" / "tokenizers" / "roberta-base",
}
SENTENCEPIECE = {
    # family: (file name, special pieces numbered as in the real albert-base-v2 / deberta-v3 models)
    "albert": ("spiece.model", {"pad_id": 0, "pad_piece": "<pad>", "unk_id": 1, "unk_piece": "<unk>",
                                "bos_id": -1, "eos_id": -1,
                                "user_defined_symbols": ["[CLS]", "[SEP]", "[MASK]"]}),
    "deberta-v2": ("spm.model", {"pad_id": 0, "pad_piece": "[PAD]", "bos_id": 1, "bos_piece": "[CLS]",
                                 "eos_id": 2, "eos_piece": "[SEP]", "unk_id": 3, "unk_piece": "[UNK]",
                                 "user_defined_symbols": ["[MASK]"]}),
}


def missing_inputs() -> list[Path]:
    return [p for p in (SST2_TRAIN, *REAL.values()) if not p.exists()]


def train_sentencepiece(folder: Path, family: str, vocab_size: int = 2000) -> Path:
    """A small unigram SentencePiece model trained on SST-2 train and MNLI text."""
    import sentencepiece

    name, specials = SENTENCEPIECE[family]
    lines = [line.split("\t")[0] for line in SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:15001]]
    if MNLI_MATCHED.exists():
        rows = MNLI_MATCHED.read_text(encoding="utf-8").splitlines()[1:3001]
        lines += [text for row in rows for text in row.split("\t")[2:4]]
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    stem = Path(name).stem
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / stem), vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, minloglevel=2, **specials)
    corpus.unlink()
    (folder / f"{stem}.vocab").unlink()
    return folder


def family_tokenizers(root: Path) -> dict[str, Path]:
    """{family: --tokenizer folder}."""
    folders = dict(REAL)
    for family in SENTENCEPIECE:
        folders[family] = train_sentencepiece(root / family, family)
    return folders


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for family, folder in family_tokenizers(out).items():
        if folder.parent != out:
            shutil.copytree(folder, out / family, dirs_exist_ok=True)
        print(f"{family}: {out / family}")
