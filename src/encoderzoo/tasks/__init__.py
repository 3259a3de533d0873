"""Tasks: read a dataset, encode it to features, score model outputs. One module per task kind."""

from __future__ import annotations

from encoderzoo.errors import ConfigError
from encoderzoo.tasks.base import Task
from encoderzoo.tasks.classification import SequenceClassification

TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


register_task(SequenceClassification(
    name="sst2",
    text_columns=("sentence",),
    label_column="label",
    labels=("0", "1"),  # GLUE SST-2: 0 negative, 1 positive
))
