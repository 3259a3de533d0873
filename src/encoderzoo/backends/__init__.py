"""Runtimes behind one small interface, chosen by name. Adding a runtime: one module with a
`create(context, precision)` function, and one `register_backend(...)` below naming it and the
artifact kind it opens at each precision.

A precision may need something of the machine (`needs`: a CUDA GPU, a CPU that computes
bfloat16 natively): asked for by name on a machine without it, it is a one-line error before
any stage runs; among a bare name's default precisions it is left out, with a note. `prefers`
leaves a default precision out where it would run but slowly (bf16 emulated on a CPU without
native bfloat16 took the demo 31 s against fp32's 4 s)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from encoderzoo.artifacts import ARTIFACTS, MODEL
from encoderzoo.backends import openvino_backend, ort_backend, torch_backend
from encoderzoo.backends.base import Backend, BackendContext
from encoderzoo.devices import REQUIREMENTS, Machine
from encoderzoo.errors import ConfigError
from encoderzoo.kinds import BLOCKS_INSTEAD as _KINDS_REGISTERED  # noqa: F401  the kinds backends open
from encoderzoo.options import whole_number
from encoderzoo.precision import PRECISIONS
from encoderzoo.registry import Registry

__all__ = [
    "BACKENDS", "Backend", "BackendContext", "BackendSpec", "Option", "Run", "Wanted", "create_backend",
    "get_backend", "parse_backend_options", "parse_backends", "parse_wanted", "resolve_runs",
]


@dataclass(frozen=True)
class Option:
    """A --backend-option NAME.KEY=VALUE setting: "bool" (true/false), "int" (>= 1) or one of
    `choices`; checked when the configuration is read, before anything runs."""

    help: str
    kind: str = "bool"  # "bool", "int" or "choice"
    choices: tuple[str, ...] = ()

    def check(self, option: str, value: str) -> str:
        text = value.strip().lower()
        if self.kind == "bool" and text not in BOOLEANS:
            raise ConfigError(f"--backend-option {option}={value!r}: use true or false")
        if self.kind == "int" and (whole_number(text) or 0) < 1:
            raise ConfigError(f"--backend-option {option}={value!r}: use a whole number >= 1")
        if self.kind == "choice" and text not in self.choices:
            raise ConfigError(f"--backend-option {option}={value!r}: use {' or '.join(self.choices)}")
        return text


BOOLEANS = ("true", "false", "1", "0", "yes", "no")


class Run(NamedTuple):
    """One backend at one precision (compares, hashes and unpacks as the pair it is)."""

    backend: str
    precision: str

    @property
    def label(self) -> str:
        """E.g. "torch fp32", as reports show it."""
        return f"{self.backend} {self.precision}"

    def __str__(self) -> str:
        return f"{self.backend}:{self.precision}"


@dataclass(frozen=True)
class Wanted:
    """A run as --backends asked for it: named with its precision, or among a backend's defaults."""

    run: Run
    explicit: bool


@dataclass(frozen=True)
class BackendSpec:
    name: str
    description: str
    precisions: tuple[str, ...]  # what it runs (see encoderzoo.precision)
    defaults: tuple[str, ...]  # the precisions a bare `--backends NAME` runs (where the machine can)
    create: Callable[[BackendContext, str], Backend]  # builds it for a precision
    opens: Mapping[str, str]  # precision -> the artifact kind it runs (see encoderzoo.artifacts)
    options: Mapping[str, Option] = field(default_factory=dict)  # --backend-option NAME.KEY=VALUE keys
    needs: Mapping[str, str] = field(default_factory=dict)  # precision -> a Machine requirement
    prefers: Mapping[str, str] = field(default_factory=dict)  # default precisions run only where met
    takes_providers: bool = False  # it runs on --providers (ONNX Runtime's execution providers)
    batching: Mapping[str, int] = field(default_factory=dict)  # its defaults: max_tokens, multiple
    library: str = ""  # the package that computes its outputs (its version is in the outputs' cache key)
    # raised when a default that changes its outputs changes: outputs cached before are computed again
    revision: int = 1

    def artifact(self, precision: str) -> str:
        """The artifact kind it runs at `precision`."""
        return self.opens[precision]


BACKENDS: Registry[BackendSpec] = Registry("backend")


def register_backend(spec: BackendSpec) -> BackendSpec:
    requirements = {*spec.needs.values(), *spec.prefers.values()} - set(REQUIREMENTS)
    if requirements or not set(spec.defaults) <= set(spec.precisions):
        raise ValueError(f"backend {spec.name!r}: unknown requirements {requirements} or default precisions")
    unknown = [p for p in spec.precisions if p not in PRECISIONS or spec.opens.get(p) not in ARTIFACTS]
    if unknown or set(spec.opens) != set(spec.precisions):
        raise ValueError(f"backend {spec.name!r}: precision {unknown[:1]} unknown, or without the artifact "
                         "it opens")
    return BACKENDS.register(spec.name, spec)


def get_backend(name: str) -> BackendSpec:
    return BACKENDS[name]


def parse_backends(text: str) -> list[Run]:
    """'onnxruntime' (its default precisions) or 'onnxruntime:int8' -> the runs it asks for."""
    name, _, precision = text.strip().partition(":")
    spec = get_backend(name)
    if not precision:
        return [Run(name, p) for p in spec.defaults]
    if precision not in spec.precisions:
        raise ConfigError(
            f"backend {name!r} has no precision {precision!r}; it has {', '.join(spec.precisions)}"
        )
    return [Run(name, precision)]


def parse_wanted(entries: Sequence[str]) -> tuple[Wanted, ...]:
    """The --backends entries as the runs they ask for, each marked as named or a default."""
    return tuple(Wanted(run, explicit=":" in entry) for entry in entries for run in parse_backends(entry))


def resolve_runs(wanted: Sequence[Wanted] | Sequence[str], machine: Machine) -> tuple[list[Run], list[str]]:
    """The runs of `--backends` (parsed, or its entries) on this machine, without repeats, and a
    note for each default precision left out. A precision named explicitly that the machine
    cannot run is a ConfigError."""
    runs: list[Run] = []
    notes: list[str] = []
    for entry in [w for w in wanted if isinstance(w, Wanted)] or parse_wanted(wanted):  # type: ignore[arg-type]
        (name, precision), spec = entry.run, get_backend(entry.run.backend)
        need = spec.needs.get(precision)
        if need and not machine.has(need):
            if entry.explicit:
                raise ConfigError(machine.refusal(name, precision, need))
            notes.append(f"{name} {precision} left out: {machine.lacks(need)}")
            continue
        prefer = spec.prefers.get(precision)
        if prefer and not entry.explicit and not machine.has(prefer):
            notes.append(f"{name} {precision} left out: {machine.lacks(prefer)} (name {name}:{precision} "
                         "to run it anyway)")
            continue
        if entry.run not in runs:
            runs.append(entry.run)
    if not runs:
        asked = ",".join(dict.fromkeys(str(w.run) for w in wanted))
        raise ConfigError(f"--backends {asked}: nothing this machine can run ({'; '.join(notes)})")
    return runs, notes


def parse_backend_options(values: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """'onnxruntime.io_binding=true' -> {"onnxruntime": {"io_binding": "true"}}, checked against
    each backend's declared options and their kinds of value."""
    options: dict[str, dict[str, str]] = {}
    for value in values:
        target, sep, setting = value.partition("=")
        name, dot, key = target.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--backend-option takes BACKEND.KEY=VALUE, e.g. onnxruntime.io_binding=true; "
                              f"got {value!r}")
        spec = get_backend(name)
        if key not in spec.options:
            known = ", ".join(f"{k} ({o.help})" for k, o in spec.options.items()) or "none"
            raise ConfigError(f"backend {name!r} has no option {key!r}; its options: {known}")
        options.setdefault(name, {})[key] = spec.options[key].check(f"{name}.{key}", setting)
    return options


def create_backend(name: str, precision: str, context: BackendContext) -> Backend:
    spec = get_backend(name)
    need = spec.needs.get(precision)
    machine = Machine.here(context.device)
    if need and not machine.has(need):
        raise ConfigError(machine.refusal(name, precision, need))
    if ARTIFACTS[spec.artifact(precision)].is_graph and context.graph is None:
        raise ConfigError(f"backend {name!r} needs an exported graph; run `encoderzoo export` first")
    return spec.create(context, precision)


register_backend(BackendSpec(
    name="torch", description="PyTorch eager: fp32 (the reference), bf16 autocast; fp16 on CUDA",
    precisions=("fp32", "bf16", "fp16"), defaults=("fp32", "bf16"),
    create=torch_backend.create, opens=dict.fromkeys(("fp32", "bf16", "fp16"), MODEL),
    needs={"fp16": "cuda"}, prefers={"bf16": "native-bf16"}, library="torch",
    # oneDNN keeps state per input shape too: the demo's fp32 run peaked at 595 MiB with 64
    # widths, 569 with widths in steps of 8 (bf16: 622 -> 559); its target is 587
    batching={"multiple": 8},
))
register_backend(BackendSpec(
    name="onnxruntime",
    description="ONNX Runtime (CPU, CUDA, TensorRT): fused fp32, int8 dynamic, int8 in blocks, int8 per "
                "token, int8 static QDQ, fp16 on GPU",
    precisions=("fp32", "int8", "int8-block", "int8-token", "int8-static", "fp16"),
    defaults=("fp32", "int8"), create=ort_backend.create, needs={"fp16": "cuda"},
    opens={"fp32": "onnx-fused", "int8": "onnx-int8", "int8-block": "onnx-int8-block",
           "int8-token": "onnx-int8-token", "int8-static": "onnx-int8-static", "fp16": "onnx-fp16"},
    takes_providers=True, library="onnxruntime",
    options={"io_binding": Option("true|false: bind inputs and outputs once per batch (default: true "
                                  "on CUDA, outputs stay on the device until copied; false on CPU)"),
             "spinning": Option("true|false: worker threads spin between runs (default true)")},
))
register_backend(BackendSpec(
    name="openvino", description="OpenVINO on the CPU: fp32, bf16 inference precision, NNCF int8 (static), "
                                 "int8 weights with each token's activations quantized at run time",
    precisions=("fp32", "bf16", "int8", "int8-token"),
    defaults=("fp32", "bf16", "int8"), create=openvino_backend.create,
    opens={"fp32": "onnx", "bf16": "onnx", "int8": "openvino-int8", "int8-token": "openvino-int8-token"},
    needs={"bf16": "native-bf16"}, library="openvino",
    revision=2,  # 2: an int8 IR's float layers in fp32 by default (1: bf16 where the CPU had it)
    # exact widths: OpenVINO keeps state per input shape (the demo's int8 infer: 483 MiB with its
    # 64 widths, 373 with widths in steps of 8; target 545), but steps of 8 pad ~15 % more tokens
    # and ran 10 % slower (median of 9 passes, 999 against 897 ms)
    options={"hint": Option("latency|throughput: the performance hint for single batches (default "
                            "latency)", kind="choice", choices=("latency", "throughput")),
             "streams": Option("parallel inference streams (default: the hint's choice)", kind="int"),
             "async": Option("true|false: whole datasets through an async queue of throughput streams "
                             "(default true)"),
             "int8_float": Option("fp32|bf16: the precision of the layers an int8 or int8-token IR leaves in "
                                  "float (default fp32: bf16 gave wrong outputs on AMX CPUs)",
                                  kind="choice", choices=("fp32", "bf16"))},
))
