"""Tokenizer folders for tests and benchmarks, one per registered family. The SentencePiece
models (ALBERT, DeBERTa-v3, XLM-RoBERTa, CamemBERT) are not available offline, so small ones are
trained on real SST-2 and MNLI text; the WordPiece and byte-level BPE families use the real
bert-base-cased and roberta-base vocabularies in ../shared (MPNet's with its own special tokens
first, ModernBERT's as a tokenizer.json).

    python -m tests.tokenizers OUT    # writes OUT/<family> for every family
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SST2_TRAIN = SHARED / "data" / "sst2" / "train.tsv"
MNLI_MATCHED = SHARED / "data" / "mnli" / "dev_matched.tsv"
BERT_VOCAB = SHARED / "data" / "tokenizers" / "bert-base-cased"
ROBERTA_VOCAB = SHARED / "data" / "tokenizers" / "roberta-base"
REAL = {"bert": BERT_VOCAB, "roberta": ROBERTA_VOCAB, "distilbert": BERT_VOCAB, "electra": BERT_VOCAB,
        "deberta": ROBERTA_VOCAB}  # DebertaTokenizer reads GPT-2 BPE files and adds [CLS], [SEP], ...
FAIRSEQ = {"pad_id": -1, "unk_id": 0, "unk_piece": "<unk>", "bos_id": 1, "bos_piece": "<s>", "eos_id": 2,
           "eos_piece": "</s>"}  # XLM-R / CamemBERT's model; the tokenizer adds <pad> in fairseq's order
SENTENCEPIECE = {
    # family: (file name, special pieces numbered as in the real albert-base-v2 / deberta-v3 models)
    "albert": ("spiece.model", {"pad_id": 0, "pad_piece": "<pad>", "unk_id": 1, "unk_piece": "<unk>",
                                "bos_id": -1, "eos_id": -1,
                                "user_defined_symbols": ["[CLS]", "[SEP]", "[MASK]"]}),
    "deberta-v2": ("spm.model", {"pad_id": 0, "pad_piece": "[PAD]", "bos_id": 1, "bos_piece": "[CLS]",
                                 "eos_id": 2, "eos_piece": "[SEP]", "unk_id": 3, "unk_piece": "[UNK]",
                                 "user_defined_symbols": ["[MASK]"]}),
    "xlm-roberta": ("sentencepiece.bpe.model", FAIRSEQ),
    "camembert": ("sentencepiece.bpe.model", FAIRSEQ),
}


def missing_inputs() -> list[Path]:
    return [p for p in (SST2_TRAIN, BERT_VOCAB, ROBERTA_VOCAB) if not p.exists()]


def train_sentencepiece(folder: Path, family: str, vocab_size: int = 2000) -> Path:
    """A small unigram SentencePiece model trained on SST-2 train and MNLI text."""
    import sentencepiece

    name, specials = SENTENCEPIECE[family]
    lines = [line.split("\t")[0] for line in SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:8001]]
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


def mpnet_vocabulary(folder: Path) -> Path:
    """microsoft/mpnet-base's layout: <s> <pad> </s> <unk> first (padding index 1, which its
    positions count from), then a WordPiece vocabulary, then <mask>."""
    words = (BERT_VOCAB / "vocab.txt").read_text(encoding="utf-8").splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["<s>", "<pad>", "</s>", "<unk>", *words, "<mask>"]
    (folder / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def fast_only(folder: Path) -> Path:
    """A tokenizer.json only (ModernBERT ships no vocabulary files), from roberta-base's."""
    from transformers import PreTrainedTokenizerFast, RobertaTokenizer

    RobertaTokenizer.from_pretrained(str(ROBERTA_VOCAB)).save_pretrained(str(folder))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>", "sep_token": "</s>",
                "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **specials)
    tokenizer.save_pretrained(str(folder))
    return folder


def family_tokenizers(root: Path) -> dict[str, Path]:
    """{family: --tokenizer folder}."""
    folders = dict(REAL)
    for family in SENTENCEPIECE:
        same = next((f for f in folders if SENTENCEPIECE.get(f) == SENTENCEPIECE[family]), None)
        folders[family] = folders[same] if same else train_sentencepiece(root / family, family)
    folders["mpnet"] = mpnet_vocabulary(root / "mpnet")
    folders["modernbert"] = fast_only(root / "modernbert")
    return folders


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for family, folder in family_tokenizers(out).items():
        if folder.parent != out:
            shutil.copytree(folder, out / family, dirs_exist_ok=True)
        print(f"{family}: {out / family}")
