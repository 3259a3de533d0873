"""RunConfig: every option of a run, typed and documented once (help text, topic, flag and
default beside each field: the CLI and configuration files are built from it), validated, and
resolved against the recipe. Imports no stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from encoderzoo.backends import Wanted, parse_backend_options, parse_wanted
from encoderzoo.bench import BenchSettings
from encoderzoo.environment import available_cores
from encoderzoo.errors import ConfigError
from encoderzoo.families import get_family
from encoderzoo.features import Batching, Order, Padding
from encoderzoo.options import opt
from encoderzoo.recipes import Recipe, get_recipe
from encoderzoo.scoring import parse_reference
from encoderzoo.sources import default_cache_dir

DEFAULT_BACKENDS = ("torch", "onnxruntime", "openvino")
RECIPES_OWN = "the recipe's"


@dataclass(frozen=True)
class RunConfig:
    recipe: str  # a registered recipe name
    out: Path  # the run's folder
    # -- data
    data: tuple[str, ...] = opt((), "Dataset file, a folder holding each split's file, or SPLIT=PATH "
                                "(repeatable).", panel="data", kind="multi", default_text=RECIPES_OWN)
    limit: int | None = opt(None, "Only the first N examples.", panel="data")
    text_column: str | None = opt(None, "classify/regress: the column holding the text.", panel="data")
    text_pair_column: str | None = opt(None, "classify/regress: the column holding a pair's second text.",
                                       panel="data")
    label_column: str | None = opt(None, "classify/regress: the column holding the label (a class name or "
                                   "index) or the target number.", panel="data")
    metric: tuple[str, ...] = opt((), "classify: accuracy,f1,f1-macro,mcc; regress: pearson,spearman "
                                  "(gated; RMSE is shown beside).", panel="data", kind="csv",
                                  default_text="accuracy / pearson,spearman")
    seq_len: int | None = opt(None, "Max tokens per example.", panel="data", default_text=RECIPES_OWN)
    strict_entities: bool = opt(False, "ner: count only the entities the tag scheme allows (IOB2, BIOES), as "
                                "seqeval's strict mode; default: conlleval's rules.", panel="data")
    null_threshold: float | None = opt(None, "squad2: answer \"\" when the null score beats the best span by "
                                       "more than this (logits).", panel="data", default_text="0")
    label_names: tuple[str, ...] | None = opt(
        None, "The model's class names in class order, e.g. entailment,neutral,contradiction.", panel="data",
        flags=("--label-names", "--labels"), kind="csv", default_text="config.id2label")
    # -- model
    checkpoint: str | None = opt(None, "Hugging Face folder or hub id (ORG/NAME[@REVISION]).", panel="model",
                                 default_text="the run folder's (from prepare), else the recipe's")
    random_weights: str | None = opt(None, "tiny|base: a randomly initialised model of the recipe's "
                                     "architecture.", panel="model")
    onnx: str | None = opt(None, "An ONNX graph exported elsewhere to run instead of exporting one (needs "
                           "--tokenizer, or --checkpoint for the tokenizer and a PyTorch comparison).",
                           panel="model", flags=("--onnx",))
    openvino: str | None = opt(None, "An OpenVINO IR (FILE.xml beside FILE.bin) made elsewhere, run on "
                               "openvino (with --tokenizer or --checkpoint, as --onnx).", panel="model",
                               flags=("--openvino",))
    input_map: tuple[str, ...] = opt((), "With --onnx/--openvino: GRAPH_INPUT=OURS pairs, OURS one of "
                                     "input_ids, attention_mask, token_type_ids (default: matched by name).",
                                     panel="model", kind="csv")
    family: str | None = opt(None, "With --random-weights: the model family whose base architecture is built "
                             "(bert, roberta, distilbert, electra, ...; see `encoderzoo families`).",
                             panel="model", default_text="the recipe's")
    tokenizer: str | None = opt(None, "With --random-weights: a folder with the family's tokenizer files.",
                                panel="model")
    trust_remote_code: bool = opt(False, "Let transformers run Python code shipped in the checkpoint folder "
                                  "(auto_map). Off by default: read that code first.", panel="model")
    optimize: bool = opt(True, "Fuse the ONNX graph with ONNX Runtime's transformer optimizer.",
                         panel="model", switch="--optimize/--no-optimize")
    optimize_timeout: float = opt(300.0, "Seconds before the graph optimizer is given up (the unfused "
                                  "graph is used).", panel="model")
    # 300: MiniLM's NNCF int8 at its bar with 300 rows, not 100 (see quantize.SMOOTH_QUANT_ALPHA)
    calibration_size: int = opt(300, "Examples, spread over the data, that calibrate int8 models.",
                                panel="model")
    # -- backends
    backends: tuple[str, ...] = opt(DEFAULT_BACKENDS, "Comma-separated backends (each with its default "
                                    "precisions this machine runs) or name:precision, e.g. torch:fp32,"
                                    "onnxruntime:int8,openvino:bf16.", panel="backends", kind="csv")
    threads: int = opt(help="Intra-op threads for every backend.", panel="backends", factory=available_cores,
                       default_text="the available cores")
    device: str = opt("auto", "auto: a CUDA GPU when one is present (never required), else the CPU; cpu; "
                      "cuda.", panel="backends")
    providers: tuple[str, ...] = opt((), "ONNX Runtime execution providers in order, e.g. tensorrt,cuda,cpu.",
                                     panel="backends", kind="csv", default_text="by --device")
    backend_options: tuple[str, ...] = opt(
        (), "BACKEND.KEY=VALUE session setting (repeatable): onnxruntime.io_binding, onnxruntime.spinning, "
        "openvino.hint, openvino.streams, openvino.async.", panel="backends", flags=("--backend-option",),
        kind="multi")
    engine: str = opt("local", "local: this process; ray: a Ray cluster's actors through Ray Data.",
                      panel="backends")
    ray_address: str | None = opt(None, "With --engine ray: the cluster, e.g. ray://head:10001.",
                                  panel="backends", default_text="RAY_ADDRESS, else a local cluster")
    ray_actors: int = opt(2, "With --engine ray: actors, each loading the model once.", panel="backends")
    # -- batching
    batch_size: int = opt(32, "Inference batch size.", panel="batching")
    padding: Padding = opt("dynamic", "dynamic: pad each batch to its longest; fixed: pad to --seq-len.",
                           panel="batching")
    order: Order = opt("length", "length: batch examples of similar length together (outputs keep "
                       "dataset order); dataset: as they come.", panel="batching")
    buckets: tuple[int, ...] = opt((), "Static shapes: pad each batch to the smallest of these lengths "
                                   "that fits, e.g. 32,64,128.", panel="batching", kind="ints")
    max_tokens: int | None = opt(None, "Fill batches by tokens: rows join a batch while rows x padded "
                                 "length stays within N (--batch-size no longer caps it); 0: --batch-size "
                                 "rows per batch.", panel="batching", default_text="the backend's")
    pad_multiple: int | None = opt(None, "Dynamic padding: round each batch's width up to a multiple of N "
                                   "(fewer distinct shapes: OpenVINO keeps state per shape).",
                                   panel="batching", default_text="the backend's")
    # -- gate
    gate: float | None = opt(None, "Fraction of the baseline metric each backend must keep.", panel="gate",
                             default_text="the recipe's, 0.99")
    min_agreement: float | None = opt(None, "Share of predictions that must equal torch fp32's, e.g. 0.95.",
                                      panel="gate", default_text="the task's")
    reference: tuple[str, ...] = opt(
        (), "METRIC=VALUE (repeatable, percent or fraction), e.g. accuracy=92.4: what torch fp32 is gated "
        "against.", panel="gate", kind="multi",
        default_text="the recipe's published score for its own checkpoint, else the checkpoint's "
                     "eval_results.json, else none: torch fp32 is the reference")
    triage: bool = opt(True, "Re-quantize an int8 model that misses its gate, leaving the nodes that "
                       "drift most in float.", panel="gate", switch="--triage/--no-triage")
    triage_rows: int | None = opt(None, "Examples each triage trial re-runs, a share stratified by label, "
                                  "split and length (the chosen graph is then confirmed on all); 0: all.",
                                  panel="gate", default_text="a quarter, at least 500")
    # -- benchmark
    bench: bool = opt(True, "Run the benchmark stage.", panel="benchmark", switch="--bench/--no-bench")
    batch_sizes: tuple[int, ...] | None = opt(None, "Benchmark batch sizes, e.g. 1,8,32.", panel="benchmark",
                                              kind="ints", default_text=RECIPES_OWN)
    seq_lens: tuple[int, ...] | None = opt(None, "Benchmark sequence lengths, e.g. 64,128.",
                                           panel="benchmark", kind="ints", default_text="--seq-len")
    warmup: int = opt(2, "Benchmark: untimed runs per point.", panel="benchmark")
    min_runs: int = opt(5, "Benchmark: timed runs per point, at least.", panel="benchmark")
    min_seconds: float = opt(1.0, "Benchmark: timed seconds per point, at least.", panel="benchmark")
    ceiling: bool = opt(True, "Measure the machine's GEMM ceiling per precision (cached per machine) and "
                        "show every timing as GFLOP/s and % of it.", panel="benchmark",
                        switch="--ceiling/--no-ceiling")
    e2e_runs: int = opt(3, "Warm passes over the data timed after inference (the median is reported); "
                        "0: none.", panel="benchmark")
    e2e_rows: int = opt(1024, "Rows, spread over the data, that a timed warm pass runs at most.",
                        panel="benchmark")
    e2e_seconds: float = opt(5.0, "...and no more rows than the real pass ran in this many seconds.",
                             panel="benchmark")
    # -- run control
    resume: bool = opt(False, "Continue an interrupted run: finished stages and output shards are kept.",
                       panel="run control")
    shard_size: int = opt(1024, "Inference outputs are saved every this many rows (for --resume).",
                          panel="run control")
    overwrite: bool = opt(False, "Replace an existing folder that encoderzoo did not make (refused by "
                          "default; never one that holds this run's inputs).", panel="run control")
    cache_dir: Path = opt(help="Where downloads are kept.", panel="run control", factory=default_cache_dir,
                          default_text="$XDG_CACHE_HOME/encoderzoo")

    config_file: Path | None = None  # the --config file the options were read from (an input of the run)

    # -- parsed once from the fields above (first in __post_init__, which checks them) ------------

    @cached_property
    def wanted(self) -> tuple[Wanted, ...]:
        """--backends as the runs it asks for, each marked as named or a default."""
        return parse_wanted(self.backends)

    @cached_property
    def backend_settings(self) -> dict[str, dict[str, str]]:
        """--backend-option values, per backend, checked."""
        return parse_backend_options(self.backend_options)

    @cached_property
    def reference_metrics(self) -> dict[str, float]:
        """--reference values as fractions."""
        return parse_reference(self.reference)

    def __post_init__(self) -> None:
        get_recipe(self.recipe)
        if not self.backends:
            raise ConfigError("--backends is empty; name at least one backend")
        _ = self.wanted, self.backend_settings, self.reference_metrics  # parsed once, checked now
        for option, values in (("--batch-size", [self.batch_size]), ("--batch-sizes", self.batch_sizes),
                               ("--seq-lens", self.seq_lens), ("--seq-len", [self.seq_len]),
                               ("--limit", [self.limit]), ("--threads", [self.threads]),
                               ("--min-runs", [self.min_runs]), ("--shard-size", [self.shard_size]),
                               ("--calibration-size", [self.calibration_size]),
                               ("--ray-actors", [self.ray_actors]), ("--e2e-rows", [self.e2e_rows]),
                               ("--buckets", self.buckets), ("--pad-multiple", [self.pad_multiple])):
            _positive(option, values)
        _one_of("--engine", self.engine, ("local", "ray"))
        _one_of("--device", self.device, ("auto", "cpu", "cuda"))
        _one_of("--padding", self.padding, ("dynamic", "fixed"))
        _one_of("--order", self.order, ("length", "dataset"))
        _one_of("--random-weights", self.random_weights, (None, "tiny", "base"))
        for option, value in (("--gate", self.gate), ("--min-agreement", self.min_agreement)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{option} must be between 0 and 1 (e.g. 0.99), not {value}")
        if self.batch_sizes == () or self.seq_lens == ():
            raise ConfigError("--batch-sizes and --seq-lens need at least one value")
        if min(self.warmup, self.min_seconds, self.e2e_runs, self.max_tokens or 0, self.triage_rows or 0) < 0:
            raise ConfigError("--warmup, --min-seconds, --e2e-runs, --max-tokens, --triage-rows must be >= 0")
        if self.optimize_timeout <= 0 or self.e2e_seconds <= 0:
            raise ConfigError("--optimize-timeout and --e2e-seconds must be > 0 seconds")
        if self.buckets and self.padding == "fixed":
            raise ConfigError("--buckets pads to bucket sizes; leave out --padding fixed")
        if self.random_weights and self.checkpoint:
            raise ConfigError("--random-weights builds its own model; leave out --checkpoint")
        if self.family and not self.random_weights:
            raise ConfigError("--family picks the architecture of --random-weights; a checkpoint's family "
                              "comes from its config.json")
        if self.family:
            get_family(self.family)
        graph = self.onnx or self.openvino
        if self.onnx and self.openvino:
            raise ConfigError("--onnx and --openvino each name the graph to run; give one of them")
        if graph and self.random_weights:
            raise ConfigError("--random-weights builds its own model; leave it out with --onnx/--openvino")
        if graph and not (self.tokenizer or self.checkpoint):
            option = "--onnx" if self.onnx else "--openvino"
            raise ConfigError(f"{option} {graph}: pass --tokenizer FOLDER (the "
                              "tokenizer the graph was exported with) or --checkpoint (its PyTorch model)")
        if self.input_map and not graph:
            raise ConfigError("--input-map names the inputs of an --onnx or --openvino graph")
        if self.tokenizer and not (self.random_weights or graph):
            raise ConfigError("--tokenizer goes with --random-weights or --onnx/--openvino; a checkpoint "
                              "brings its own")
        if self.tokenizer and self.checkpoint:
            raise ConfigError("--checkpoint brings its own tokenizer; leave out --tokenizer")

    @property
    def recipe_spec(self) -> Recipe:
        return get_recipe(self.recipe)

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """The local files and folders this run reads (none of them may lie inside --out)."""
        named = [self.checkpoint, self.tokenizer, self.onnx, self.openvino, self.config_file,
                 *(d.partition("=")[2] or d for d in self.data)]
        return tuple(Path(p) for p in named if p and Path(p).expanduser().exists())

    @property
    def out_folder(self) -> Path:
        """The folder --out names (`.`, `~` and symlinks resolved): one folder, one lock."""
        return Path(self.out).expanduser().resolve()

    @property
    def protected_paths(self) -> tuple[Path, ...]:
        """What --out may never hold: this run's input paths, and the caches its downloads go to
        (encoderzoo's --cache-dir, the Hugging Face hub cache), whether they exist yet or not."""
        from huggingface_hub import constants

        return (*self.input_paths, self.cache_dir, Path(constants.HF_HUB_CACHE))

    @property
    def graph(self) -> tuple[Path, str] | None:
        """The graph made elsewhere and its format ("onnx" or "openvino"), if one is given."""
        if self.onnx:
            return Path(self.onnx).expanduser(), "onnx"
        return (Path(self.openvino).expanduser(), "openvino") if self.openvino else None

    @property
    def effective_seq_len(self) -> int:
        return self.seq_len or self.recipe_spec.seq_len

    @property
    def effective_gate(self) -> float:
        return self.recipe_spec.gate if self.gate is None else self.gate

    @property
    def batching(self) -> Batching:
        return self.batching_for({})

    def batching_for(self, defaults: Mapping[str, int]) -> Batching:
        """The batching, with a backend's own defaults (`max_tokens`, `multiple`) where the
        options leave them unset."""
        max_tokens = defaults.get("max_tokens", 0) if self.max_tokens is None else self.max_tokens
        multiple = defaults.get("multiple", 1) if self.pad_multiple is None else self.pad_multiple
        return Batching(batch_size=self.batch_size, order=self.order, padding=self.padding,
                        buckets=tuple(sorted(self.buckets)), max_tokens=max_tokens, multiple=multiple)

    def bench_settings(self) -> BenchSettings:
        return BenchSettings(batch_sizes=self.batch_sizes or self.recipe_spec.batch_sizes,
                             seq_lens=self.seq_lens or (self.effective_seq_len,), warmup=self.warmup,
                             min_runs=self.min_runs, min_seconds=self.min_seconds)

    def to_json(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k != "config_file"}
        return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def _positive(option: str, values: Any) -> None:
    """Every given value is >= 1 (None stands for the default)."""
    bad = [v for v in values or () if v is not None and v < 1]
    if bad:
        raise ConfigError(f"{option} must be >= 1, got {bad[0]}")


def _one_of(option: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        shown = " or ".join(repr(a) if a else "unset" for a in allowed)
        raise ConfigError(f"{option} is {shown}, not {value!r}")
