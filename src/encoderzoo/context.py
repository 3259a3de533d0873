"""RunContext: what every stage reads, resolved once when a command starts, in order and without
lazy parts — the recipe, what the run folder recorded, the model source (see
encoderzoo.model_source), the options a graph of fixed shape imposes, the task bound to the
model's labels, the device, the runs this machine can do and the one every other is gated
against, the batching of each backend, the providers, and the artifact store. The prepared data
are read from the run folder when first asked for, checked to belong to this model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from encoderzoo.artifacts import BuildOptions
from encoderzoo.backends import BACKENDS, Run, get_backend, resolve_runs
from encoderzoo.bench import synthetic_features
from encoderzoo.cache import file_hash, make_key, versions
from encoderzoo.ceiling import ceiling
from encoderzoo.config import DEFAULT_BACKENDS, RunConfig
from encoderzoo.console import step
from encoderzoo.devices import Machine, choose_providers, resolve_device
from encoderzoo.errors import ArtifactError, ConfigError, EncoderzooError
from encoderzoo.features import Features
from encoderzoo.fileio import read_json
from encoderzoo.graphs import ImportedGraph
from encoderzoo.model_config import remember
from encoderzoo.model_safety import check_pickles
from encoderzoo.model_source import GRAPH, ModelSource, SourceSpec, resolve_source
from encoderzoo.roofline import EncoderShape
from encoderzoo.session import Session
from encoderzoo.store import ArtifactStore
from encoderzoo.tasks import get_task
from encoderzoo.tasks.generic import task_for
from encoderzoo.workspace import Workspace

GRAPH_BACKENDS = {"onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",)}


class RunContext:
    def __init__(self, config: RunConfig, workspace: Workspace | None = None) -> None:
        self.ws = workspace or Workspace(config.out)
        self.recipe = config.recipe_spec
        self._loaded: dict[str, Any] = {}  # prepared features and examples, read once
        prepared = self.ws.prepare_json
        self.prepared: dict[str, Any] = read_json(prepared) if prepared.is_file() else {}
        remember(self.prepared.get("model_config"))  # the config's fields as prepare read them
        self.task_spec = task_for(get_task(self.recipe.task), config)  # a file of the user's: its columns
        self.source: ModelSource = resolve_source(source_spec(config, self.prepared, self.ws), self.recipe,
                                                  self.task_spec)
        self.config = shaped_config(config, self.source.graph)
        self.task = self.task_spec.for_model(self.source.config, self.source.location, config.label_names)
        self.device = resolve_device(self.config.device)
        self.reference_run = Run("torch", "fp32") if self.source.pytorch else \
            Run(GRAPH_BACKENDS[self.source.graph.info.format][0], "fp32")  # type: ignore[union-attr]
        self.runs, self.notes = self._resolve_runs()
        self.batching = {name: self.config.batching_for(BACKENDS[name].batching) for name in BACKENDS}
        if self.source.graph is not None and self.source.graph.batch is not None:  # a short batch is
            self.batching = {n: dataclasses.replace(b, max_padding=0.0)  # padded to it: none closes early
                             for n, b in self.batching.items()}
        self.providers = self._providers() if any(get_backend(r.backend).takes_providers for r in self.runs) \
            else []
        self.store = ArtifactStore(self.ws.model_dir, self.source, self.task, self.build_options(),
                                   self.sample_rows)
        self.backends: dict[Run, Session] = {}  # open sessions (see encoderzoo.inference)
        self._ceiling: tuple[EncoderShape | None, dict[str, Any] | None] | None = None

    # -- resolved once -------------------------------------------------------------------------

    @property
    def graph(self) -> ImportedGraph | None:
        """The graph made elsewhere (--onnx/--openvino, or recorded), or None: the model is exported."""
        return self.source.graph

    @property
    def family(self) -> Any:
        return self.source.family

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.source.input_names

    @property
    def row_shape(self) -> tuple[int, ...]:
        """What a row of the task's inputs holds before its tokens: () or, multiple choice, (choices,)."""
        return tuple(getattr(self.task, "row_shape", ()))

    @property
    def hashes(self) -> dict[str, str]:
        return self.source.identity

    def _resolve_runs(self) -> tuple[list[Run], list[str]]:
        runs, notes = resolve_runs(self.config.wanted, Machine.here(self.device))
        why = self.source.family.torch_bf16_fails
        if why and Run("torch", "bf16") in runs:
            runs, notes = [r for r in runs if r != ("torch", "bf16")], [*notes, f"torch bf16 left out: {why}"]
        if self.graph is not None:
            runs, notes = graph_runs(runs, notes, self.config, self.graph, self.source.pytorch)
        if self.reference_run not in runs:  # no row is ever its own reference
            runs = [self.reference_run, *runs]
            notes = [*notes, f"{self.reference_run.label} added: the baseline every other run is gated "
                             "against"]
        return runs, notes

    def _providers(self) -> list[str]:
        """The ONNX Runtime providers this run asks for, resolved from --providers and the device."""
        import onnxruntime as ort  # deferred: the heavy runtime, only where a run takes providers

        return choose_providers(self.device, self.config.providers, ort.get_available_providers(),
                                explicit_device=self.config.device == "cuda")[0]

    def build_options(self) -> BuildOptions:
        cfg, prepared = self.config, self.ws.features.is_file()
        return BuildOptions(optimize=cfg.optimize, optimize_timeout=cfg.optimize_timeout,
                            calibration_size=cfg.calibration_size, export_atol=self.recipe.export_atol,
                            prepared=prepared, rows_key=self.prepared.get("key", "synthetic") if prepared
                            else "synthetic")

    def sample_rows(self) -> Features:
        """What graphs are checked and calibrated on: the prepared rows, else padded synthetic ones."""
        if self.ws.features.is_file():
            return self.features()
        return synthetic_features(self.input_names, int(self.source.config.vocab_size),
                                  max(self.config.bench_settings().seq_lens), row=self.row_shape)

    def validate(self) -> list[str]:
        """Everything that can be checked before the first stage writes anything (the model's
        resolution, device, precisions and runs checked it already; options by RunConfig):
        weights that can never load, sequence lengths. Returns the notes on runs left out or added."""
        if self.source.pytorch and not self.source.random_weights:
            check_pickles(self.source.checkpoint().folder)  # a model that can never load: refused at once
        self.check_seq_lens("--seq-len", (self.config.effective_seq_len,))
        if self.config.bench:
            self.check_seq_lens("--seq-lens", self.config.bench_settings().seq_lens)
        return self.notes

    def check_seq_lens(self, option: str, seq_lens: tuple[int, ...]) -> None:
        """Refuse lengths the model's position embeddings cannot hold."""
        limit, why = self.source.family.position_limit(self.source.config)
        too_long = [n for n in seq_lens if limit is not None and n > limit]
        if too_long:
            raise ConfigError(f"{option} {too_long[0]} is above the model's maximum of {limit} tokens{why}")

    def roofline(self) -> tuple[EncoderShape | None, dict[str, Any] | None]:
        """The model's shape (for FLOP counts) and the machine's measured ceiling (None with
        --no-ceiling): probed once per command, cached per machine (see encoderzoo.ceiling)."""
        if self._ceiling is None:
            try:
                shape = EncoderShape.of(self.source.config)
            except EncoderzooError:  # a graph without a readable config has no FLOP count
                shape = None
            measured = None
            threads = self.config.threads
            if self.config.ceiling:
                step(f"ceiling: GEMM rate per precision on {threads} threads (cached per machine)")
                measured = ceiling(threads)
                if measured.get("disturbed"):
                    step(f"ceiling: other programs used the cores during the probe (it had "
                         f"{100 * measured['share']:.0f} % of them): the % of ceiling figures of this run "
                         "are too high; not cached")
            self._ceiling = (shape, measured)
        return self._ceiling

    def inputs(self) -> tuple[Path, ...]:
        """Every file and folder the run reads, as resolved so far: the paths given, the caches,
        the checkpoint's files (a hub snapshot's lead into the hub cache's blobs), the graph and
        its weights, the data files prepare read."""
        found = list(self.config.protected_paths)
        if self.source.pytorch and not self.source.random_weights:
            folder = self.source.checkpoint().folder
            found += [folder, *(p.resolve() for p in folder.iterdir())] if folder is not None else []
        if self.graph is not None:
            found += self.graph.info.files
        found += [Path(s["data"]) for s in self.prepared.get("splits", {}).values()]
        return tuple(found)

    def graph_record(self) -> dict[str, Any] | None:
        """What prepare records of a graph made elsewhere, so that stage commands find it again."""
        if self.graph is None:
            return None
        alone, recorded = not self.source.pytorch, self.prepared.get("graph") or {}
        return {"path": str(self.graph.info.path.resolve()), "format": self.graph.info.format,
                "input_map": list(self.config.input_map or recorded.get("input_map", [])),
                "tokenizer": str(self.source.checkpoint().folder) if alone else None,
                "with_checkpoint": not alone}

    # -- the prepared data ---------------------------------------------------------------------

    def prepared_again(self, record: dict[str, Any], features: Features, examples: list[Any]) -> None:
        """After prepare wrote new data: what later stages read."""
        self.prepared = record
        self._loaded = {"features": features, "examples": examples}
        self.store.options = self.build_options()

    def prepare_options(self, files: dict[str, Path]) -> dict[str, Any]:
        """What prepared data depend on besides the model: recorded, so that a later stage can
        recompute the key with its own model (see check_prepared)."""
        spec, cfg = self.task_spec, self.config
        return {"task": self.recipe.task,
                "columns": [*spec.text_columns, spec.label_column]  # type: ignore[attr-defined]
                if getattr(spec, "user_columns", False) else None,
                "data": {s: file_hash(p) for s, p in files.items()}, "seq_len": cfg.effective_seq_len,
                "limit": cfg.limit, "label_names": cfg.label_names, "inputs": self.input_names}

    def prepare_key(self, options: dict[str, Any]) -> str:
        return make_key("prepare", **options, **self.hashes, libraries=versions("tokenizers", "transformers"))

    def check_prepared(self) -> None:
        """Refuse prepared data made for another model (or tokenizer, or library versions): the key
        is recomputed from the recorded options and this run's model, never taken from the record."""
        options = self.prepared.get("options")
        if options is None or self.prepare_key(options) != self.prepared.get("key"):
            raise ArtifactError(
                f"{self.ws.prepare_json}: the prepared data were made for another checkpoint, tokenizer or "
                f"library versions than {self.source.location}; run `encoderzoo prepare` again with this "
                "checkpoint (or `encoderzoo run`)")

    def features(self) -> Features:
        if "features" not in self._loaded:
            if self.ws.prepare_json.is_file():
                self.check_prepared()
            self._loaded["features"] = Features.load(self.ws.features)
        return self._loaded["features"]  # type: ignore[no-any-return]

    def examples(self) -> list[Any]:
        if "examples" not in self._loaded:
            if not self.ws.examples.is_file():
                raise ArtifactError(f"{self.ws.examples}: no prepared examples; run `encoderzoo prepare` "
                                    "first")
            self.check_prepared()
            self._loaded["examples"] = self.task.load_examples(self.ws.examples)
        return self._loaded["examples"]  # type: ignore[no-any-return]


def source_spec(config: RunConfig, prepared: dict[str, Any], ws: Workspace) -> SourceSpec:
    """The model the options name, else the one the run folder was prepared with (a stage
    command names none): the same folder, hub revision, graph and tokenizer."""
    common = {"trust_remote_code": config.trust_remote_code, "label_names": config.label_names,
              "random_folder": ws.random_checkpoint}
    if config.graph or config.checkpoint or config.random_weights:
        return SourceSpec(checkpoint=config.checkpoint, random_weights=config.random_weights,
                          family=config.family, tokenizer=config.tokenizer, graph=config.graph,
                          input_map=config.input_map, **common)
    checkpoint = prepared.get("checkpoint")
    if checkpoint and prepared.get("checkpoint_in_run"):
        checkpoint = str(ws.root / checkpoint)
    elif checkpoint and prepared.get("revision"):
        checkpoint = f"{checkpoint}@{prepared['revision']}"
    graph = prepared.get("graph") or {}
    if not graph:
        return SourceSpec(checkpoint=checkpoint, **common)
    return SourceSpec(checkpoint=checkpoint if graph.get("with_checkpoint") else None,
                      tokenizer=graph["tokenizer"], graph=(Path(graph["path"]), graph["format"]),
                      input_map=tuple(graph["input_map"]), **common)


def shaped_config(config: RunConfig, graph: ImportedGraph | None) -> RunConfig:
    """The options a graph imposes: its fixed sequence (every batch padded to it) and batch size
    (the benchmark measures that one); an IR is run as given (nothing to fuse)."""
    if graph is None:
        return config
    changes: dict[str, Any] = {}
    if graph.info.format == "openvino":
        changes["optimize"] = False
    if graph.seq is not None:
        if config.seq_len not in (None, graph.seq):
            raise ConfigError(f"{graph.info.option} is fixed to sequences of {graph.seq} tokens; leave out "
                              f"--seq-len {config.seq_len} (or pass {graph.seq})")
        changes |= {"seq_len": graph.seq, "padding": "fixed", "buckets": (), "seq_lens": (graph.seq,)}
    if graph.batch is not None:
        changes |= {"batch_size": graph.batch, "batch_sizes": (graph.batch,)}
    return dataclasses.replace(config, **changes) if changes else config


def graph_runs(runs: list[Run], notes: list[str], config: RunConfig, graph: ImportedGraph,
               pytorch: bool) -> tuple[list[Run], list[str]]:
    """Runs a graph can have: torch only with its PyTorch model, an IR on openvino only."""
    explicit = config.backends != DEFAULT_BACKENDS
    allowed = GRAPH_BACKENDS[graph.info.format] + ("torch",) * pytorch
    kept = []
    for run in runs:
        if run.backend in allowed:
            kept.append(run)
            continue
        why = "needs --checkpoint (the graph's PyTorch model)" if run.backend == "torch" else \
            "runs ONNX graphs, and this is an OpenVINO IR"
        if explicit:
            raise ConfigError(f"--backends {run.backend}: {why}")
        notes.append(f"{run.backend} left out: {why}")
    if not kept:
        raise ConfigError(f"--backends {','.join(config.backends)}: none runs {graph.info.option}")
    return kept, notes


__all__ = ["GRAPH", "RunContext", "graph_runs", "shaped_config", "source_spec"]
