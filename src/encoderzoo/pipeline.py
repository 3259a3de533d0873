"""The stages in order: prepare → export → optimize → infer → score → bench → report.

Each stage reads its inputs from the run folder (a Workspace) and writes its outputs there, so
that the stages can run one at a time from the CLI or all together with `run`."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from encoderzoo import __version__, quantize, triage
from encoderzoo.backends import (
    Backend,
    BackendContext,
    create_backend,
    get_backend,
    parse_backend_options,
    resolve_runs,
)
from encoderzoo.bench import sweep, synthetic_features
from encoderzoo.cache import file_hash, files_hash, make_key, recorded, recorded_key, versions
from encoderzoo.checkpoints import (
    Checkpoint,
    content_hashes,
    default_checkpoint,
    fingerprint,
    load_model,
    load_tokenizer,
    random_weights_record,
    resolve_checkpoint,
    trainer_results,
)
from encoderzoo.config import RunConfig, parse_reference
from encoderzoo.console import step
from encoderzoo.environment import environment, peak_memory
from encoderzoo.errors import ArtifactError, ConfigError, EncoderzooError, with_note
from encoderzoo.export import (
    OPSET,
    ParityResult,
    check_onnx_file,
    check_parity,
    export_onnx,
    load_parity_cases,
    parity_cases,
    save_parity_cases,
    torch_outputs,
)
from encoderzoo.families import Family, get_family
from encoderzoo.features import Features
from encoderzoo.fileio import check_replaceable, mark, publish, read_json, write_json
from encoderzoo.infer import Shards, load_outputs, run_inference, save_outputs
from encoderzoo.optimize import optimize_onnx
from encoderzoo.random_weights import build_random_checkpoint, random_weights_key
from encoderzoo.recipes import Recipe
from encoderzoo.report import write_report
from encoderzoo.scoring import (
    REFERENCE_BACKEND,
    Gate,
    Reference,
    accuracy_rows,
    agreement_of,
    gate_failures,
    output_drift,
)
from encoderzoo.sources import describe_data, given_splits, resolve_data
from encoderzoo.tasks import get_task
from encoderzoo.tasks.base import Task, read_splits, split_key
from encoderzoo.workspace import (
    RUN,
    Workspace,
    check_run_folder,
    clean_temporary,
    clear,
    has_work,
    locked,
    partial_folder,
    recover,
    seed_from,
)

TRIAGED = ("onnx-int8", "onnx-int8-static")  # the artifacts triage can re-quantize
TRIAGE_ROWS = 32  # rows (spread over the data) the drift of each quantized node is measured on


class Pipeline:
    def __init__(self, config: RunConfig, workspace: Workspace | None = None) -> None:
        self.config = config
        self.ws = workspace or Workspace(config.out)
        self._backends: dict[tuple[str, str], Backend] = {}
        self._loaded: dict[str, Any] = {}  # prepared features and examples, read once

    @cached_property
    def recipe(self) -> Recipe:
        return self.config.recipe_spec

    @cached_property
    def family(self) -> Family:
        return get_family(self.recipe.family)

    @cached_property
    def prepared(self) -> dict[str, Any]:
        """What `prepare` recorded in this run folder (empty before it ran)."""
        return read_json(self.ws.prepare_json) if self.ws.prepare_json.is_file() else {}

    @cached_property
    def checkpoint(self) -> Checkpoint:
        """A random model (--random-weights), --checkpoint, the one this run folder was
        prepared with, or the recipe's."""
        spec = self.config.checkpoint
        if self.config.random_weights:
            spec = str(self._random_checkpoint(self.config.random_weights))
        elif spec is None and self.prepared.get("checkpoint"):
            recorded = self.prepared["checkpoint"]
            spec = str(self.ws.root / recorded) if self.prepared.get("checkpoint_in_run") else recorded
            if self.prepared.get("revision"):  # the hub snapshot it was prepared with, not a newer one
                spec = f"{recorded}@{self.prepared['revision']}"
        return resolve_checkpoint(spec, self.recipe, self.family,
                                  trust_remote_code=self.config.trust_remote_code)

    def _random_checkpoint(self, size: str) -> Path:
        """The run folder's random model, rebuilt unless it was built with this size, recipe
        architecture, task head and tokenizer (its files' bytes)."""
        folder = self.ws.random_checkpoint
        key = random_weights_key(recipe=self.recipe, family=self.family, task=get_task(self.recipe.task),
                                 size=size, tokenizer=self.config.tokenizer)  # type: ignore[arg-type]
        if random_weights_record(folder).get("key") != key:
            step(f"random weights: building a {size} {self.recipe.architecture} model")
            build_random_checkpoint(folder, recipe=self.recipe, family=self.family,
                                    task=get_task(self.recipe.task), size=size,  # type: ignore[arg-type]
                                    tokenizer=self.config.tokenizer, key=key)
        return folder

    @cached_property
    def task(self) -> Task:
        """The recipe's task, bound to the checkpoint's labels."""
        return get_task(self.recipe.task).for_model(
            self.checkpoint.config, self.checkpoint.location, self.config.label_names)

    @cached_property
    def device(self) -> str:
        """"cpu" or "cuda": --device, with auto resolved by looking for a GPU."""
        from encoderzoo.devices import resolve_device

        return resolve_device(self.config.device)

    @cached_property
    def _resolved_runs(self) -> tuple[list[tuple[str, str]], list[str]]:
        from encoderzoo.devices import Machine

        return resolve_runs(self.config.backends, Machine.here(self.device))

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(backend, precision) pairs this machine runs, in the order given (see resolve_runs)."""
        return self._resolved_runs[0]

    def validate(self) -> list[str]:
        """Everything that can be checked before the first stage writes anything (device,
        precision x device, bf16 support, sequence lengths; options are checked by RunConfig):
        raises the ConfigError a later stage would, returns notes on default precisions left out."""
        self._check_seq_lens("--seq-len", (self.config.effective_seq_len,))
        if self.config.bench:
            self._check_seq_lens("--seq-lens", self.config.bench_settings().seq_lens)
        return self._resolved_runs[1]

    # -- keys of the artifact cache (see encoderzoo.cache) ---------------------------------------

    @cached_property
    def hashes(self) -> dict[str, str | None]:
        return content_hashes(self.checkpoint)

    def prepare_options(self, files: dict[str, Path]) -> dict[str, Any]:
        """What prepared data depend on besides the checkpoint: recorded, so that a later stage
        can recompute the key with its own checkpoint (see check_prepared)."""
        return {"task": self.recipe.task, "data": {s: file_hash(p) for s, p in files.items()},
                "seq_len": self.config.effective_seq_len, "limit": self.config.limit,
                "label_names": self.config.label_names, "inputs": self.family.input_names}

    def prepare_key(self, options: dict[str, Any]) -> str:
        return make_key("prepare", **options, **self.hashes, libraries=versions("tokenizers", "transformers"))

    def check_prepared(self) -> None:
        """Refuse prepared data made for another checkpoint (or tokenizer, or library versions):
        the key is recomputed from the recorded options and this run's checkpoint, never taken
        from the record alone."""
        recorded = self.prepared
        options = recorded.get("options")
        if options is None or self.prepare_key(options) != recorded.get("key"):
            raise ArtifactError(
                f"{self.ws.prepare_json}: the prepared data were made for another checkpoint, tokenizer "
                f"or library versions than {self.checkpoint.location}; run `encoderzoo prepare` again "
                "with this checkpoint (or `encoderzoo run`)")

    @cached_property
    def export_key(self) -> str:
        return make_key("export", model=self.hashes["model"], kind=self.task.model_kind, opset=OPSET,
                        outputs=self.task.output_axes, inputs=self.family.input_names,
                        libraries=versions("torch", "transformers", "onnx"))

    @cached_property
    def optimize_key(self) -> str:
        return make_key("optimize", export=self.export_key, model_type=self.family.ort_model_type,
                        timeout=self.config.optimize_timeout, libraries=versions("onnxruntime"))

    def quantize_key(self, kind: str) -> str:
        """Triage's float nodes are not part of the key: a triaged model replaces the plain one."""
        from_fused = kind in ("onnx-int8", "onnx-fp16")
        calibrated = not from_fused
        source = self.artifact_key("onnx-fused") if from_fused else self.export_key
        calibration = (self.prepared.get("key", "synthetic") if self.ws.features.is_file() else "synthetic") \
            if calibrated else None
        return make_key("quantize", kind=kind, source=source, calibration=calibration,
                        size=self.config.calibration_size if calibrated else None,
                        libraries=versions("onnxruntime", "onnx", "openvino", "nncf"))

    def artifact_key(self, kind: str) -> str | None:
        if kind == "checkpoint":
            return self.hashes["model"]
        if kind == "onnx":
            return self.export_key
        if kind == "onnx-fused":
            return self.optimize_key if self.graph() == self.ws.onnx_optimized else self.export_key
        excluded = recorded(self.ws.quantize_json, "excluded_nodes", entry=kind) or []
        return make_key("quantized", key=self.quantize_key(kind), excluded=excluded)

    def infer_key(self, name: str, precision: str) -> str:
        return make_key("infer", backend=name, precision=precision,
                        artifact=self.artifact_key(get_backend(name).artifacts[precision]),
                        prepared=self.prepared.get("key"), batching=self.config.batching.__dict__,
                        engine=self.config.engine,
                        options=parse_backend_options(self.config.backend_options).get(name, {}),
                        device=self.device, providers=self.providers if name == "onnxruntime" else None)

    @cached_property
    def providers(self) -> list[str]:
        """The ONNX Runtime providers this run asks for, resolved from --providers and the device."""
        import onnxruntime as ort

        from encoderzoo.devices import choose_providers

        return choose_providers(self.device, self.config.providers, ort.get_available_providers(),
                                explicit_device=self.config.device == "cuda")[0]

    def _exported(self) -> bool:
        return self._current(self.ws.export_json, self.export_key, self.ws.onnx)

    def _optimized(self) -> bool:
        return self._current(self.ws.optimize_json, self.optimize_key)

    @staticmethod
    def _current(record: Path, key: str, *files: Path, entry: str | None = None) -> bool:
        """Whether a stage's outputs exist and were built from exactly these inputs."""
        return recorded_key(record, entry=entry) == key and all(f.is_file() for f in files)

    def _features(self) -> Features:
        if "features" not in self._loaded:
            if self.ws.prepare_json.is_file():
                self.check_prepared()
            self._loaded["features"] = Features.load(self.ws.features)
        return self._loaded["features"]  # type: ignore[no-any-return]

    def _check_seq_lens(self, option: str, seq_lens: tuple[int, ...]) -> None:
        """Refuse lengths the position embeddings cannot hold (for random weights, before their
        model is built: from the architecture's config)."""
        from types import SimpleNamespace

        from encoderzoo.random_weights import architecture_config

        size = self.config.random_weights
        config = SimpleNamespace(**architecture_config(self.recipe, self.family, size)) if size \
            else self.checkpoint.config  # type: ignore[arg-type]
        limit, why = self.family.max_tokens(config)
        too_long = [n for n in seq_lens if limit is not None and n > limit]
        if too_long:
            raise ConfigError(f"{option} {too_long[0]} is above the model's maximum of {limit} tokens{why}")

    def _examples(self) -> list[Any]:
        if "examples" not in self._loaded:
            if not self.ws.examples.is_file():
                raise ArtifactError(
                    f"{self.ws.examples}: no prepared examples; run `encoderzoo prepare` first")
            self.check_prepared()
            self._loaded["examples"] = self.task.load_examples(self.ws.examples)
        return self._loaded["examples"]  # type: ignore[no-any-return]

    # -- stages ---------------------------------------------------------------------------------

    def prepare(self) -> dict[str, Any]:
        cfg = self.config
        files = resolve_data(self.recipe, cfg.data, cfg.cache_dir)
        step(f"prepare: reading {', '.join(f'{split}: {path}' for split, path in files.items())}")
        examples, results = read_splits(get_task(self.recipe.task), files, limit=cfg.limit)
        options = self.prepare_options(files)
        key = self.prepare_key(options)  # after reading: bad data fails before a model is built
        if self._current(self.ws.prepare_json, key, self.ws.features, self.ws.examples):
            step(f"prepare: reusing {self.ws.features.parent.name}/ (same data, tokenizer and options)")
            return self.prepared
        if self.ws.prepare_json.is_file():
            step("prepare: the data prepared here were made with another checkpoint, data or options; "
                 "preparing again")
        self._invalidate(self.ws.infer_json, *self.ws.results())
        splits = {split: {"data": str(files[split]), "examples": len(result.examples),
                          "skipped_unlabeled": result.skipped} for split, result in results.items()}
        seq_len = cfg.effective_seq_len
        self._check_seq_lens("--seq-len", (seq_len,))
        tokenizer = load_tokenizer(self.checkpoint)
        features = self.task.encode(examples, tokenizer, seq_len=seq_len, input_names=self.family.input_names)
        self.task.save_examples(examples, self.ws.examples)
        features.save(self.ws.features)
        self._loaded = {"features": features, "examples": examples}
        location = Path(self.checkpoint.location)
        in_run = self.checkpoint.is_local and location.is_relative_to(self.ws.root.resolve())
        info = {
            "key": key, "options": options, "recipe": self.recipe.name, "task": self.recipe.task,
            "splits": splits,
            "data": ", ".join(s["data"] for s in splits.values()),
            "examples": len(examples), "features": len(features), "seq_len": seq_len,
            "mean_tokens": round(float(features.lengths.mean()), 2),
            "max_tokens": int(features.lengths.max()),
            "at_seq_len": int((features.lengths >= seq_len).sum()),  # possibly truncated
            "checkpoint": str(location.relative_to(self.ws.root.resolve())) if in_run
            else self.checkpoint.location,
            "checkpoint_in_run": in_run, "revision": self.checkpoint.revision,
            "model_labels": list(getattr(self.task, "model_labels", None) or []),
        }
        write_json(self.ws.prepare_json, info)
        self.__dict__.pop("prepared", None)
        step(f"prepare: {len(examples)} examples, mean {info['mean_tokens']} tokens")
        return info

    def export(self, features: Features | None = None) -> dict[str, Any]:
        """Export and check parity on the prepared features (or on `features`), unless the run
        folder holds the export of these exact weights and options."""
        if self._current(self.ws.export_json, self.export_key, self.ws.onnx, self.ws.parity_inputs):
            step(f"export: reusing {self.ws.onnx.name} (same checkpoint content and options)")
            return read_json(self.ws.export_json)  # type: ignore[no-any-return]
        inputs = "the prepared examples" if features is None else "synthetic inputs"
        features = features or self._features()
        step("export: tracing to ONNX (TorchScript exporter, eager attention)")
        model = load_model(self.checkpoint, self.task, attn_implementation="eager")
        for derived in self.ws.derived_graphs():  # built from the old export
            derived.unlink(missing_ok=True)
        seconds = export_onnx(model, features, self.ws.onnx, output_axes=self.task.output_axes)
        cases = parity_cases(features)
        expected = [torch_outputs(model, case.feeds, self.task.output_names) for case in cases]
        save_parity_cases(self.ws.parity_inputs, cases, expected)
        parity = check_parity(self.ws.onnx, cases, expected, self.recipe.export_atol)
        info = {
            "key": self.export_key, "sha256": self._artifact_hash(self.ws.onnx), "opset": OPSET,
            "seconds": round(seconds, 2), "file": self.ws.onnx.name,
            "bytes": self.ws.onnx.stat().st_size, "parity_inputs": inputs, **_parity_summary(parity),
        }
        write_json(self.ws.export_json, info)
        step(f"export: {self.ws.onnx.name}, parity max |Δ| {info['max_abs_diff']:.2g}")
        return info

    def optimize(self) -> dict[str, Any]:
        if not self.ws.onnx.is_file():
            raise ArtifactError(f"{self.ws.onnx}: no exported model; run `encoderzoo export` first")
        if self._optimized():
            step("optimize: reusing the result for this export")
            return read_json(self.ws.optimize_json)  # type: ignore[no-any-return]
        self._verify(self.ws.onnx)
        for derived in (self.ws.onnx_optimized, self.ws.onnx_int8, self.ws.onnx_fp16):  # from the old fusion
            derived.unlink(missing_ok=True)
        step(f"optimize: ONNX Runtime transformer optimizer (at most {self.config.optimize_timeout:g} s)")
        result = optimize_onnx(self.ws.onnx, self.ws.onnx_optimized, model_type=self.family.ort_model_type,
                               config=self.checkpoint.config, timeout_s=self.config.optimize_timeout)
        info: dict[str, Any] = {
            "key": self.optimize_key, "optimizer": "onnxruntime.transformers",
            "model_type": self.family.ort_model_type,
            "fused": result.fused, "fused_ops": result.fused_ops,
            "seconds": round(result.seconds, 2), "reason": result.reason,
        }
        if result.fused:
            cases, expected = load_parity_cases(self.ws.parity_inputs)
            parity = check_parity(self.ws.onnx_optimized, cases, expected, self.recipe.export_atol)
            info |= {"file": self.ws.onnx_optimized.name,
                     "sha256": self._artifact_hash(self.ws.onnx_optimized), **_parity_summary(parity)}
            fused = ", ".join(f"{op} {n}" for op, n in result.fused_ops.items()) or "nothing"
            step(f"optimize: fused {fused}; parity max |Δ| {info['max_abs_diff']:.2g}")
        else:
            info["file"] = self.ws.onnx.name
            step(f"optimize: {result.reason}; the unfused graph {self.ws.onnx.name} stays in use")
        write_json(self.ws.optimize_json, info)
        return info

    def artifact(self, kind: str) -> Path | None:
        """The file a backend runs (a key of backends.ARTIFACTS), quantized on first use; None
        for the PyTorch checkpoint or when the graph it comes from was not exported yet."""
        if kind == "checkpoint":
            return None
        if kind == "onnx-fused":
            return self.graph()
        raw = self.ws.onnx if self.ws.onnx.is_file() else None
        if kind == "onnx" or raw is None:
            return raw
        path = self.ws.quantized(kind)
        if not self._current(self.ws.quantize_json, self.quantize_key(kind), path, entry=kind):
            self._quantize(kind, path)
        return path

    @staticmethod
    def _artifact_files(path: Path) -> list[Path]:
        """An artifact's files: an OpenVINO IR is its .xml and .bin."""
        return [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]

    def _artifact_hash(self, path: Path) -> str:
        """SHA-256 of an artifact's file (`sha256sum` prints the same), or over an IR's files."""
        files = self._artifact_files(path)
        return file_hash(path) if len(files) == 1 else files_hash(files)

    def _verify(self, path: Path) -> str:
        """Before a runtime opens an artifact: its bytes must be those recorded when it was built
        (SHA-256, streamed: no copy of the model in memory); without a record, the ONNX file is
        parsed and checked (see export.check_onnx_file). Returns the artifact's SHA-256."""
        records = {self.ws.onnx: (self.ws.export_json, None),
                   self.ws.onnx_optimized: (self.ws.optimize_json, None)}
        records |= {self.ws.quantized(k): (self.ws.quantize_json, k)
                    for k in ("onnx-int8", "onnx-int8-static", "openvino-int8", "onnx-fp16")}
        record, entry = records.get(path, (None, None))
        sha256 = recorded(record, "sha256", entry=entry) if record is not None else None
        files = self._artifact_files(path)
        if sha256 is None:
            if path.suffix == ".onnx":
                check_onnx_file(path)
            return self._artifact_hash(path)
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise ArtifactError(f"{missing[0]}: missing; run the stage that builds it again (or delete the "
                                "run folder's model/ and rerun)")
        if self._artifact_hash(path) != sha256:
            raise ArtifactError(f"{path}: not the file encoderzoo built and checked (its SHA-256 changed: "
                                "truncated, corrupt or replaced); export it again (`encoderzoo export`, or "
                                "delete it and rerun)")
        return str(sha256)

    def graph(self) -> Path | None:
        """The ONNX graph ONNX Runtime runs: the fused one when this export was optimized."""
        if self.config.optimize and self.ws.onnx_optimized.is_file() and self._optimized():
            return self.ws.onnx_optimized
        return self.ws.onnx if self.ws.onnx.is_file() else None

    def _quantize(self, kind: str, path: Path, exclude: Sequence[str] = ()) -> None:
        """Build (or rebuild, leaving the `exclude` nodes in float) an int8 artifact."""
        if kind in ("onnx-int8", "onnx-fp16"):  # no calibration; from the fused graph
            source = self.graph() or self.ws.onnx
            step(f"quantize: {kind} from {source.name}")
            info = quantize.ort_dynamic(source, path, exclude=exclude) if kind == "onnx-int8" \
                else quantize.ort_fp16(source, path)
        else:  # calibrated, from the unfused export
            prepared = self.ws.features.is_file()
            features = self._features() if prepared else synthetic_features(
                self.family.input_names, int(self.checkpoint.config.vocab_size), 128)
            # one row per calibration item: NNCF's peak memory grows with the item's size (base
            # BERT at SQuAD windows: 2.0 GB with rows, 4.6 GB with batches of 8), not their number
            feeds = quantize.calibration_feeds(features, self.config.calibration_size, batch_size=1)
            step(f"quantize: {kind} from {self.ws.onnx.name}, calibrated on {len(feeds)} batches")
            if kind == "onnx-int8-static":
                info = quantize.ort_static(self.ws.onnx, path, feeds, exclude=exclude)
            else:
                info = quantize.openvino_int8(self.ws.onnx, path, feeds)
            info["calibration"] = "prepared examples spread over the data" if prepared else "synthetic inputs"
        info["bytes"] = sum(f.stat().st_size for f in (path, path.with_suffix(".bin")) if f.is_file())
        info["key"] = self.quantize_key(kind)
        info["sha256"] = self._artifact_hash(path)
        recorded = read_json(self.ws.quantize_json) if self.ws.quantize_json.is_file() else {}
        write_json(self.ws.quantize_json, recorded | {kind: info})

    def backend(self, name: str, precision: str) -> Backend:
        key = (name, precision)
        if key not in self._backends:
            graph = self.artifact(get_backend(name).artifacts[precision])
            graph_hash = self._verify(graph) if graph is not None else None
            cfg = self.config
            context = BackendContext(
                checkpoint=self.checkpoint, task=self.task, graph=graph,
                threads=cfg.threads, providers=cfg.providers,
                options=parse_backend_options(cfg.backend_options).get(name, {}),
                device=self.device, explicit_device=cfg.device == "cuda",
                batch_size=max(cfg.batch_size, *cfg.bench_settings().batch_sizes),
                seq_len=max(self.prepared.get("seq_len", cfg.effective_seq_len),
                            *cfg.bench_settings().seq_lens),
                buckets=tuple(sorted(cfg.buckets)), cache_dir=cfg.cache_dir,
                input_names=self.family.input_names, graph_hash=graph_hash,
            )
            self._backends[key] = create_backend(name, precision, context)
        return self._backends[key]

    def infer(self) -> dict[str, Any]:
        self.ensure_graph()
        runs = [self._infer_one(name, precision)[0] for name, precision in self.runs]
        info = {"examples": len(self._examples()), "runs": runs}
        write_json(self.ws.infer_json, info)
        return info

    def _infer_one(self, name: str, precision: str) -> tuple[dict[str, Any], list[Any]]:
        """Every example through one backend and precision; outputs and predictions saved.
        A finished run with the same key is reused; an unfinished one resumes from its shards
        with --resume. Returns what infer.json records of the run, and the predictions."""
        features, examples = self._features(), self._examples()
        key = self.infer_key(name, precision)
        record, final = self.ws.run_record(name, precision), self.ws.outputs(name, precision)
        if self._current(record, key, final):
            step(f"infer: reusing {final.name} (same model, data and batching)")
            run = read_json(record) | {"reused": True}  # its timings are an earlier process's
            _, outputs = load_outputs(final)
            return run, self.task.predict(examples, features, outputs)
        self._invalidate(record, self.ws.infer_json, *self.ws.results())
        sequence_outputs = frozenset(n for n, axes in self.task.output_axes.items() if 1 in axes)
        shards = Shards(self.ws.output_shards(name, precision), key, len(features), self.config.shard_size)
        done = shards.start(resume=self.config.resume)
        if len(done):
            step(f"infer: resuming {name} {precision}: {len(done)} of {len(features)} rows already done")
        remaining = np.setdiff1d(np.arange(len(features)), done)
        timing: dict[str, Any] = {}
        if self.config.engine == "ray":
            start = time.perf_counter()
            settings = self._infer_on_ray(name, precision, features, remaining, shards, len(done),
                                          sequence_outputs)
            timing["pass_s"] = time.perf_counter() - start
        else:
            start = time.perf_counter()
            self.artifact(get_backend(name).artifacts[precision])  # built on first use
            timing["build_s"] = time.perf_counter() - start
            start = time.perf_counter()
            backend = self.backend(name, precision)
            timing["setup_s"] = time.perf_counter() - start  # verification, session / compilation

            def on_batch(rows: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
                timing.setdefault("first_batch_s", time.perf_counter() - start)
                shards.add(rows, outputs)

            start = time.perf_counter()
            run_inference(backend, features, self.config.batching, sequence_outputs=sequence_outputs,
                          rows=remaining, on_batch=on_batch, done=len(done))
            timing["pass_s"] = time.perf_counter() - start
            if not len(done) and self.config.e2e_runs:
                rate = len(features) / max(timing["pass_s"], 1e-9)
                timing["warm"] = self._warm_passes(backend, features, sequence_outputs, rate)
            settings = backend.settings()
            del backend
            self._release(name, precision)
        outputs = shards.collect()
        save_outputs(final, features.example_ids, outputs)
        predictions_file = self.ws.predictions(name, precision, self.task.predictions_suffix)
        predictions = self.task.predict(examples, features, outputs)
        self.task.write_predictions(examples, predictions, outputs, predictions_file)
        run = {
            "key": key, "backend": name, "precision": precision,
            "timing": {k: round(v, 4) if isinstance(v, float) else v for k, v in timing.items()},
            "resumed_rows": len(done), "windows": len(features), "examples": len(examples),
            "batching": self.config.batching.__dict__, "settings": settings,
            "outputs": str(final.relative_to(self.ws.root)),
            "predictions": str(predictions_file.relative_to(self.ws.root)),
        }
        write_json(record, run)
        shards.remove()
        return run, predictions

    def _warm_passes(self, backend: Backend, features: Features, sequence_outputs: frozenset[str],
                     rate: float) -> dict[str, Any]:
        """The end-to-end figure: passes over the prepared rows right after the real one, the
        backend warm, timed from the first batch in to the last output out; the median of
        --e2e-runs passes. A pass takes at most --e2e-rows rows, spread evenly over the data, and
        no more than the real pass (at `rate` rows/s) ran in --e2e-seconds (at least 4 batches)."""
        cfg = self.config
        budget = max(4 * cfg.batch_size, int(rate * cfg.e2e_seconds))
        count = min(len(features), cfg.e2e_rows, budget)
        rows = None
        if count < len(features):
            rows = np.unique(np.linspace(0, len(features) - 1, count).astype(np.int64))
        count = len(features) if rows is None else len(rows)
        times = []
        for _ in range(self.config.e2e_runs):
            start = time.perf_counter()
            run_inference(backend, features, self.config.batching, sequence_outputs=sequence_outputs,
                          rows=rows, progress=False)
            times.append(time.perf_counter() - start)
        median = float(np.median(times))
        return {"runs": len(times), "rows": count, "median_s": median, "rows_per_s": count / median,
                "seconds": [round(t, 4) for t in times]}

    def _release(self, name: str, precision: str) -> None:
        """Free a backend (its session, compiled model, weights) before the next one loads, and
        give the freed heap back to the system (glibc keeps it otherwise: 940 -> 430 MiB after an
        ONNX Runtime session of base BERT)."""
        import contextlib
        import ctypes
        import gc

        backend = self._backends.pop((name, precision), None)
        if hasattr(backend, "close"):
            backend.close()
        del backend
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)

    def _infer_on_ray(self, name: str, precision: str, features: Features, rows: np.ndarray, shards: Shards,
                      done: int, sequence_outputs: frozenset[str]) -> dict[str, Any]:
        """One backend over a Ray cluster's actors (see encoderzoo.ray_engine)."""
        from encoderzoo.console import progress_bar
        from encoderzoo.ray_engine import ActorSpec, run_ray

        cfg = self.config
        graph = self.artifact(get_backend(name).artifacts[precision])
        if graph is not None:
            self._verify(graph)
        spec = ActorSpec(
            backend=name, precision=precision, recipe=self.recipe.name, checkpoint=self.checkpoint.source,
            label_names=cfg.label_names, graph=str(graph.resolve()) if graph else None,
            threads=max(cfg.threads // cfg.ray_actors, 1), device=self.device, providers=cfg.providers,
            options=parse_backend_options(cfg.backend_options).get(name, {}), batching=cfg.batching,
            seq_len=features.seq_len, input_names=features.input_names,
            sequence_outputs=tuple(sorted(sequence_outputs)), trust_remote_code=cfg.trust_remote_code)
        step(f"infer: {name} {precision} on Ray, {cfg.ray_actors} actors"
             + (f" at {cfg.ray_address}" if cfg.ray_address else ""))
        with progress_bar() as bar:
            task = bar.add_task(f"{name} {precision} (ray)", total=len(features), completed=done)
            return run_ray(spec, features, rows, actors=cfg.ray_actors, address=cfg.ray_address,
                           on_batch=shards.add, progress=lambda n: bar.advance(task, n))

    @staticmethod
    def _invalidate(*paths: Path) -> None:
        """Remove results that a stage about to run makes stale, so none looks current."""
        for path in paths:
            path.unlink(missing_ok=True)

    def triage(self) -> dict[str, Any]:
        """For each int8 ONNX Runtime model below its gate: rank its quantized nodes by the
        drift they add on a calibration slice, then re-quantize leaving the worst 1, 2, 4, ...
        in float until the gate passes (at most a quarter of them). Rescores at the end."""
        accuracy = read_json(self.ws.accuracy_json)
        failing = [r for r in accuracy["rows"] if not r["gate_passed"] and r["baseline"] == "torch_fp32"
                   and get_backend(r["backend"]).artifacts[r["precision"]] in TRIAGED]
        if not failing:
            return {}
        features, examples = self._features(), self._examples()
        feeds = quantize.calibration_feeds(features, min(TRIAGE_ROWS, self.config.calibration_size),
                                           batch_size=1)  # rows one at a time: bounded memory
        torch_metrics = next(r["metrics"] for r in accuracy["rows"]
                             if (r["backend"], r["precision"]) == REFERENCE_BACKEND)
        _, torch_outputs_ = load_outputs(self.ws.outputs(*REFERENCE_BACKEND))
        torch_predictions = self.task.predict(examples, features, torch_outputs_)
        infer = read_json(self.ws.infer_json)
        results = {}
        for row in failing:
            name, precision = row["backend"], row["precision"]
            kind = get_backend(name).artifacts[precision]
            source, path, op_types = self._triage_source(kind)
            step(f"triage: ranking the quantized nodes of {path.name}")
            ranking = triage.rank_nodes(source, path, feeds, op_types=op_types,
                                        threads=self.config.threads)
            attempts = []
            for count in triage.exclusion_steps(len(ranking)):
                excluded = [d.exclude_as for d in ranking[:count]]
                self._quantize(kind, path, excluded)
                self._backends.pop((name, precision), None)
                run, predictions = self._infer_one(name, precision)
                infer["runs"] = [run if (r["backend"], r["precision"]) == (name, precision) else r
                                 for r in infer["runs"]]
                metrics = self.task.score(examples, predictions).metrics
                vs_torch = {"agreement": agreement_of(predictions, torch_predictions)}
                failures = gate_failures(metrics, torch_metrics, "torch fp32", vs_torch, self.gate)
                passed = not failures
                attempts.append({"float_nodes": count, "metrics": metrics, **vs_torch, "gate_passed": passed,
                                 "failures": failures})
                step(f"triage: {name} {precision} with {count} nodes in float: "
                     + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
                if passed:
                    break
            results[f"{name}:{precision}"] = {
                "before": row["metrics"], "candidates": len(ranking), "attempts": attempts,
                "float_nodes": excluded, "recovered": attempts[-1]["gate_passed"],
                "worst": [d.to_json() for d in ranking[:10]],
            }
        write_json(self.ws.infer_json, infer)
        write_json(self.ws.triage_json, results)
        self.score()
        return results

    def _triage_source(self, kind: str) -> tuple[Path, Path, tuple[str, ...] | None]:
        """(the float graph it was quantized from, the int8 graph, the operators covered)."""
        if kind == "onnx-int8":  # dynamic quantization of the fused graph
            return self.graph() or self.ws.onnx, self.ws.quantized(kind), None
        return self.ws.onnx, self.ws.quantized(kind), quantize.STATIC_OPS

    def score(self) -> dict[str, Any]:
        if not self.ws.infer_json.is_file():
            raise ArtifactError(f"{self.ws.infer_json}: no inference results; run `encoderzoo infer` first")
        features, examples = self._features(), self._examples()
        outputs, predictions = {}, {}
        for run in read_json(self.ws.infer_json)["runs"]:
            key = (run["backend"], run["precision"])
            ids, outputs[key] = load_outputs(self.ws.root / run["outputs"])
            if list(ids) != list(features.example_ids):
                raise ArtifactError(f"{run['outputs']}: outputs do not match the prepared features; "
                                    "run infer again")
            predictions[key] = self.task.predict(examples, features, outputs[key])
        scores = {key: self.task.score(examples, found) for key, found in predictions.items()}
        agreement = {}
        if REFERENCE_BACKEND in outputs:
            reference = predictions[REFERENCE_BACKEND]
            agreement = {
                key: {"agreement": agreement_of(found, reference),
                      "max_abs_diff": output_drift(outputs[key], outputs[REFERENCE_BACKEND])}
                for key, found in predictions.items() if key != REFERENCE_BACKEND
            }
        rows = accuracy_rows(scores, agreement, reference=self.reference, gate=self.gate)
        info = {"examples": len(examples), "random_weights": self.checkpoint.random_weights,
                "gate_passed": all(r.gate_passed for r in rows), "rows": [r.to_json() for r in rows]}
        write_json(self.ws.accuracy_json, info)
        for r in rows:
            values = ", ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
            verdict = "pass" if r.gate_passed else f"FAIL: {'; '.join(r.failures)}"
            step(f"score: {r.backend} {r.precision} {values} (gate {verdict})")
        return info

    @cached_property
    def reference(self) -> Reference | None:
        """What torch fp32 is gated against: --reference; the recipe's published score, for the
        recipe's own checkpoint only; else the checkpoint's recorded eval_results.json. None
        (torch fp32 is the reference) when there is none, and always with random weights."""
        if self.checkpoint.random_weights:
            return None
        splits = list(self.recipe.data)
        if self.config.reference:
            given = parse_reference(self.config.reference)
            known = [split_key(s, m, splits) for s in splits for m in self.task.metric_names]
            unknown = [k for k in given if k not in known]
            if unknown:
                raise ConfigError(f"--reference {unknown[0]}: not a metric of task '{self.recipe.task}' "
                                  f"(its metrics: {', '.join(known)})")
            return Reference(given, "--reference")
        if self.checkpoint.location == default_checkpoint(self.recipe) and self.recipe.reference:
            return Reference(dict(self.recipe.reference), "published")
        recorded = trainer_results(self.checkpoint, self.task.metric_names, splits)
        return Reference(recorded, "eval_results.json") if recorded else None

    @property
    def gate(self) -> Gate:
        floor = self.config.min_agreement
        return Gate(keep=self.config.effective_gate,
                    min_agreement=self.task.agreement_floor if floor is None else floor,
                    random_weights=self.checkpoint.random_weights is not None)

    def write_bin(self, dtype: str = "int64", *, overwrite: bool = False) -> dict[str, Any]:
        """`prepare --format bin`: the prepared rows as per-sample files with their gold labels
        (a class label, or a question's first answer), recording which prepared data they are."""
        from encoderzoo.interop import write_bin

        features, examples = self._features(), self._examples()
        by_id = {e.id: e for e in examples}
        labels = [str(getattr(e, "label", None) or next(iter(getattr(e, "answers", ())), ""))
                  for e in (by_id[i] for i in features.example_ids)]
        return write_bin(features, self.ws.bin_dir, dtype, labels, prepare_key=self.prepared["key"],
                         overwrite=overwrite)

    def score_device_outputs(self, folder: Path, *, layout: str = "auto", dtype: str = "float32"
                             ) -> dict[str, Any]:
        """Score outputs a device runner wrote for the samples of `prepare --format bin`
        (ais_bench or msame layout); metrics in percent, beside torch fp32's when this run
        folder has them."""
        from encoderzoo.interop import detect_layout, read_outputs

        features, examples = self._features(), self._examples()
        written = self.ws.bin_dir / "bin.json"
        if not written.is_file():
            raise ArtifactError(f"{written}: no samples were written here; run `encoderzoo prepare --format "
                                "bin` first, then the device runner on them")
        if read_json(written).get("prepare_key") != self.prepared["key"]:
            raise ArtifactError(f"{written}: the samples in {self.ws.bin_dir} were written for other "
                                "prepared data (another checkpoint, dataset or options); run `encoderzoo "
                                "prepare --format bin` again and the device runner on its samples")
        labels = int(getattr(self.checkpoint.config, "num_labels", 0) or 0)
        shapes = {name: (features.seq_len,) if 1 in axes else (labels,)
                  for name, axes in self.task.output_axes.items()}
        layout = detect_layout(folder) if layout == "auto" else layout
        outputs = read_outputs(folder, len(features), shapes, layout=layout, dtype=dtype,
                               not_before=written.stat().st_mtime)
        predictions = self.task.predict(examples, features, outputs)
        path = self.ws.predictions("device", layout, self.task.predictions_suffix)
        self.task.write_predictions(examples, predictions, outputs, path)
        metrics = self.task.score(examples, predictions).metrics
        result: dict[str, Any] = {"layout": layout, "samples": len(features), "examples": len(examples),
                                  **{k: round(100 * v, 4) for k, v in metrics.items()},
                                  "predictions": str(path)}
        if self.ws.accuracy_json.is_file():
            for row in read_json(self.ws.accuracy_json)["rows"]:
                if (row["backend"], row["precision"]) == REFERENCE_BACKEND:
                    result["torch_fp32"] = {k: round(100 * v, 4) for k, v in row["metrics"].items()}
        return result

    def triton(self, repository: Path, *, name: str | None = None, precision: str = "fp32",
               kind: str | None = None, max_batch_size: int | None = None, overwrite: bool = False
               ) -> dict[str, Any]:
        """A Triton model repository with ONNX Runtime's artifact at `precision` (the fused
        fp32 graph by default), checked against Triton's model-config schema."""
        from encoderzoo.fileio import check_replaceable
        from encoderzoo.triton import model_name, write_repository

        check_replaceable(repository / model_name(name or self.recipe.name), "triton-model",
                          overwrite=overwrite, option="--triton")

        spec = get_backend("onnxruntime")
        if precision not in spec.artifacts:
            raise ConfigError(f"--triton-precision is one of {', '.join(spec.precisions)}, not {precision!r}")
        self.ensure_graph(force=True)
        graph = self.artifact(spec.artifacts[precision])
        assert graph is not None  # ensure_graph exported it
        self._verify(graph)
        sizes = self.config.bench_settings().batch_sizes
        kind = kind or ("KIND_GPU" if self.device == "cuda" else "KIND_CPU")
        info = write_repository(graph, repository, name or self.recipe.name,
                                max_batch_size=max_batch_size or max(sizes), kind=kind, preferred=sizes,
                                tensorrt_fp16=precision == "fp16", overwrite=overwrite)
        step(f"triton: {info['config']} ({kind}, max batch {max_batch_size or max(sizes)}), "
             f"checked with {info['validated_with']}")
        return info

    def ensure_graph(self, force: bool = False) -> None:
        """Export (and optimize) when an ONNX backend is asked for and the run folder has no
        graph yet, on the prepared features or, without them, on synthetic padded inputs."""
        needs_onnx = force or any(get_backend(name).artifacts[precision] != "checkpoint"
                                  for name, precision in self.runs)
        if not needs_onnx or (self._exported() and (not self.config.optimize or self._optimized())):
            return
        features = None
        if not self.ws.features.is_file():
            features = synthetic_features(self.family.input_names, int(self.checkpoint.config.vocab_size),
                                          max(self.config.bench_settings().seq_lens))
        self.export(features)
        if self.config.optimize:
            self.optimize()

    def bench(self) -> dict[str, Any]:
        settings = self.config.bench_settings()
        self._check_seq_lens("--seq-lens", settings.seq_lens)
        self.ensure_graph()
        backends = [self.backend(n, p) for n, p in self.runs]
        rows = sweep(backends, self.family.input_names, int(self.checkpoint.config.vocab_size), settings)
        used = {f"{b.name}:{b.precision}": b.settings() for b in backends}
        del backends
        for name, precision in self.runs:
            self._release(name, precision)
        info = {
            "settings": settings.__dict__ | {"inputs": "full-length synthetic sequences, no padding"},
            "backends": used,
            "environment": environment(self.config.threads),
            "rows": [r.to_json() for r in rows],
        }
        write_json(self.ws.benchmark_json, info)
        return info

    def report(self) -> dict[str, Any]:
        checkpoint = self.checkpoint
        location = checkpoint.location
        if checkpoint.is_local and Path(location).is_relative_to(self.ws.root.resolve()):
            location = str(Path(location).relative_to(self.ws.root.resolve()))  # the run folder moves
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
                "location": location, "local": checkpoint.is_local,
                "random_weights": checkpoint.random_weights,
                "model_type": checkpoint.model_type,
                "architectures": getattr(checkpoint.config, "architectures", None),
                "stored_dtype": str(getattr(checkpoint.config, "dtype", None) or "unknown")
                .removeprefix("torch."),
                "fingerprint": fingerprint(checkpoint), "revision": checkpoint.revision,
            },
            "config": self.config.to_json(),
            "peak_memory": peak_memory(),  # of this command (all of `run`'s stages)
        }
        report |= write_report(self.ws, report, environment(self.config.threads))
        step(f"report: {self.ws.report_md.name}, {self.ws.report_json.name} written")
        return report

    # -- the whole chain --------------------------------------------------------------------------

    def plan(self) -> list[tuple[str, str, str]]:
        """(stage, what it would do, build/reuse) for `run --dry-run`: nothing is built, loaded
        or downloaded."""
        cfg = self.config
        data = describe_data(self.recipe, cfg.data, cfg.cache_dir)
        files = {split: Path(p) for split, p in data.items() if Path(p).is_file()}
        prepared = len(files) == len(data) and self._current(
            self.ws.prepare_json, self.prepare_key(self.prepare_options(files)), self.ws.features,
            self.ws.examples)
        limit = f", first {cfg.limit}" if cfg.limit else ""
        read = "; ".join(f"{s}: {p}" for s, p in data.items())
        stages = [("backends", note, "skip") for note in self.validate()]
        stages.append(("prepare", f"read {read}; tokenize to {cfg.effective_seq_len} tokens{limit}",
                       "reuse" if prepared and cfg.resume else "build"))
        needs_onnx = [(n, p) for n, p in self.runs if get_backend(n).artifacts[p] != "checkpoint"]
        exported = self._exported()
        stages.append(("export", f"{self.ws.onnx.name}, opset {OPSET}, parity against PyTorch",
                       "reuse" if exported else "build"))
        if cfg.optimize:
            optimized = exported and self._optimized()
            what = (f"ONNX Runtime optimizer ({self.family.ort_model_type}), "
                    f"at most {cfg.optimize_timeout:g} s")
            stages.append(("optimize", what, "reuse" if optimized else "build"))
        kinds = dict.fromkeys(get_backend(n).artifacts[p] for n, p in needs_onnx)
        for kind in (k for k in kinds if k not in ("onnx", "onnx-fused")):
            current = exported and self._current(self.ws.quantize_json, self.quantize_key(kind),
                                                 self.ws.quantized(kind), entry=kind)
            stages.append(("quantize", f"{kind} ({self.ws.quantized(kind).name})",
                           "reuse" if current else "build"))
        batching = cfg.batching
        for name, precision in self.runs:
            shards = self.ws.output_shards(name, precision)
            status = "resume from shards" if cfg.resume and shards.is_dir() else "build"
            where = f"on Ray ({cfg.ray_actors} actors)" if cfg.engine == "ray" else f"on {self.device}"
            what = (f"{name} {precision} {where}: batch {batching.batch_size}, {batching.padding} padding, "
                    f"{batching.order} order, shards of {cfg.shard_size} rows")
            stages.append(("infer", what, status))
        stages.append(("score", f"metrics per backend; gate {cfg.effective_gate:.0%} of torch fp32", "build"))
        if cfg.triage and any(get_backend(n).artifacts[p] in TRIAGED for n, p in self.runs):
            stages.append(("triage", "only for an int8 model below its gate", "if needed"))
        if cfg.bench:
            settings = cfg.bench_settings()
            what = (f"batch sizes {','.join(map(str, settings.batch_sizes))} x seq "
                    f"{','.join(map(str, settings.seq_lens))}, {settings.warmup} warm-up, "
                    f">= {settings.min_runs} runs and {settings.min_seconds:g} s per point")
            stages.append(("bench", what, "build"))
        stages.append(("report", f"{self.ws.report_md.name}, {self.ws.report_json.name}, "
                                 f"{self.ws.plot_png.name}", "build"))
        return stages

    def run_all(self) -> bool:
        """Every stage in order; returns whether all accuracy gates passed."""
        for note in self.validate():
            step(f"backends: {note}")
        self.prepare()
        self.export()
        if self.config.optimize:
            self.optimize()
        self.infer()
        passed = bool(self.score()["gate_passed"])
        if not passed and self.config.triage and self.triage():
            passed = bool(read_json(self.ws.accuracy_json)["gate_passed"])
        if self.config.bench:
            self.bench()
        self.report()
        return passed


def run(config: RunConfig) -> tuple[bool, Path]:
    """The whole chain into `config.out`, built in a hidden partial folder and published in place
    of `out` (one atomic exchange) only when complete. The folder's lock, beside it, is held from
    before the partial folder is looked at until after the exchange. An interrupted run, or one
    that fails after prepare, leaves the partial folder for `--resume`; bad input found before
    anything was done removes it. Artifacts of an earlier run in `out` are reused where their
    keys match. Returns (all gates passed, report path)."""
    out, partial = config.out, partial_folder(config.out)
    with locked(out):
        recover(out)
        check_run_folder(out, overwrite=config.overwrite, inputs=config.input_paths)
        if partial.exists():
            check_replaceable(partial, RUN, overwrite=config.overwrite, option="the partial run folder")
        pipeline = Pipeline(config, Workspace(partial))
        pipeline.validate()  # nothing is written before the options are known to be runnable
        resumable = partial.is_dir() and has_work(partial)
        if resumable and not config.resume:
            step(f"run: discarding the unfinished run in {partial} (pass --resume to continue it)")
            clear(partial)
            resumable = False
        elif config.resume:
            step(f"run: resuming the unfinished run in {partial}" if resumable
                 else "run: nothing to resume; starting afresh")
        partial.mkdir(parents=True, exist_ok=True)
        mark(partial, RUN)
        for leftover in clean_temporary(partial):
            step(f"run: removed {leftover.relative_to(partial)}, left by a stopped run")
        if out.is_dir():
            seed_from(out, partial)
        try:
            passed = pipeline.run_all()
        except EncoderzooError as err:
            if not resumable and not pipeline.ws.prepare_json.is_file():  # bad input: nothing done yet
                shutil.rmtree(partial, ignore_errors=True)
                raise
            raise with_note(err, f"the finished stages are kept in {partial}: fix the cause and rerun "
                                 "with --resume") from None
        publish(partial, out)
    return passed, Workspace(out).report_md


def score_predictions(name: str, predictions: Path, data: tuple[str, ...],
                      cache_dir: Path | None = None) -> dict[str, Any]:
    """Score a predictions file made anywhere against the gold data of a task (`name` is a task,
    with --data) or of a recipe (its data by default). Metrics are percentages, as the
    official evaluation scripts print them."""
    from encoderzoo.recipes import RECIPES
    from encoderzoo.sources import default_cache_dir
    from encoderzoo.tasks import TASKS

    if name in TASKS:
        task = get_task(name)
        if not data:
            raise ConfigError(f"pass --data PATH to the gold {name} data to score against")
        # the task's splits as its recipes name them (MNLI: matched, mismatched), so that scores
        # and a run's split-prefixed ids line up
        recipe = next((r for r in RECIPES.values() if r.task == name), None)
        if recipe is not None and len(recipe.data) > 1 and (len(data) > 1 or "=" in data[0]):
            files = given_splits(recipe, data)
        else:
            files = {"dev": Path(data[0])}
    else:
        recipe = RECIPES[name]
        task = get_task(recipe.task)
        files = resolve_data(recipe, data, cache_dir or default_cache_dir())
    examples, _ = read_splits(task, files)
    answers = task.read_predictions(predictions, examples)
    score = task.score(examples, answers)
    result: dict[str, Any] = {k: 100 * v for k, v in score.metrics.items()}  # full precision, as official
    missing = sum(1 for a in answers if a in ("", None))
    return result | {"examples": len(examples), "without_prediction": missing}


def _parity_summary(results: list[ParityResult]) -> dict[str, Any]:
    return {"max_abs_diff": max(r.max_abs_diff for r in results),
            "parity": [r.to_json() for r in results]}
