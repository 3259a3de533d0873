"""score: every backend's predictions scored with the task's metrics, compared with torch fp32
(agreement, output drift) and gated (see encoderzoo.scoring); and predictions files made
anywhere scored against the gold data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from encoderzoo.artifacts import built_by, opened_by
from encoderzoo.checkpoints import default_checkpoint, trainer_results
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.fileio import read_json, write_json
from encoderzoo.infer import load_outputs
from encoderzoo.scoring import (
    Gate,
    Reference,
    accuracy_rows,
    output_drift,
    parse_reference,
)
from encoderzoo.tasks.base import read_splits, split_key


def reference(ctx: RunContext) -> Reference | None:
    """What torch fp32 is gated against: --reference; the recipe's published score, for the
    recipe's own checkpoint only; else the checkpoint's recorded eval_results.json. None (torch
    fp32 is the reference) when there is none, and always with random weights."""
    checkpoint, task = ctx.checkpoint, ctx.task
    if checkpoint.random_weights:
        return None
    splits = list(ctx.recipe.data)
    if ctx.config.reference:
        given = parse_reference(ctx.config.reference)
        known = [split_key(s, m, splits) for s in splits for m in task.metric_names]
        unknown = [k for k in given if k not in known]
        if unknown:
            raise ConfigError(
                f"--reference {unknown[0]}: not a metric of task '{ctx.recipe.task}' "
                f"(its metrics: {', '.join(known)})"
            )
        return Reference(given, "--reference")
    if checkpoint.location == default_checkpoint(ctx.recipe) and ctx.recipe.reference:
        return Reference(dict(ctx.recipe.reference), "published")
    recorded = trainer_results(checkpoint, task.metric_names, splits)
    return Reference(recorded, "eval_results.json") if recorded else None


def gate(ctx: RunContext) -> Gate:
    floor = ctx.config.min_agreement
    return Gate(
        keep=ctx.config.effective_gate,
        min_agreement=ctx.task.agreement_floor if floor is None else floor,
        random_weights=ctx.checkpoint.random_weights is not None,
    )


def graph_failures(ctx: RunContext, runs: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """An imported graph whose outputs differ from its PyTorch model's beyond the export
    tolerance fails the gate of every run made from it: it is not the model it claims to be."""
    path = ctx.store.record_path(built_by("export"))
    record = read_json(path) if path.is_file() else {}
    if not record.get("imported") or record.get("parity_against") != "PyTorch":
        return {}
    atol = ctx.recipe.export_atol
    worst = max((p["max_abs_diff"] for p in record.get("parity", [])), default=0.0)
    if worst <= atol:
        return {}
    why = (f"the imported graph's outputs differ from its PyTorch model's by {worst:.2g} (the export "
           f"tolerance is {atol:g})")
    return {run: [why] for run in runs if opened_by(*run).is_graph}


def predictions_of(ctx: RunContext, backend: str, precision: str) -> tuple[dict[str, Any], list[Any]]:
    """(outputs, predictions) of one finished inference run."""
    features = ctx.features()
    ids, outputs = load_outputs(ctx.ws.outputs(backend, precision))
    if list(ids) != list(features.example_ids):
        raise ArtifactError(
            f"{ctx.ws.outputs(backend, precision)}: outputs do not match the prepared "
            "features; run infer again"
        )
    return outputs, ctx.task.predict(ctx.examples(), features, outputs)


def run(ctx: RunContext) -> dict[str, Any]:
    ws = ctx.ws
    if not ws.infer_json.is_file():
        raise ArtifactError(f"{ws.infer_json}: no inference results; run `encoderzoo infer` first")
    examples = ctx.examples()
    outputs, predictions = {}, {}
    for entry in read_json(ws.infer_json)["runs"]:
        key = (entry["backend"], entry["precision"])
        outputs[key], predictions[key] = predictions_of(ctx, *key)
        # the predictions files say what was scored (e.g. with this command's --null-threshold)
        ctx.task.write_predictions(examples, predictions[key], outputs[key],
                                   ws.predictions(*key, ctx.task.predictions_suffix))
    scores = {key: ctx.task.score(examples, found) for key, found in predictions.items()}
    compared = ctx.reference_run  # torch fp32, or a graph's own fp32 run without PyTorch
    if compared not in outputs:  # no row is ever its own reference
        raise ArtifactError(f"{ws.infer_json}: no outputs of {' '.join(compared)}, the baseline every other "
                            "run is gated against; run `encoderzoo infer` again (it adds that run)")
    torch = predictions[compared]
    lengths = ctx.features().lengths
    sequence = frozenset(n for n, axes in ctx.task.output_axes.items() if 1 in axes)
    agreement = {
        key: {
            "agreement": ctx.task.agreement(found, torch),
            "max_abs_diff": output_drift(outputs[key], outputs[compared], lengths=lengths, sequence=sequence),
            # e.g. embeddings' mean and least cosine with the reference's
            **(getattr(ctx.task, "similarity", lambda *_: {})(found, torch)),
        }
        for key, found in predictions.items()
        if key != compared
    }
    rows = accuracy_rows(scores, agreement, reference=reference(ctx), gate=gate(ctx), reference_run=compared,
                         failures=graph_failures(ctx, list(scores)))
    info = {
        "examples": len(examples),
        "compared_with": " ".join(compared),
        # e.g. SQuAD 2.0's null threshold, what agreement means for a regression
        "scoring": getattr(ctx.task, "scoring_options", dict)(),
        "random_weights": ctx.checkpoint.random_weights,
        "gate_passed": all(r.gate_passed for r in rows),
        "rows": [r.to_json() for r in rows],
    }
    write_json(ws.accuracy_json, info)
    for r in rows:
        values = ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
        verdict = "pass" if r.gate_passed else f"FAIL: {'; '.join(r.failures)}"
        step(f"score: {r.backend} {r.precision} {values} (gate {verdict})")
    return info


def score_predictions(
    name: str, predictions: Path, data: tuple[str, ...], cache_dir: Path | None = None,
    na_probs: Path | None = None,
) -> dict[str, Any]:
    """Score a predictions file made anywhere against the gold data of a task (`name` is a task,
    with --data) or of a recipe (its data by default). Metrics are percentages at full precision,
    as the official evaluation scripts print them."""
    from encoderzoo.recipes import RECIPES
    from encoderzoo.sources import default_cache_dir, given_splits, resolve_data
    from encoderzoo.tasks import TASKS, get_task

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
