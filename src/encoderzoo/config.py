"""RunConfig: every option of a run, typed and documented, resolved against the recipe."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from encoderzoo.backends import parse_backend_options, parse_backends
from encoderzoo.bench import BenchSettings
from encoderzoo.environment import available_cores
from encoderzoo.errors import ConfigError
from encoderzoo.features import Batching, Order, Padding
from encoderzoo.infer import DEFAULT_SHARD_ROWS
from encoderzoo.optimize import DEFAULT_TIMEOUT_S
from encoderzoo.recipes import Recipe, get_recipe
from encoderzoo.sources import default_cache_dir

DEFAULT_BACKENDS = ("torch", "onnxruntime", "openvino")


@dataclass(frozen=True)
class RunConfig:
    recipe: str  # a registered recipe name
    out: Path  # the run's folder
    checkpoint: str | None = None  # folder or hub id; default: the recipe's
    random_weights: str | None = None  # "tiny" or "base": a random model of the recipe's architecture
    tokenizer: str | None = None  # with random_weights: a folder with the family's tokenizer files
    label_names: tuple[str, ...] | None = None  # the model's class names in order, over config.id2label
    data: tuple[str, ...] = ()  # PATH, FOLDER or SPLIT=PATH values; default: the recipe's
    backends: tuple[str, ...] = DEFAULT_BACKENDS  # "name" (its default precisions) or "name:precision"
    seq_len: int | None = None  # max tokens per example for inference; default: the recipe's
    batch_size: int = 32  # inference batch size
    padding: Padding = "dynamic"  # "dynamic": pad each batch to its longest; "fixed": to seq_len
    order: Order = "length"  # "length": batches of similar lengths (outputs return in dataset order)
    buckets: tuple[int, ...] = ()  # static shapes: pad each batch up to the smallest bucket that fits
    limit: int | None = None  # only the first N examples
    batch_sizes: tuple[int, ...] | None = None  # benchmark sweep; default: the recipe's
    seq_lens: tuple[int, ...] | None = None  # benchmark sweep; default: (seq_len,)
    threads: int = field(default_factory=available_cores)  # intra-op threads for every backend
    device: str = "auto"  # "auto" (a CUDA GPU when one is present, else the CPU), "cpu" or "cuda"
    providers: tuple[str, ...] = ()  # ONNX Runtime providers in order (cpu, cuda, tensorrt); () = by device
    backend_options: tuple[str, ...] = ()  # BACKEND.KEY=VALUE session settings, e.g. openvino.hint=throughput
    optimize: bool = True  # fuse the ONNX graph with ONNX Runtime's transformer optimizer
    optimize_timeout: float = DEFAULT_TIMEOUT_S  # seconds before the optimizer is given up
    calibration_size: int = 100  # examples (spread over the data) that calibrate int8 models
    triage: bool = True  # re-quantize an int8 model that misses its gate, leaving its worst nodes in float
    gate: float | None = None  # fraction of the reference metric to keep; default: the recipe's
    min_agreement: float | None = None  # share of predictions equal to torch fp32's; default: the task's
    reference: tuple[str, ...] = ()  # METRIC=VALUE (percent or fraction): what torch fp32 is gated against
    bench: bool = True  # run the benchmark stage in `run`
    warmup: int = 2  # benchmark: untimed runs per point
    min_runs: int = 5  # benchmark: timed runs per point, at least
    min_seconds: float = 1.0  # benchmark: timed seconds per point, at least
    cache_dir: Path = field(default_factory=default_cache_dir)  # downloads
    engine: str = "local"  # "local": this process; "ray": a Ray cluster's actors (Ray Data)
    ray_address: str | None = None  # with engine "ray": the cluster (default: RAY_ADDRESS, else a local one)
    ray_actors: int = 2  # with engine "ray": actors, each with its own copy of the model
    resume: bool = False  # continue an interrupted run from its partial folder and output shards
    shard_size: int = DEFAULT_SHARD_ROWS  # rows per output shard (the most an interruption loses)
    e2e_runs: int = 3  # warm passes over the data after inference, timed (0: none); the median is reported
    e2e_rows: int = 1024  # rows (spread over the data) a timed warm pass runs at most
    e2e_seconds: float = 5.0  # ...and no more rows than the real pass ran in this many seconds
    trust_remote_code: bool = False  # let transformers run Python code shipped in the checkpoint folder
    overwrite: bool = False  # replace an --out folder encoderzoo did not make (never one holding the inputs)

    def __post_init__(self) -> None:
        get_recipe(self.recipe)
        for name in self.backends:
            parse_backends(name)
        parse_backend_options(self.backend_options)
        if not self.backends:
            raise ConfigError("--backends is empty; name at least one backend")
        _positive("--batch-size", [self.batch_size])
        _positive("--batch-sizes", self.batch_sizes)
        _positive("--seq-lens", self.seq_lens)
        _positive("--seq-len", [self.seq_len])
        _positive("--limit", [self.limit])
        _positive("--threads", [self.threads])
        _positive("--min-runs", [self.min_runs])
        _positive("--calibration-size", [self.calibration_size])
        _positive("--shard-size", [self.shard_size])
        _positive("--ray-actors", [self.ray_actors])
        _positive("--e2e-rows", [self.e2e_rows])
        if self.e2e_seconds <= 0:
            raise ConfigError(f"--e2e-seconds must be > 0, got {self.e2e_seconds}")
        if self.e2e_runs < 0:
            raise ConfigError(f"--e2e-runs must be >= 0, got {self.e2e_runs}")
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"--engine is local or ray, not {self.engine!r}")
        if self.batch_sizes == () or self.seq_lens == ():
            raise ConfigError("--batch-sizes and --seq-lens need at least one value")
        if self.warmup < 0 or self.min_seconds < 0:
            raise ConfigError("--warmup and --min-seconds must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device is auto, cpu or cuda, not {self.device!r}")
        if self.padding not in ("dynamic", "fixed"):
            raise ConfigError(f"--padding must be 'dynamic' or 'fixed', not {self.padding!r}")
        if self.order not in ("length", "dataset"):
            raise ConfigError(f"--order must be 'length' or 'dataset', not {self.order!r}")
        _positive("--buckets", self.buckets)
        if self.buckets and self.padding == "fixed":
            raise ConfigError("--buckets pads to bucket sizes; leave out --padding fixed")
        if self.random_weights not in (None, "tiny", "base"):
            raise ConfigError(f"--random-weights is 'tiny' or 'base', not {self.random_weights!r}")
        if self.random_weights and self.checkpoint:
            raise ConfigError("--random-weights builds its own model; leave out --checkpoint")
        if self.tokenizer and not self.random_weights:
            raise ConfigError("--tokenizer goes with --random-weights; a checkpoint brings its own")
        if self.optimize_timeout <= 0:
            raise ConfigError("--optimize-timeout must be > 0 seconds")
        if self.gate is not None and not 0.0 <= self.gate <= 1.0:
            raise ConfigError(f"--gate must be between 0 and 1 (e.g. 0.99), not {self.gate}")
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ConfigError(f"--min-agreement must be between 0 and 1 (e.g. 0.95), not "
                              f"{self.min_agreement}")
        parse_reference(self.reference)

    @property
    def recipe_spec(self) -> Recipe:
        return get_recipe(self.recipe)

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """The local files and folders this run reads (none of them may lie inside --out)."""
        named = [self.checkpoint, self.tokenizer, *(d.partition("=")[2] or d for d in self.data)]
        return tuple(Path(p) for p in named if p and Path(p).expanduser().exists())

    @property
    def effective_seq_len(self) -> int:
        return self.seq_len or self.recipe_spec.seq_len

    @property
    def effective_gate(self) -> float:
        return self.recipe_spec.gate if self.gate is None else self.gate

    @property
    def batching(self) -> Batching:
        return Batching(batch_size=self.batch_size, order=self.order, padding=self.padding,
                        buckets=tuple(sorted(self.buckets)))

    def bench_settings(self) -> BenchSettings:
        return BenchSettings(
            batch_sizes=self.batch_sizes or self.recipe_spec.batch_sizes,
            seq_lens=self.seq_lens or (self.effective_seq_len,),
            warmup=self.warmup, min_runs=self.min_runs, min_seconds=self.min_seconds,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def parse_reference(values: tuple[str, ...]) -> dict[str, float]:
    """--reference METRIC=VALUE values as fractions: 92.4 and 0.924 both mean 92.4 %."""
    found = {}
    for value in values:
        metric, sep, number = value.partition("=")
        try:
            fraction = float(number)
        except ValueError:
            fraction = -1.0
        if not sep or not metric.strip() or not 0.0 <= fraction <= 100.0:
            raise ConfigError(f"--reference takes METRIC=VALUE, e.g. accuracy=92.4 or f1=0.924; "
                              f"got {value!r}")
        found[metric.strip()] = fraction / 100 if fraction > 1.0 else fraction
    return found


def _positive(option: str, values: Any) -> None:
    """Every given value is >= 1 (None stands for the default)."""
    bad = [v for v in values or () if v is not None and v < 1]
    if bad:
        raise ConfigError(f"{option} must be >= 1, got {bad[0]}")


# -- run configuration files -----------------------------------------------------------------------

INTS = {"batch_size", "seq_len", "limit", "threads", "calibration_size", "warmup", "min_runs", "shard_size",
        "ray_actors", "e2e_runs", "e2e_rows"}
FLOATS = {"optimize_timeout", "gate", "min_seconds", "min_agreement", "e2e_seconds"}
BOOLS = {"optimize", "triage", "bench", "resume", "trust_remote_code", "overwrite"}
INT_LISTS = {"batch_sizes", "seq_lens", "buckets"}
STR_LISTS = {"backends", "providers", "label_names", "data", "backend_options", "reference"}
PATHS = {"out", "cache_dir"}
STRS = {"recipe", "checkpoint", "random_weights", "tokenizer", "padding", "order", "device", "engine",
        "ray_address"}
FIELDS = INTS | FLOATS | BOOLS | INT_LISTS | STR_LISTS | PATHS | STRS


def read_config_file(path: Path) -> dict[str, Any]:
    """RunConfig values from a TOML (or YAML) file whose keys are the options' names, e.g.
    `batch-size = 16`, `backends = ["torch", "onnxruntime:int8"]`; checked and converted."""
    import difflib

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the configuration file ({err})") from None
    data = _parse_config_text(path, text)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in FIELDS:
            close = difflib.get_close_matches(key, sorted(FIELDS), n=1)
            hint = f"; did you mean '{close[0].replace('_', '-')}'?" if close else ""
            raise ConfigError(f"{path}: unknown option '{raw_key}'{hint}")
        values[key] = _convert(path, key, value)
    return values


def _parse_config_text(path: Path, text: str) -> dict[str, Any]:
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML ({err}); see https://toml.io") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected option = value pairs at the top level")
    return data


def _convert(path: Path, key: str, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{path}: {key.replace('_', '-')} = {value!r}: expected {expected}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if key in INTS:
        if not is_int(value):
            raise bad("an integer")
        return value
    if key in FLOATS:
        if not (is_int(value) or isinstance(value, float)):
            raise bad("a number")
        return float(value)
    if key in BOOLS:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key in PATHS or key in STRS:
        if not isinstance(value, str):
            raise bad("a string")
        return Path(value) if key in PATHS else value
    items = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise bad("a list")
    if key in INT_LISTS:
        if isinstance(value, str):  # "1,8,32", as on the command line
            items = [int(v) if v.isdigit() else v for v in items]
        if not all(is_int(v) for v in items):
            raise bad("a list of integers")
        return tuple(items)
    if not all(isinstance(v, str) for v in items):
        raise bad("a list of strings")
    return tuple(items)


def to_toml(values: dict[str, Any]) -> str:
    """A RunConfig's values as a configuration file (unset options as comments)."""
    lines = []
    for key, value in values.items():
        name = key.replace("_", "-")
        if value is None:
            lines.append(f"# {name} =  (default)")
        elif isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{name} = {value}")
        elif isinstance(value, list | tuple):
            lines.append(f"{name} = [{', '.join(json.dumps(v) for v in value)}]")
        else:
            lines.append(f"{name} = {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"
