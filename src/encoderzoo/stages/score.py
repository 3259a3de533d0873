"""score: every backend's predictions scored with the task's metrics, compared with torch fp32
(agreement, output drift) and gated (see encoderzoo.scoring); and predictions files made
anywhere scored against the gold data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from encoderzoo.context import RunContext
from encoderzoo.errors import ConfigError
from encoderzoo.evaluation import evaluate
from encoderzoo.options import GATE
from encoderzoo.recipes import RECIPES
from encoderzoo.sources import default_cache_dir, given_splits, resolve_data
from encoderzoo.tasks import TASKS, get_task
from encoderzoo.tasks.base import read_splits

OPTIONS = (*GATE, "label_names", "null_threshold", "strict_entities")  # what it reads of RunConfig


def run(ctx: RunContext) -> dict[str, Any]:
    """accuracy.json: every run scored and gated against the baseline run (see encoderzoo.evaluation)."""
    return evaluate(ctx)

def score_predictions(
    name: str, predictions: Path, data: tuple[str, ...], cache_dir: Path | None = None,
    na_probs: Path | None = None,
) -> dict[str, Any]:
    """Score a predictions file made anywhere against the gold data of a task (`name` is a task,
    with --data) or of a recipe (its data by default). Metrics are percentages at full precision,
    as the official evaluation scripts print them."""
    if name in TASKS:
        task = get_task(name)
        if not data:
            raise ConfigError(f"pass --data PATH to the gold {name} data to score against")
        # the task's splits as its recipes name them (MNLI: matched, mismatched), so that scores and
        # a run's split-prefixed ids line up
        recipe = next((r for r in RECIPES.values() if r.task == name), None)
        if recipe is not None and len(recipe.data) > 1 and (len(data) > 1 or "=" in data[0]):
            files = given_splits(recipe, data)
        else:
            files = {"dev": Path(data[0])}
    else:
        recipe = RECIPES[name]
        task = get_task(recipe.task)
        files = resolve_data(recipe, data, cache_dir or default_cache_dir())
    if getattr(task, "user_columns", False):
        raise ConfigError(f"`score {name} --predictions` cannot know your file's columns; score the run "
                          f"folder instead (`encoderzoo score {name} --out RUN`)")
    if na_probs is not None and not getattr(task, "unanswerable", False):
        raise ConfigError(f"--na-probs is for squad2; task '{task.name}' has no no-answer probabilities")
    examples, _ = read_splits(task, files)
    answers = task.read_predictions(predictions, examples)
    official = getattr(task, "official", None)  # a task whose official script prints its own keys
    if official is not None:
        return official(examples, answers, na_probs)  # type: ignore[no-any-return]
    result: dict[str, Any] = {k: 100 * v for k, v in task.score(examples, answers).metrics.items()}
    missing = sum(1 for a in answers if a in ("", None))
    return result | {"examples": len(examples), "without_prediction": missing}


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    return [
        (
            "score",
            f"metrics per backend; gate {ctx.config.effective_gate:.0%} of torch fp32 and agreement with it",
            "build",
        )
    ]
