"""Tasks: read a dataset, encode it to features, score model outputs. One module per task kind."""

from __future__ import annotations

from encoderzoo.registry import Registry
from encoderzoo.tasks.base import Task
from encoderzoo.tasks.classification import SequenceClassification

TASKS: Registry[Task] = Registry("task")


def register_task(task: Task) -> Task:
    return TASKS.register(task.name, task)


def get_task(name: str) -> Task:
    return TASKS[name]


register_task(SequenceClassification(
    name="sst2",
    text_columns=("sentence",),
    label_column="label",
    labels=("0", "1"),  # GLUE SST-2: 0 negative, 1 positive
))
