"""The stages in order: prepare → export → optimize → infer → score → bench → report.

Each stage reads its inputs from the run folder (a Workspace) and writes its outputs there, so
that the stages can run one at a time from the CLI or all together with `run`."""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any

from encoderzoo import __version__
from encoderzoo.backends import Backend, BackendContext, create_backend
from encoderzoo.bench import sweep
from encoderzoo.checkpoints import Checkpoint, fingerprint, load_model, load_tokenizer, resolve_checkpoint
from encoderzoo.config import RunConfig
from encoderzoo.console import step
from encoderzoo.environment import environment
from encoderzoo.errors import ArtifactError, ConfigError
from encoderzoo.export import (
    OPSET,
    ParityResult,
    check_parity,
    export_onnx,
    load_parity_cases,
    parity_cases,
    save_parity_cases,
    torch_outputs,
)
from encoderzoo.families import Family, get_family
from encoderzoo.features import Features
from encoderzoo.fileio import atomic_dir, read_json, write_json
from encoderzoo.infer import load_outputs, run_inference, save_outputs
from encoderzoo.optimize import optimize_onnx
from encoderzoo.recipes import Recipe
from encoderzoo.report import write_report
from encoderzoo.scoring import REFERENCE_BACKEND, accuracy_rows, output_drift
from encoderzoo.sources import resolve_data
from encoderzoo.tasks import get_task
from encoderzoo.tasks.base import Task
from encoderzoo.workspace import Workspace


class Pipeline:
    def __init__(self, config: RunConfig, workspace: Workspace | None = None) -> None:
        self.config = config
        self.ws = workspace or Workspace(config.out)
        self._backends: dict[tuple[str, str], Backend] = {}

    @cached_property
    def recipe(self) -> Recipe:
        return self.config.recipe_spec

    @cached_property
    def task(self) -> Task:
        return get_task(self.recipe.task)

    @cached_property
    def family(self) -> Family:
        return get_family(self.recipe.family)

    @cached_property
    def prepared(self) -> dict[str, Any]:
        """What `prepare` recorded in this run folder (empty before it ran)."""
        return read_json(self.ws.prepare_json) if self.ws.prepare_json.is_file() else {}

    @cached_property
    def checkpoint(self) -> Checkpoint:
        """--checkpoint, else the one this run folder was prepared with, else the recipe's."""
        spec = self.config.checkpoint or self.prepared.get("checkpoint")
        return resolve_checkpoint(spec, self.recipe, self.family, self.task)

    def _features(self) -> Features:
        return Features.load(self.ws.features)

    def _check_seq_lens(self, option: str, seq_lens: tuple[int, ...]) -> None:
        limit = getattr(self.checkpoint.config, "max_position_embeddings", None)
        too_long = [n for n in seq_lens if limit is not None and n > limit]
        if too_long:
            raise ConfigError(f"{option} {too_long[0]} is above the model's maximum of {limit} tokens")

    def _examples(self) -> list[Any]:
        if not self.ws.examples.is_file():
            raise ArtifactError(f"{self.ws.examples}: no prepared examples; run `encoderzoo prepare` first")
        return self.task.load_examples(self.ws.examples)

    # -- stages ---------------------------------------------------------------------------------

    def prepare(self) -> dict[str, Any]:
        cfg = self.config
        data = resolve_data(self.recipe, cfg.data, cfg.cache_dir)
        step(f"prepare: reading {data}")
        examples = self.task.read(data, limit=cfg.limit)
        seq_len = cfg.effective_seq_len
        self._check_seq_lens("--seq-len", (seq_len,))
        tokenizer = load_tokenizer(self.checkpoint)
        features = self.task.encode(examples, tokenizer, seq_len=seq_len, input_names=self.family.input_names)
        self.task.save_examples(examples, self.ws.examples)
        features.save(self.ws.features)
        self.__dict__.pop("prepared", None)
        info = {
            "recipe": self.recipe.name, "task": self.task.name, "data": str(data),
            "examples": len(examples), "features": len(features), "seq_len": seq_len,
            "mean_tokens": round(float(features.lengths.mean()), 2),
            "max_tokens": int(features.lengths.max()),
            "at_seq_len": int((features.lengths >= seq_len).sum()),  # possibly truncated
            "checkpoint": self.checkpoint.location,
        }
        write_json(self.ws.prepare_json, info)
        step(f"prepare: {len(examples)} examples, mean {info['mean_tokens']} tokens")
        return info

    def export(self) -> dict[str, Any]:
        features = self._features()
        step("export: tracing to ONNX (TorchScript exporter, eager attention)")
        model = load_model(self.checkpoint, self.task, attn_implementation="eager")
        for derived in (self.ws.onnx_optimized, self.ws.optimize_json):  # built from the old export
            derived.unlink(missing_ok=True)
        seconds = export_onnx(model, features, self.ws.onnx, output_axes=self.task.output_axes)
        cases = parity_cases(features)
        expected = [torch_outputs(model, case.feeds, self.task.output_names) for case in cases]
        save_parity_cases(self.ws.parity_inputs, cases, expected)
        parity = check_parity(self.ws.onnx, cases, expected, self.recipe.export_atol)
        info = {
            "opset": OPSET, "seconds": round(seconds, 2), "file": self.ws.onnx.name,
            "bytes": self.ws.onnx.stat().st_size, **_parity_summary(parity),
        }
        write_json(self.ws.export_json, info)
        step(f"export: {self.ws.onnx.name}, parity max |Δ| {info['max_abs_diff']:.2g}")
        return info

    def optimize(self) -> dict[str, Any]:
        if not self.ws.onnx.is_file():
            raise ArtifactError(f"{self.ws.onnx}: no exported model; run `encoderzoo export` first")
        step("optimize: ONNX Runtime transformer optimizer")
        result = optimize_onnx(self.ws.onnx, self.ws.onnx_optimized,
                               model_type=self.family.ort_model_type, config=self.checkpoint.config)
        cases, expected = load_parity_cases(self.ws.parity_inputs)
        parity = check_parity(self.ws.onnx_optimized, cases, expected, self.recipe.export_atol)
        info = {
            "optimizer": "onnxruntime.transformers", "model_type": self.family.ort_model_type,
            "file": self.ws.onnx_optimized.name, "fused_ops": result.fused_ops,
            "seconds": round(result.seconds, 2), **_parity_summary(parity),
        }
        write_json(self.ws.optimize_json, info)
        fused = ", ".join(f"{op} {n}" for op, n in result.fused_ops.items()) or "nothing"
        step(f"optimize: fused {fused}; parity max |Δ| {info['max_abs_diff']:.2g}")
        return info

    def backend(self, name: str, precision: str) -> Backend:
        key = (name, precision)
        if key not in self._backends:
            context = BackendContext(
                checkpoint=self.checkpoint, task=self.task, onnx_path=self.ws.graph(),
                threads=self.config.threads, providers=self.config.providers,
            )
            self._backends[key] = create_backend(name, precision, context)
        return self._backends[key]

    def infer(self) -> dict[str, Any]:
        features, examples = self._features(), self._examples()
        sequence_outputs = frozenset(
            name for name, axes in self.task.output_axes.items() if 1 in axes)
        runs = []
        for name, precision in self.config.backend_runs:
            backend = self.backend(name, precision)
            start = time.perf_counter()
            outputs = run_inference(backend, features, batch_size=self.config.batch_size,
                                    padding=self.config.padding, sequence_outputs=sequence_outputs)
            seconds = time.perf_counter() - start
            save_outputs(self.ws.outputs(name, precision), features.example_ids, outputs)
            self.task.write_predictions(examples, outputs, self.ws.predictions(name, precision))
            runs.append({
                "backend": name, "precision": precision, "seconds": round(seconds, 3),
                "examples_per_s": round(len(features) / seconds, 2),
                "batch_size": self.config.batch_size, "padding": self.config.padding,
                "settings": backend.settings(),
                "outputs": str(self.ws.outputs(name, precision).relative_to(self.ws.root)),
                "predictions": str(self.ws.predictions(name, precision).relative_to(self.ws.root)),
            })
        info = {"examples": len(features), "runs": runs}
        write_json(self.ws.infer_json, info)
        return info

    def score(self) -> dict[str, Any]:
        if not self.ws.infer_json.is_file():
            raise ArtifactError(f"{self.ws.infer_json}: no inference results; run `encoderzoo infer` first")
        examples = self._examples()
        outputs = {}
        for run in read_json(self.ws.infer_json)["runs"]:
            ids, out = load_outputs(self.ws.root / run["outputs"])
            if list(ids) != [e.id for e in examples]:
                raise ArtifactError(f"{run['outputs']}: outputs do not match the prepared examples; "
                                    "run infer again")
            outputs[(run["backend"], run["precision"])] = out
        metrics = {key: self.task.score(examples, out) for key, out in outputs.items()}
        reference = outputs.get(REFERENCE_BACKEND)
        agreement = {} if reference is None else {
            key: {"agreement": self.task.agreement(out, reference),
                  "max_abs_diff": output_drift(out, reference)}
            for key, out in outputs.items() if key != REFERENCE_BACKEND
        }
        metric = self.task.metric_names[0]
        rows = accuracy_rows(metrics, agreement, metric=metric,
                             recipe_reference=self.recipe.reference.get(metric),
                             gate=self.config.effective_gate)
        info = {"metric": metric, "examples": len(examples),
                "gate_passed": all(r.gate_passed for r in rows), "rows": [r.to_json() for r in rows]}
        write_json(self.ws.accuracy_json, info)
        for r in rows:
            status = "pass" if r.gate_passed else "FAIL"
            step(f"score: {r.backend} {r.precision} {metric} {r.metrics[metric]:.4f} (gate {status})")
        return info

    def bench(self) -> dict[str, Any]:
        settings = self.config.bench_settings()
        self._check_seq_lens("--seq-lens", settings.seq_lens)
        backends = [self.backend(n, p) for n, p in self.config.backend_runs]
        rows = sweep(backends, self.family.input_names, int(self.checkpoint.config.vocab_size), settings)
        info = {
            "settings": settings.__dict__ | {"inputs": "full-length synthetic sequences, no padding"},
            "backends": {f"{b.name}:{b.precision}": b.settings() for b in backends},
            "environment": environment(self.config.threads),
            "rows": [r.to_json() for r in rows],
        }
        write_json(self.ws.benchmark_json, info)
        return info

    def report(self) -> dict[str, Any]:
        report = {
            "encoderzoo": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "recipe": {
                "name": self.recipe.name, "description": self.recipe.description,
                "task": self.recipe.task, "family": self.recipe.family,
                "seq_len": self.prepared.get("seq_len", self.config.effective_seq_len),
                "reference": dict(self.recipe.reference),
                "gate": self.config.effective_gate, "notes": list(self.recipe.notes),
            },
            "checkpoint": {
                "location": self.checkpoint.location, "local": self.checkpoint.is_local,
                "model_type": self.checkpoint.model_type,
                "architectures": getattr(self.checkpoint.config, "architectures", None),
                "stored_dtype": str(getattr(self.checkpoint.config, "dtype", None) or "unknown")
                .removeprefix("torch."),
                "fingerprint": fingerprint(self.checkpoint),
            },
            "config": self.config.to_json(),
        }
        report |= write_report(self.ws, report, environment(self.config.threads))
        step(f"report: {self.ws.report_md.name}, {self.ws.report_json.name} written")
        return report

    # -- the whole chain --------------------------------------------------------------------------

    def run_all(self) -> bool:
        """Every stage in order; returns whether all accuracy gates passed."""
        self.prepare()
        self.export()
        if self.config.optimize:
            self.optimize()
        self.infer()
        passed = bool(self.score()["gate_passed"])
        if self.config.bench:
            self.bench()
        self.report()
        return passed


def run(config: RunConfig) -> tuple[bool, Path]:
    """The whole chain into `config.out`, built under a temporary name and renamed into place
    only when complete. Returns (all gates passed, report path)."""
    with atomic_dir(config.out) as tmp:
        passed = Pipeline(config, Workspace(tmp)).run_all()
    return passed, Workspace(config.out).report_md


def _parity_summary(results: list[ParityResult]) -> dict[str, Any]:
    return {"max_abs_diff": max(r.max_abs_diff for r in results),
            "parity": [r.to_json() for r in results]}
