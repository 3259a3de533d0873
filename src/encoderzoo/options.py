"""How a RunConfig field is offered on the command line and in configuration files, declared
once beside the field (`opt(...)`): its help text, the topic it is listed under in `--help`,
its flag and how the flag's text becomes the field's value. The CLI is generated from these."""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from encoderzoo.errors import ConfigError

PANELS = ("data", "model", "backends", "batching", "gate", "benchmark", "run control")

# RunConfig's options, by what they are about: a stage declares what it reads from these (see cli)
MODEL = ("checkpoint", "random_weights", "family", "tokenizer", "onnx", "openvino", "input_map",
         "trust_remote_code")
DATA = ("data", "limit", "seq_len", "label_names")
BACKENDS = ("backends", "threads", "device", "providers", "backend_options")
BATCHING = ("batch_size", "padding", "order", "buckets", "max_tokens", "pad_multiple")
RAY = ("engine", "ray_address", "ray_actors")
GATE = ("gate", "min_agreement", "reference")
BENCH = ("batch_sizes", "seq_lens", "warmup", "min_runs", "min_seconds", "ceiling")
E2E = ("e2e_runs", "e2e_rows", "e2e_seconds", "ceiling")


@dataclass(frozen=True)
class OptionSpec:
    help: str
    panel: str  # one of PANELS
    flags: tuple[str, ...] = ()  # default: --field-name
    kind: str = "plain"  # plain | csv (a,b -> strings) | ints (1,8 -> integers) | multi (repeatable)
    switch: str | None = None  # a boolean's --yes/--no form, e.g. "--bench/--no-bench"
    default_text: str | None = None  # what a computed default (None, a factory) means

    def __post_init__(self) -> None:
        if self.panel not in PANELS or self.kind not in ("plain", "csv", "ints", "multi"):
            raise ValueError(f"option panel {self.panel!r} or kind {self.kind!r} is not one of ours")


def opt(
    default: Any = MISSING,
    help: str = "",
    *,
    panel: str,
    flags: tuple[str, ...] = (),
    kind: str = "plain",
    switch: str | None = None,
    default_text: str | None = None,
    factory: Any = MISSING,
) -> Any:
    """A dataclass field carrying its command-line option."""
    spec = OptionSpec(
        help=help, panel=panel, flags=flags, kind=kind, switch=switch, default_text=default_text
    )
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"option": spec})
    return field(default=default, metadata={"option": spec})


def option_fields(cls: Any) -> dict[str, tuple[Field[Any], OptionSpec]]:
    """{field name: (field, its option)} for every field of `cls` that is an option."""
    return {f.name: (f, f.metadata["option"]) for f in fields(cls) if "option" in f.metadata}


def flags_of(name: str, spec: OptionSpec) -> tuple[str, ...]:
    return spec.flags or ("--" + name.replace("_", "-"),)


def whole_number(text: str) -> int | None:
    """A whole number written in ASCII digits ("12"), else None: the one rule for numbers in
    text (str.isdigit accepts "²", which int() refuses; int() accepts "٣" and " 1_0 ")."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def parse_text(kind: str, option: str, value: Any) -> Any:
    """The field value of what the command line gave (None stays None: the default)."""

    if value is None or kind == "plain":
        return value
    if kind == "multi":
        return tuple(value)
    parts = [part.strip() for part in str(value).split(",") if part.strip()]
    if kind == "csv":
        return tuple(parts)
    numbers = tuple(whole_number(part) for part in parts)
    if None in numbers:
        raise ConfigError(f"{option} takes comma-separated integers, e.g. 1,8,32; got {value!r}")
    return numbers
