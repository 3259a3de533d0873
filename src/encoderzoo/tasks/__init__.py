"""Tasks: read a dataset, encode it to features, score model outputs. One module per task kind."""

from __future__ import annotations

from encoderzoo.registry import Registry
from encoderzoo.tasks.base import Task
from encoderzoo.tasks.classification import SequenceClassification
from encoderzoo.tasks.embed import SentenceEmbedding
from encoderzoo.tasks.generic import FileClassification, FileRegression
from encoderzoo.tasks.multiple_choice import MultipleChoice
from encoderzoo.tasks.ner import TokenClassification
from encoderzoo.tasks.regression import Regression
from encoderzoo.tasks.squad import QuestionAnswering
from encoderzoo.tasks.squad2 import QuestionAnswering2

TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    return TASKS.register(task.name, task)


def get_task(name: str) -> Task:
    return TASKS[name]


register_task(SequenceClassification(
    name="sst2", text_columns=("sentence",), label_column="label",
    labels=("0", "1"), label_names=("negative", "positive"), labels_are_indices=True,
))
register_task(SequenceClassification(
    # GLUE's MNLI files (with genre) and the compact index/pairID/sentence1/sentence2/gold_label ones
    name="mnli", text_columns=("sentence1", "sentence2"), label_column="gold_label",
    labels=("entailment", "neutral", "contradiction"),
    label_names=("entailment", "neutral", "contradiction"),
    skip_labels=("-",), group_column="genre",
))
# the rest of GLUE, read as distributed (dev.tsv, tab-separated, unquoted), official metrics
register_task(SequenceClassification(
    name="cola", text_columns=("sentence",), label_column="label", labels=("0", "1"),
    label_names=("unacceptable", "acceptable"), labels_are_indices=True, metric_names=("mcc", "accuracy"),
    columns=("source", "label", "original_mark", "sentence"),  # no header row
))
register_task(SequenceClassification(
    name="mrpc", text_columns=("#1 String", "#2 String"), label_column="Quality", labels=("0", "1"),
    label_names=("not_equivalent", "equivalent"), labels_are_indices=True, metric_names=("f1", "accuracy"),
))
register_task(SequenceClassification(
    name="qqp", text_columns=("question1", "question2"), label_column="is_duplicate", labels=("0", "1"),
    label_names=("not_duplicate", "duplicate"), labels_are_indices=True, metric_names=("accuracy", "f1"),
))
register_task(SequenceClassification(
    name="qnli", text_columns=("question", "sentence"), label_column="label",
    labels=("entailment", "not_entailment"), label_names=("entailment", "not_entailment"),
))
register_task(SequenceClassification(
    name="rte", text_columns=("sentence1", "sentence2"), label_column="label",
    labels=("entailment", "not_entailment"), label_names=("entailment", "not_entailment"),
))
register_task(SequenceClassification(
    name="wnli", text_columns=("sentence1", "sentence2"), label_column="label", labels=("0", "1"),
    label_names=("not_entailment", "entailment"), labels_are_indices=True,
))
register_task(Regression(
    # GLUE STS-B: similarity 0-5 from a one-output head
    name="stsb", text_columns=("sentence1", "sentence2"), label_column="score",
))
# a labelled file of the user's: columns from --text-column/--text-pair-column/--label-column
register_task(FileClassification(name="classify", text_columns=(), label_column="", labels=(),
                                  label_names=()))
register_task(FileRegression(name="regress", text_columns=(), label_column=""))
register_task(QuestionAnswering(
    # SQuAD v1.1: windows advance 128 tokens, questions cut at 64, n-best 20, answers <= 30 tokens
    name="squad", doc_stride=128, max_query_tokens=64, n_best=20, max_answer_tokens=30,
))
register_task(QuestionAnswering2(
    # SQuAD 2.0: as SQuAD 1.1, and "" when the null score beats the best span by > --null-threshold
    name="squad2", doc_stride=128, max_query_tokens=64, n_best=20, max_answer_tokens=30,
))
# CoNLL-2003 layout (IOB1, IOB2 or BIOES tags), entities scored as conlleval scores them
register_task(TokenClassification(name="ner"))
# sentence embeddings: STS-B-layout pairs, each sentence embedded alone, cosine vs the gold score
register_task(SentenceEmbedding(name="embed", text_columns=("sentence1", "sentence2"), label_column="score"))
# multiple choice: SWAG's val.csv as distributed, every context paired with each of its 4 endings
register_task(MultipleChoice(name="swag"))
