"""Tasks: read a dataset, encode it to features, score model outputs. One module per task kind."""

from __future__ import annotations

from encoderzoo.registry import Registry
from encoderzoo.tasks.base import Task
from encoderzoo.tasks.classification import SequenceClassification
from encoderzoo.tasks.squad import QuestionAnswering

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
register_task(QuestionAnswering(
    # SQuAD v1.1: windows advance 128 tokens, questions cut at 64, n-best 20, answers <= 30 tokens
    name="squad", doc_stride=128, max_query_tokens=64, n_best=20, max_answer_tokens=30,
))
