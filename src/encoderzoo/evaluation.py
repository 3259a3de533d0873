"""A run's outputs scored: every run's predictions with the task's metrics, compared with the
baseline run (torch fp32, or a graph's own fp32 run without PyTorch: agreement, output drift) and
gated (see encoderzoo.scoring) — what the score stage writes and triage re-checks."""

from __future__ import annotations

import json
from typing import Any

from encoderzoo.artifacts import ARTIFACTS
from encoderzoo.assets import asset_path
from encoderzoo.backends import Run, get_backend
from encoderzoo.checkpoints import Checkpoint
from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.fileio import read_json, write_json
from encoderzoo.infer import load_outputs
from encoderzoo.recipes import Recipe
from encoderzoo.scoring import Gate, Reference, accuracy_rows, output_drift
from encoderzoo.tasks.base import split_key

GRAPH = "onnx"  # the kind a graph made elsewhere is imported as
DEVICE = "device"  # the backend column of a device runner's rows (kept by `score --outputs`)


def default_checkpoint(recipe: Recipe) -> str | None:
    """Where the recipe's own checkpoint resolves to (its published reference applies to it only)."""
    if recipe.checkpoint.packaged:
        return str(asset_path(recipe.checkpoint.packaged).resolve())
    return recipe.checkpoint.hub_id


def trainer_results(checkpoint: Checkpoint, metric_names: tuple[str, ...], splits: list[str]
                    ) -> dict[str, float]:
    """The checkpoint's own recorded scores, from eval_results.json as the transformers Trainer
    writes it (`eval_accuracy`, `eval_f1`, `eval_exact_match`; MNLI's mismatched split as
    `eval_accuracy_mm`), as fractions keyed like the task's metrics; empty when there is none."""
    folder = checkpoint.folder
    path = folder / "eval_results.json" if folder is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for raw, value in data.items() if isinstance(data, dict) else ():
        if not raw.startswith("eval_") or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name = raw.removeprefix("eval_")
        mismatched = name.endswith("_mm")
        name = {"exact": "exact_match"}.get(name.removesuffix("_mm"), name.removesuffix("_mm"))
        if name not in metric_names:
            continue
        if len(splits) > 1:
            if not {"matched", "mismatched"} <= set(splits):
                continue  # which split the Trainer scored cannot be told
            name = f"{'mismatched' if mismatched else 'matched'}.{name}"
        elif mismatched:
            continue
        found[name] = float(value) / 100 if value > 1.0 else float(value)  # SQuAD scripts write percent
    return found


def reference(ctx: RunContext) -> Reference | None:
    """What torch fp32 is gated against: --reference; the recipe's published score, for the
    recipe's own checkpoint only; else the checkpoint's recorded eval_results.json. None (torch
    fp32 is the reference) when there is none, and always with random weights."""
    checkpoint, task = ctx.source.checkpoint(), ctx.task
    if ctx.source.random_weights:
        return None
    splits = list(ctx.recipe.data)
    if ctx.config.reference:
        given = ctx.config.reference_metrics
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
        random_weights=ctx.source.random_weights is not None,
    )


def graph_failures(ctx: RunContext, runs: list[Run]) -> dict[Run, list[str]]:
    """An imported graph whose outputs differ from its PyTorch model's beyond the export
    tolerance fails the gate of every run made from it: it is not the model it claims to be."""
    record = ctx.store.record(GRAPH)
    if not record.get("imported") or record.get("parity_against") != "PyTorch":
        return {}
    atol = ctx.recipe.export_atol
    worst = max((p["max_abs_diff"] for p in record.get("parity", [])), default=0.0)
    if worst <= atol:
        return {}
    why = (f"the imported graph's outputs differ from its PyTorch model's by {worst:.2g} (the export "
           f"tolerance is {atol:g})")
    made_from_graph = [r for r in runs  # a device runs the exported graph too
                       if r.backend == DEVICE
                       or ARTIFACTS[get_backend(r.backend).artifact(r.precision)].is_graph]
    return {run: [why] for run in made_from_graph}


def predictions_of(ctx: RunContext, run: Run) -> tuple[dict[str, Any], list[Any]]:
    """(outputs, predictions) of one finished inference run."""
    features = ctx.features()
    ids, outputs = load_outputs(ctx.ws.outputs(*run))
    if list(ids) != list(features.example_ids):
        raise ArtifactError(
            f"{ctx.ws.outputs(*run)}: outputs do not match the prepared "
            "features; run infer again"
        )
    return outputs, ctx.task.predict(ctx.examples(), features, outputs)


def device_runs(ctx: RunContext) -> dict[Run, dict[str, Any]]:
    """The outputs device runners wrote for these prepared samples, as `score --outputs` kept
    them; those kept for other prepared data (or another model) are left out, and said."""
    found = {}
    folder = ctx.ws.device_dir
    for record_path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record, path = read_json(record_path), record_path.with_suffix(".npz")
        ids, outputs = load_outputs(path)
        if record.get("prepare_key") != ctx.prepared.get("key") \
                or list(ids) != list(ctx.features().example_ids):
            step(f"score: {path} left out: made for other prepared data or another model")
            continue
        found[Run(DEVICE, str(record["name"]))] = outputs
    return found


def evaluate(ctx: RunContext) -> dict[str, Any]:
    """Every run's predictions scored, compared with the baseline run and gated; accuracy.json
    and the predictions files written."""
    ws = ctx.ws
    if not ws.infer_json.is_file():
        raise ArtifactError(f"{ws.infer_json}: no inference results; run `encoderzoo infer` first")
    examples = ctx.examples()
    outputs, predictions = {}, {}
    for entry in read_json(ws.infer_json)["runs"]:
        key = Run(entry["backend"], entry["precision"])
        outputs[key], predictions[key] = predictions_of(ctx, key)
    for key, found in device_runs(ctx).items():
        outputs[key], predictions[key] = found, ctx.task.predict(examples, ctx.features(), found)
    for key in outputs:
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
        "compared_with": compared.label,
        # e.g. SQuAD 2.0's null threshold, what agreement means for a regression
        "scoring": getattr(ctx.task, "scoring_options", dict)(),
        "random_weights": ctx.source.random_weights,
        "gate_passed": all(r.gate_passed for r in rows),
        "rows": [r.to_json() for r in rows],
    }
    write_json(ws.accuracy_json, info)
    for r in rows:
        values = ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
        verdict = "pass" if r.gate_passed else f"FAIL: {'; '.join(r.failures)}"
        step(f"score: {r.backend} {r.precision} {values} (gate {verdict})")
    return info
