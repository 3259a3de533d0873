"""RunContext: what every stage reads, resolved once per command — the recipe, the model family,
the checkpoint (or the random model built for it), the task bound to the checkpoint's labels, the
device and the runs this machine can do, the checkpoint's content hashes, the prepared data
(checked to belong to this checkpoint, read once), the artifact store and the open backends."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from encoderzoo.artifacts import ArtifactStore
from encoderzoo.backends import Backend, resolve_runs
from encoderzoo.cache import file_hash, files_hash, make_key, versions
from encoderzoo.checkpoints import (
    Checkpoint,
    check_pickles,
    content_hashes,
    random_weights_record,
    resolve_checkpoint,
)
from encoderzoo.config import RunConfig
from encoderzoo.console import step
from encoderzoo.errors import ArtifactError, ConfigError, EncoderzooError
from encoderzoo.external import (
    GRAPH_BACKENDS,
    ImportedGraph,
    graph_checkpoint,
    graph_family,
    graph_runs,
    imported_graph,
    shaped_config,
)
from encoderzoo.families import Family, family_of, get_family
from encoderzoo.features import Features
from encoderzoo.fileio import read_json
from encoderzoo.recipes import Recipe
from encoderzoo.roofline import EncoderShape
from encoderzoo.tasks import get_task
from encoderzoo.tasks.base import Task
from encoderzoo.workspace import Workspace


class RunContext:
    def __init__(self, config: RunConfig, workspace: Workspace | None = None) -> None:
        self.config = config
        self.ws = workspace or Workspace(config.out)
        self.store = ArtifactStore(self)
        self.backends: dict[tuple[str, str], Backend] = {}  # open backends (see stages.infer)
        self._loaded: dict[str, Any] = {}  # prepared features and examples, read once
        if self.graph is not None:  # a static-shape graph fixes the batching
            self.config = shaped_config(config, self.graph)

    @cached_property
    def recipe(self) -> Recipe:
        return self.config.recipe_spec

    @cached_property
    def graph(self) -> ImportedGraph | None:
        """The graph made elsewhere (--onnx/--openvino), or None: the checkpoint is exported."""
        given, input_map = self.config.graph, self.config.input_map
        recorded = self.recorded_graph
        if given is None and recorded:  # a stage command in a run folder made from a graph
            given, input_map = (Path(recorded["path"]), recorded["format"]), tuple(recorded["input_map"])
        if given is None:
            return None
        return imported_graph(*given, input_map, get_task(self.recipe.task))

    @property
    def recorded_graph(self) -> dict[str, Any]:
        """The graph prepare recorded, for stage commands that name no model."""
        cfg = self.config
        if cfg.graph or cfg.checkpoint or cfg.random_weights:
            return {}
        return self.prepared.get("graph") or {}

    @property
    def graph_only(self) -> bool:
        """A graph made elsewhere without its PyTorch checkpoint (given or recorded)."""
        with_checkpoint = self.config.checkpoint or self.recorded_graph.get("with_checkpoint")
        return self.graph is not None and not with_checkpoint

    def graph_record(self) -> dict[str, Any]:
        """What prepare records of the graph, so that stage commands find it again."""
        assert self.graph is not None
        return {"path": str(self.graph.info.path.resolve()), "format": self.graph.info.format,
                "input_map": list(self.config.input_map or self.recorded_graph.get("input_map", [])),
                "tokenizer": str(self.checkpoint.folder) if self.graph_only else None,
                "with_checkpoint": not self.graph_only}

    def inputs(self) -> tuple[Path, ...]:
        """Every file and folder the run reads, as resolved so far: the paths given, the caches,
        the checkpoint's files (a hub snapshot's lead into the hub cache's blobs), the graph and
        its weights, the data files prepare read."""
        found = list(self.config.protected_paths)
        if not self.config.random_weights and self.checkpoint.folder is not None:
            folder = self.checkpoint.folder
            found += [folder, *(p.resolve() for p in folder.iterdir())]
        if self.graph is not None:
            found += self.graph.info.files
        found += [Path(s["data"]) for s in self.prepared.get("splits", {}).values()]
        return tuple(found)

    @cached_property
    def family(self) -> Family:
        """The checkpoint's family (its config's model_type); the recipe's for random weights."""
        if self.config.random_weights:
            return get_family(self.config.family or self.recipe.family)
        if self.graph_only:
            assert self.graph is not None
            return graph_family(self.graph)
        return family_of(self.checkpoint.config.model_type, self.checkpoint.location)

    @cached_property
    def input_names(self) -> tuple[str, ...]:
        """The graph's inputs: the family's, with segments where the config has them (a graph
        made elsewhere: those it takes)."""
        if self.graph is not None:
            return self.graph.input_names
        return self.family.inputs(self.model_config)

    @property
    def reference_run(self) -> tuple[str, str]:
        """The run every other one is gated against, always run (or its outputs reused): torch
        fp32 whenever a PyTorch model is available, else the graph's own fp32 run."""
        if not self.graph_only:
            return ("torch", "fp32")
        assert self.graph is not None
        return (GRAPH_BACKENDS[self.graph.info.format][0], "fp32")

    @property
    def prepared(self) -> dict[str, Any]:
        """What `prepare` recorded in this run folder (empty before it ran)."""
        if "prepared" not in self._loaded:
            self._loaded["prepared"] = (
                read_json(self.ws.prepare_json) if self.ws.prepare_json.is_file() else {}
            )
        return self._loaded["prepared"]  # type: ignore[no-any-return]

    def prepared_again(self, record: dict[str, Any], features: Features, examples: list[Any]) -> None:
        """After prepare wrote new data: what later stages read."""
        self._loaded = {"prepared": record, "features": features, "examples": examples}

    @cached_property
    def checkpoint(self) -> Checkpoint:
        """A random model (--random-weights), --checkpoint, the one this run folder was
        prepared with (the same hub snapshot), or the recipe's."""
        spec = self.config.checkpoint
        if self.graph_only:
            return self._graph_checkpoint()
        if self.config.random_weights:
            spec = str(self._random_checkpoint(self.config.random_weights))
        elif spec is None and self.prepared.get("checkpoint"):
            recorded = self.prepared["checkpoint"]
            spec = str(self.ws.root / recorded) if self.prepared.get("checkpoint_in_run") else recorded
            if self.prepared.get("revision"):
                spec = f"{recorded}@{self.prepared['revision']}"
        return resolve_checkpoint(spec, self.recipe, trust_remote_code=self.config.trust_remote_code)

    def _graph_checkpoint(self) -> Checkpoint:
        """The --tokenizer folder stands for the checkpoint of a graph given alone."""
        given = self.config.tokenizer or self.recorded_graph.get("tokenizer")
        assert self.graph is not None and given is not None
        return graph_checkpoint(self.graph, Path(given), self.config.label_names, get_task(self.recipe.task))

    def _random_checkpoint(self, size: str) -> Path:
        """The run folder's random model, rebuilt unless it was built with this size, recipe
        architecture, task head and tokenizer (its files' bytes)."""
        from encoderzoo.random_weights import build_random_checkpoint, random_weights_key

        folder = self.ws.random_checkpoint
        task = self.task_spec
        key = random_weights_key(
            recipe=self.recipe,
            family=self.family,
            task=task,
            size=size,  # type: ignore[arg-type]
            tokenizer=self.config.tokenizer,
        )
        if random_weights_record(folder).get("key") != key:
            from encoderzoo.random_weights import architecture

            step(f"random weights: building a {size} {architecture(self.recipe, self.family)[0]} model")
            build_random_checkpoint(
                folder,
                recipe=self.recipe,
                family=self.family,
                task=task,
                size=size,
                tokenizer=self.config.tokenizer,
                key=key,
            )  # type: ignore[arg-type]
        return folder

    @cached_property
    def roofline(self) -> tuple[EncoderShape | None, dict[str, Any] | None]:
        """The model's shape (for FLOP counts) and the machine's measured ceiling (None with
        --no-ceiling): probed once per command, cached per machine (see encoderzoo.ceiling)."""
        try:
            shape = EncoderShape.of(self.model_config)
        except EncoderzooError:  # a graph without a readable config has no FLOP count
            shape = None
        if not self.config.ceiling:
            return shape, None
        from encoderzoo.ceiling import ceiling

        step(f"ceiling: GEMM rate per precision on {self.config.threads} threads (cached per machine)")
        measured = ceiling(self.config.threads)
        if measured.get("disturbed"):
            share = 100 * measured["share"]
            step(f"ceiling: other programs used the cores during the probe (it had {share:.0f} % of them): "
                 "the % of ceiling figures of this run are too high; not cached")
        return shape, measured

    @cached_property
    def model_config(self) -> Any:
        """The model's config, without building a random model (from its architecture then)."""
        from encoderzoo.random_weights import architecture_config

        size = self.config.random_weights
        if size:
            return SimpleNamespace(**architecture_config(self.recipe, self.family, size))  # type: ignore[arg-type]
        return self.checkpoint.config

    @cached_property
    def task_spec(self) -> Task:
        """The recipe's task, with the columns and metrics of a file of the user's."""
        from encoderzoo.tasks.generic import task_for

        return task_for(get_task(self.recipe.task), self.config)

    @cached_property
    def task(self) -> Task:
        """The recipe's task, bound to the checkpoint's labels."""
        return self.task_spec.for_model(
            self.checkpoint.config, self.checkpoint.location, self.config.label_names
        )

    @cached_property
    def device(self) -> str:
        """ "cpu" or "cuda": --device, with auto resolved by looking for a GPU."""
        from encoderzoo.devices import resolve_device

        return resolve_device(self.config.device)

    @cached_property
    def _resolved_runs(self) -> tuple[list[tuple[str, str]], list[str]]:
        from encoderzoo.devices import Machine

        runs, notes = resolve_runs(self.config.backends, Machine.here(self.device))
        why = self.family.torch_bf16_fails
        if why and ("torch", "bf16") in runs:
            runs = [r for r in runs if r != ("torch", "bf16")]
            notes = [*notes, f"torch bf16 left out: {why}"]
        if self.graph is not None:
            runs, notes = graph_runs(runs, notes, self.config, self.graph)
        if self.reference_run not in runs:
            runs = [self.reference_run, *runs]
            notes = [*notes, f"{' '.join(self.reference_run)} added: the baseline every other run is gated "
                             "against"]
        return runs, notes

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(backend, precision) pairs this machine runs, in the order given (see resolve_runs)."""
        return self._resolved_runs[0]

    @cached_property
    def providers(self) -> list[str]:
        """The ONNX Runtime providers this run asks for, resolved from --providers and the device."""
        import onnxruntime as ort

        from encoderzoo.devices import choose_providers

        return choose_providers(
            self.device,
            self.config.providers,
            ort.get_available_providers(),
            explicit_device=self.config.device == "cuda",
        )[0]

    def validate(self) -> list[str]:
        """Everything that can be checked before the first stage writes anything (device,
        precision x device, bf16 support, sequence lengths; options are checked by RunConfig):
        raises the ConfigError a later stage would, returns notes on default precisions left out."""
        _ = self.task_spec  # a file of the user's names its columns
        if not self.graph_only and not self.config.random_weights:
            check_pickles(self.checkpoint)  # a model that can never load: refused before prepare
        self.check_seq_lens("--seq-len", (self.config.effective_seq_len,))
        if self.config.bench:
            self.check_seq_lens("--seq-lens", self.config.bench_settings().seq_lens)
        return self._resolved_runs[1]

    def check_seq_lens(self, option: str, seq_lens: tuple[int, ...]) -> None:
        """Refuse lengths the model's position embeddings cannot hold."""
        limit, why = self.family.max_tokens(self.model_config)
        too_long = [n for n in seq_lens if limit is not None and n > limit]
        if too_long:
            raise ConfigError(f"{option} {too_long[0]} is above the model's maximum of {limit} tokens{why}")

    # -- identity of the prepared data ---------------------------------------------------------

    @cached_property
    def hashes(self) -> dict[str, str]:
        if self.graph is not None and self.graph_only:  # the graph and the tokenizer's files
            folder = self.checkpoint.folder
            assert folder is not None
            rest = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
            return {"model": self.graph.key, "tokenizer": files_hash(rest)}
        return content_hashes(self.checkpoint)

    def prepare_options(self, files: dict[str, Path]) -> dict[str, Any]:
        """What prepared data depend on besides the checkpoint: recorded, so that a later stage
        can recompute the key with its own checkpoint (see check_prepared)."""
        return {
            "task": self.recipe.task,
            "columns": [*self.task_spec.text_columns, self.task_spec.label_column]  # type: ignore[attr-defined]
            if getattr(self.task_spec, "user_columns", False) else None,
            "data": {s: file_hash(p) for s, p in files.items()},
            "seq_len": self.config.effective_seq_len,
            "limit": self.config.limit,
            "label_names": self.config.label_names,
            "inputs": self.input_names,
        }

    def prepare_key(self, options: dict[str, Any]) -> str:
        return make_key("prepare", **options, **self.hashes, libraries=versions("tokenizers", "transformers"))

    def check_prepared(self) -> None:
        """Refuse prepared data made for another checkpoint (or tokenizer, or library versions):
        the key is recomputed from the recorded options and this run's checkpoint, never taken
        from the record alone."""
        options = self.prepared.get("options")
        if options is None or self.prepare_key(options) != self.prepared.get("key"):
            raise ArtifactError(
                f"{self.ws.prepare_json}: the prepared data were made for another checkpoint, tokenizer "
                f"or library versions than {self.checkpoint.location}; run `encoderzoo prepare` again "
                "with this checkpoint (or `encoderzoo run`)"
            )

    def features(self) -> Features:
        if "features" not in self._loaded:
            if self.ws.prepare_json.is_file():
                self.check_prepared()
            self._loaded["features"] = Features.load(self.ws.features)
        return self._loaded["features"]  # type: ignore[no-any-return]

    def examples(self) -> list[Any]:
        if "examples" not in self._loaded:
            if not self.ws.examples.is_file():
                raise ArtifactError(
                    f"{self.ws.examples}: no prepared examples; run `encoderzoo prepare` first"
                )
            self.check_prepared()
            self._loaded["examples"] = self.task.load_examples(self.ws.examples)
        return self._loaded["examples"]  # type: ignore[no-any-return]
