"""The one model source of a run, resolved once from the options and the run folder's record: a
checkpoint (a folder, or a hub id's revision), random weights of a recipe's architecture (built
into the run folder on first use), or a graph made elsewhere (with its PyTorch checkpoint, or
with its tokenizer alone). It knows its identity (the hashes every key uses), its family, its
config, its inputs and its tokenizer, and whether it has a PyTorch model to build from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from encoderzoo.cache import files_hash
from encoderzoo.checkpoints import (
    Checkpoint,
    content_hashes,
    load_tokenizer,
    random_weights_record,
    resolve_checkpoint,
)
from encoderzoo.console import step
from encoderzoo.errors import ConfigError
from encoderzoo.families import Family, family_of, get_family
from encoderzoo.graphs import ImportedGraph, imported_graph
from encoderzoo.options import whole_number
from encoderzoo.random_weights import (
    architecture,
    architecture_config,
    build_random_checkpoint,
    random_weights_key,
)
from encoderzoo.recipes import Recipe
from encoderzoo.tasks.base import Task

CHECKPOINT, RANDOM, GRAPH = "checkpoint", "random", "graph"  # the kinds of model source


@dataclass(frozen=True)
class SourceSpec:
    """What names the model, in plain values: the options, or what the run folder recorded."""

    checkpoint: str | None = None  # a folder or hub id (ORG/NAME[@REVISION])
    random_weights: str | None = None  # "tiny" or "base"
    family: str | None = None  # with random weights: the architecture's family
    tokenizer: str | None = None  # a tokenizer folder (random weights, a graph given alone)
    graph: tuple[Path, str] | None = None  # a graph made elsewhere and its format
    input_map: tuple[str, ...] = ()  # its inputs, named for ours
    trust_remote_code: bool = False
    label_names: tuple[str, ...] | None = None
    random_folder: Path = Path("checkpoint")  # where random weights are built


@dataclass
class ModelSource:
    kind: str  # CHECKPOINT, RANDOM or GRAPH
    family: Family
    config: Any  # the model's config: labels, sizes (a graph given alone: from the graph)
    input_names: tuple[str, ...]  # the model's inputs, in our order
    identity: dict[str, str]  # {"model": ..., "tokenizer": ...}: the hashes every key is made of
    graph: ImportedGraph | None = None  # the graph made elsewhere, if any
    pytorch: bool = True  # it has a PyTorch model (a graph given alone has none)
    random_weights: str | None = None  # the size of random weights
    _checkpoint: Checkpoint | None = field(default=None, repr=False)
    _build: dict[str, Any] = field(default_factory=dict, repr=False)  # how random weights are built

    @property
    def location(self) -> str:
        """What the user named, for messages: a folder, a hub id, a graph file."""
        if self.graph is not None and not self.pytorch:
            return str(self.graph.info.path)
        if self._checkpoint is not None:
            return self._checkpoint.location
        return str(self._build.get("folder", "random weights"))

    def checkpoint(self) -> Checkpoint:
        """Its checkpoint: the PyTorch model's folder (random weights are built there first), or
        for a graph given alone, its tokenizer folder and the config read from the graph."""
        if self._checkpoint is None:
            self._checkpoint = _built(**self._build)
        return self._checkpoint

    def tokenizer(self) -> Any:
        return load_tokenizer(self.checkpoint())


def resolve_source(spec: SourceSpec, recipe: Recipe, task: Task) -> ModelSource:
    """The model `spec` names, checked (its files, its family, its graph's inputs and outputs)."""
    if spec.graph is not None:
        graph = imported_graph(*spec.graph, spec.input_map, task)
        if spec.checkpoint is None:
            return _graph_alone(graph, spec, task)
        source = _checkpoint_source(spec, recipe)
        source.kind, source.graph, source.input_names = GRAPH, graph, graph.input_names
        return source
    if spec.random_weights:
        return _random_source(spec, recipe, task)
    return _checkpoint_source(spec, recipe)


def _checkpoint_source(spec: SourceSpec, recipe: Recipe) -> ModelSource:
    checkpoint = resolve_checkpoint(spec.checkpoint, recipe, trust_remote_code=spec.trust_remote_code)
    family = family_of(checkpoint.config.model_type, checkpoint.location)
    return ModelSource(kind=CHECKPOINT, family=family, config=checkpoint.config,
                       input_names=family.inputs(checkpoint.config), identity=content_hashes(checkpoint),
                       random_weights=checkpoint.random_weights, _checkpoint=checkpoint)


def _random_source(spec: SourceSpec, recipe: Recipe, task: Task) -> ModelSource:
    """Random weights: known (config, inputs, identity) without building them; built into
    `spec.random_folder` when a PyTorch model or the tokenizer is first asked for."""
    size = spec.random_weights
    family = get_family(spec.family or recipe.family)
    head = {"num_labels": 2} | task.head_config()
    head.setdefault("id2label", {i: f"LABEL_{i}" for i in range(int(head["num_labels"]))})
    config = SimpleNamespace(**(architecture_config(recipe, family, size) | head))  # type: ignore[arg-type]
    options = {"recipe": recipe, "family": family, "task": task, "size": size, "tokenizer": spec.tokenizer}
    key = random_weights_key(**options)  # type: ignore[arg-type]
    return ModelSource(kind=RANDOM, family=family, config=config, input_names=family.inputs(config),
                       identity={"model": key, "tokenizer": key}, random_weights=size,
                       _build=options | {"folder": spec.random_folder, "key": key,
                                         "trust_remote_code": spec.trust_remote_code})


def _built(*, folder: Path, key: str, recipe: Recipe, family: Family, task: Task, size: str,
           tokenizer: str | None, trust_remote_code: bool) -> Checkpoint:
    """The random model in `folder`, built unless it was built with this key (architecture,
    task head, seed and tokenizer)."""
    if random_weights_record(folder).get("key") != key:
        step(f"random weights: building a {size} {architecture(recipe, family)[0]} model")
        build_random_checkpoint(folder, recipe=recipe, family=family, task=task, size=size,  # type: ignore[arg-type]
                                tokenizer=tokenizer, key=key)
    return resolve_checkpoint(str(folder), recipe, trust_remote_code=trust_remote_code)


def _graph_alone(graph: ImportedGraph, spec: SourceSpec, task: Task) -> ModelSource:
    """A graph without its PyTorch model: the tokenizer folder stands for the checkpoint, the
    labels come from --labels, the folder's config.json or the graph's logits."""
    if spec.tokenizer is None:
        raise ConfigError(f"{graph.info.option}: pass --tokenizer FOLDER (the tokenizer the graph was "
                          "exported with) or --checkpoint (its PyTorch model)")
    folder = Path(spec.tokenizer).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"--tokenizer {spec.tokenizer}: no such folder")
    loaded = load_tokenizer(Checkpoint(location=str(folder), is_local=True, config=SimpleNamespace(),
                                       folder=folder))
    labels = getattr(task, "labels", None)
    config = graph_config(graph, folder, len(loaded), spec.label_names, len(labels) if labels else None)
    checkpoint = Checkpoint(location=str(graph.info.path), is_local=True, config=config, folder=folder)
    rest = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    family = Family(name="graph", model_types=(), tokenizer_class="AutoTokenizer", tokenizer_files=(),
                    architecture="", hub_tokenizer="", input_names=graph.input_names)
    return ModelSource(kind=GRAPH, family=family, config=config, input_names=graph.input_names,
                       identity={"model": graph.key, "tokenizer": files_hash(rest)}, graph=graph,
                       pytorch=False, _checkpoint=checkpoint)


def graph_config(graph: ImportedGraph, tokenizer_folder: Path, vocab_size: int,
                 label_names: tuple[str, ...] | None, task_labels: int | None) -> Any:
    """A config for a graph without its checkpoint: the labels from --labels, else the folder's
    config.json (an Optimum export folder has one), else the graph's logits width."""
    found: dict[str, Any] = {}
    config_json = tokenizer_folder / "config.json"
    if config_json.is_file():
        found = json.loads(config_json.read_text(encoding="utf-8"))
    id2label = {whole_number(str(k)): v for k, v in (found.get("id2label") or {}).items()}
    if None in id2label:
        raise ConfigError(f"{config_json}: id2label keys are class indices (0, 1, ...); fix the file or "
                          "pass --labels")
    width = next(iter(graph.info.outputs.values()), (None,))[-1] if task_labels else None
    count = len(label_names) if label_names else len(id2label) or width or task_labels or 0
    if label_names is None and id2label and len(id2label) != count:
        id2label = {}
    id2label = id2label or {i: f"LABEL_{i}" for i in range(count)}
    return SimpleNamespace(model_type="graph", vocab_size=vocab_size, num_labels=count, id2label=id2label,
                           max_position_embeddings=graph.seq, num_attention_heads=0, hidden_size=0)
