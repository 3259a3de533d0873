"""Recipes: presets of a task, a dataset and the defaults to run them. Two kinds:
- task presets (`sst2`, `mnli`, `squad`): any checkpoint of any family encoderzoo runs, given with
  --checkpoint (or --random-weights, which builds the preset's bert architecture);
- seed presets (the demo and the five reference pipelines): besides, a default checkpoint and its
  published score, which applies to that checkpoint only.
The family always comes from the checkpoint's config; a recipe's `family` is that of its own
checkpoint and of its random weights.

Adding a preset means adding one `register_recipe(Recipe(...))` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from encoderzoo.registry import Registry

SWEEP_BATCH_SIZES = (1, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class CheckpointSource:
    """Where a recipe's checkpoint comes from when `--checkpoint` is not given."""

    hub_id: str | None = None  # downloaded by transformers when online
    packaged: str | None = None  # a folder under encoderzoo/assets (works offline)


@dataclass(frozen=True)
class DataSource:
    """Where one split of a recipe's evaluation data comes from when `--data` is not given."""

    url: str | None = None  # a download (a zip, or the file itself), cached once
    member: str | None = None  # the file inside the downloaded zip
    packaged: str | None = None  # a file under encoderzoo/assets (works offline)
    hint: str = ""  # what a user should pass as --data

    @property
    def filename(self) -> str:
        """The file's usual name, looked for when --data names a folder."""
        return PurePosixPath(self.member or self.packaged or self.url or "").name


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    task: str  # key in encoderzoo.tasks
    family: str  # key in encoderzoo.families
    checkpoint: CheckpointSource
    data: Mapping[str, DataSource]  # split name -> source; several splits are scored apart
    seq_len: int  # default maximum sequence length (tokens)
    reference: Mapping[str, float]  # published metric values (fractions), keyed like the scores
    architecture: str  # assets/configs/<name>.json: the shapes --random-weights builds
    tokenizer_hub_id: str  # the tokenizer --random-weights uses when online and no --tokenizer
    tokenizer_kwargs: Mapping[str, Any] = field(default_factory=dict)  # e.g. do_lower_case
    batch_sizes: tuple[int, ...] = SWEEP_BATCH_SIZES
    gate: float = 0.99  # a backend passes when it keeps >= gate x the reference metric
    export_atol: float = 1e-4  # max |Δ| allowed between PyTorch and ONNX outputs
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """"task" (bring a checkpoint) or "seed" (a default checkpoint and its published score)."""
        return "seed" if self.checkpoint.hub_id or self.checkpoint.packaged else "task"


RECIPES: Registry[Recipe] = Registry("recipe")


def register_recipe(recipe: Recipe) -> Recipe:
    return RECIPES.register(recipe.name, recipe)


def get_recipe(name: str) -> Recipe:
    return RECIPES[name]


SST2_HINT = "the GLUE SST-2 dev.tsv (sentence<TAB>label with a header row)"
GLUE_SST2 = {"dev": DataSource(url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
                               member="SST-2/dev.tsv", hint=SST2_HINT)}
MNLI_HINT = "MNLI dev_{split}.tsv (GLUE layout, or index/pairID/sentence1/sentence2/gold_label)"
GLUE_MNLI = {
    split: DataSource(url="https://dl.fbaipublicfiles.com/glue/data/MNLI.zip",
                      member=f"MNLI/dev_{split}.tsv", hint=MNLI_HINT.format(split=split))
    for split in ("matched", "mismatched")
}
SEED_NOTE = "the reference is the seed pipeline's published score{}"

register_recipe(Recipe(
    name="demo",
    description="Embedded demo: MiniLM-L6 fine-tuned on SST-2, on the real SST-2 dev set.",
    task="sst2", family="bert",
    checkpoint=CheckpointSource(packaged="demo/model"),
    data={"dev": DataSource(packaged="demo/data/sst2-dev.tsv", hint=SST2_HINT)},
    seq_len=128,
    # demo/model/eval_results.json: 774 / 872 with the stored fp16 weights upcast to fp32.
    reference={"accuracy": 774 / 872},
    architecture="all-MiniLM-L6-v2", tokenizer_hub_id="sentence-transformers/all-MiniLM-L6-v2",
))

register_recipe(Recipe(
    name="bert-base-cased-sst2",
    description="BERT-base-cased fine-tuned on GLUE SST-2 (BertForSequenceClassification).",
    task="sst2", family="bert",
    checkpoint=CheckpointSource(hub_id="gchhablani/bert-base-cased-finetuned-sst2"),
    data=GLUE_SST2, seq_len=128, reference={"accuracy": 0.9243},
    architecture="bert-base-cased", tokenizer_hub_id="bert-base-cased",
    tokenizer_kwargs={"do_lower_case": False},
    notes=(SEED_NOTE.format("; the default hub checkpoint's model card reports 92.32"),),
))

register_recipe(Recipe(
    name="roberta-base-sst2",
    description="RoBERTa-base fine-tuned on GLUE SST-2 (RobertaForSequenceClassification).",
    task="sst2", family="roberta",
    checkpoint=CheckpointSource(hub_id="textattack/roberta-base-SST-2"),
    data=GLUE_SST2, seq_len=70, reference={"accuracy": 0.948},
    architecture="roberta-base", tokenizer_hub_id="roberta-base",
    notes=(SEED_NOTE.format("; the default hub checkpoint reports 94.38"),),
))

register_recipe(Recipe(
    name="albert-base-v2-sst2",
    description="ALBERT-base-v2 fine-tuned on GLUE SST-2 (AlbertForSequenceClassification).",
    task="sst2", family="albert",
    checkpoint=CheckpointSource(hub_id="textattack/albert-base-v2-SST-2"),
    data=GLUE_SST2, seq_len=128, reference={"accuracy": 0.9282},
    architecture="albert-base-v2", tokenizer_hub_id="albert-base-v2",
    notes=(SEED_NOTE.format(""),),
))

register_recipe(Recipe(
    name="deberta-v3-base-mnli",
    description="DeBERTa-v3-base fine-tuned on MNLI (DebertaV2ForSequenceClassification), "
                "dev matched and mismatched.",
    task="mnli", family="deberta-v2",
    checkpoint=CheckpointSource(hub_id="MoritzLaurer/DeBERTa-v3-base-mnli"),
    data=GLUE_MNLI, seq_len=256,
    reference={"matched.accuracy": 0.905, "mismatched.accuracy": 0.905},
    architecture="deberta-v3-base", tokenizer_hub_id="microsoft/deberta-v3-base",
    notes=(SEED_NOTE.format(""),),
))

register_recipe(Recipe(
    name="spanbert-base-cased-squad1",
    description="SpanBERT-base-cased fine-tuned on SQuAD 1.1 (BertForQuestionAnswering), windows of "
                "--seq-len tokens (512 unless set) advancing by 128.",
    task="squad", family="bert",
    checkpoint=CheckpointSource(hub_id="mrm8488/spanbert-base-finetuned-squadv1"),
    data={"dev": DataSource(url="https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
                            hint="the SQuAD v1.1 dev-v1.1.json")},
    seq_len=512, reference={"f1": 0.924},
    # SpanBERT-base-cased has BERT-base-cased's shapes and vocabulary
    architecture="bert-base-cased", tokenizer_hub_id="SpanBERT/spanbert-base-cased",
    tokenizer_kwargs={"do_lower_case": False},
    notes=(SEED_NOTE.format(" (F1; exact match is reported beside it); use --seq-len 384 for the "
                            "shorter windows"),),
))


# Task presets: any checkpoint of a supported family, the task's dev data and its usual length;
# --random-weights builds bert-base-cased's architecture for them.
def register_task_preset(task: str, what: str, data: Mapping[str, DataSource], data_text: str,
                         seq_len: int) -> Recipe:
    return register_recipe(Recipe(
        name=task, description=f"{what} with any encoder checkpoint (--checkpoint PATH_OR_HUB_ID): "
                               f"{data_text}.",
        task=task, family="bert", checkpoint=CheckpointSource(), data=data, seq_len=seq_len,
        reference={}, architecture="bert-base-cased", tokenizer_hub_id="bert-base-cased",
        tokenizer_kwargs={"do_lower_case": False},
    ))


register_task_preset("sst2", "Sentence sentiment (2 classes)", GLUE_SST2, "GLUE SST-2 dev", 128)
register_task_preset("mnli", "Natural language inference (3 classes)", GLUE_MNLI,
                     "MNLI dev matched and mismatched", 256)
GLUE = {  # task: (what, the zip's folder, what --data is)
    "cola": ("Linguistic acceptability (2 classes, Matthews correlation)", "CoLA",
             "the GLUE CoLA dev.tsv (no header: source, label, mark, sentence)"),
    "mrpc": ("Paraphrase (2 classes, F1 and accuracy)", "MRPC",
             "the GLUE MRPC dev.tsv (Quality, #1 ID, #2 ID, #1 String, #2 String)"),
    "qqp": ("Duplicate questions (2 classes, accuracy and F1)", "QQP",
            "the GLUE QQP dev.tsv (id, qid1, qid2, question1, question2, is_duplicate)"),
    "qnli": ("Question-answer entailment (2 classes)", "QNLI",
             "the GLUE QNLI dev.tsv (index, question, sentence, label)"),
    "rte": ("Textual entailment (2 classes)", "RTE",
            "the GLUE RTE dev.tsv (index, sentence1, sentence2, label)"),
    "stsb": ("Semantic similarity (regression 0-5, Pearson and Spearman)", "STS-B",
             "the GLUE STS-B dev.tsv (index ... sentence1, sentence2, score)"),
    "wnli": ("Winograd entailment (2 classes)", "WNLI",
             "the GLUE WNLI dev.tsv (index, sentence1, sentence2, label)"),
}
for task, (what, folder, hint) in GLUE.items():
    source = DataSource(url=f"https://dl.fbaipublicfiles.com/glue/data/{folder}.zip",
                        member=f"{folder}/dev.tsv", hint=hint)
    register_task_preset(task, what, {"dev": source}, f"GLUE {folder} dev", 128)
FILE_HINT = "your labelled file: CSV, TSV, JSONL or Parquet"
register_task_preset("classify", "Classification of a file of yours (--text-column, --label-column)",
                     {"dev": DataSource(hint=FILE_HINT)}, "--data FILE", 128)
register_task_preset("regress", "Regression of a file of yours (--text-column, --label-column with numbers)",
                     {"dev": DataSource(hint=FILE_HINT)}, "--data FILE", 128)
register_task_preset(
    "squad", "Extractive question answering",
    {"dev": DataSource(url="https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
                       hint="the SQuAD v1.1 dev-v1.1.json")},
    "SQuAD 1.1 dev, windows of --seq-len tokens (384 unless set) advancing by 128", 384,
)
register_task_preset(
    "squad2", "Extractive question answering with unanswerable questions",
    {"dev": DataSource(url="https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
                       hint="the SQuAD 2.0 dev-v2.0.json")},
    "SQuAD 2.0 dev, windows of --seq-len tokens (384 unless set) advancing by 128, "
    "--null-threshold for no answer", 384,
)
register_task_preset(
    "ner", "Named entities (token classification)",
    {"dev": DataSource(hint="a CoNLL-2003-layout file (eng.testa, valid.txt: token ... tag per line)")},
    "--data FILE in the CoNLL-2003 layout, entity F1 as conlleval computes it", 128,
)
register_task_preset(
    "embed", "Sentence embeddings (the checkpoint's sentence-transformers pooling)",
    {"dev": DataSource(url="https://dl.fbaipublicfiles.com/glue/data/STS-B.zip", member="STS-B/dev.tsv",
                       hint="STS-B-layout pairs (sentence1, sentence2, score), e.g. GLUE's STS-B dev.tsv")},
    "GLUE STS-B dev pairs, Spearman of cosine similarity", 128,
)
register_task_preset(
    "swag", "Multiple choice (the ending that follows a context)",
    {"dev": DataSource(url="https://raw.githubusercontent.com/rowanz/swagaf/master/data/val.csv",
                       hint="SWAG's val.csv (sent1, sent2, ending0..3, label)")},
    "SWAG val.csv, accuracy", 128,
)
