"""Command-line options generated from RunConfig's fields (see encoderzoo.options): each option is
declared once, beside its field; a command names the fields it takes and gets their flags, help,
topic and real default. Values left at their default defer to a --config file, then RunConfig."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import MISSING
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from encoderzoo.config import RunConfig
from encoderzoo.config_file import read_config_file
from encoderzoo.errors import ConfigError
from encoderzoo.options import PANELS, flags_of, option_fields, parse_text

FIELDS = option_fields(RunConfig)
HINTS = typing.get_type_hints(RunConfig)
COMMON = ("recipe", "out", "config_file")  # every stage command's first parameters


def _help(text: str, default_text: str | None) -> str:
    """Help text as Rich shows it: literal brackets escaped (Rich reads "[default: x]" as a style
    tag and drops it), the meaning of a computed default spelled out."""
    shown = f"{text} [default: {default_text}]" if default_text else text
    return escape(shown)


def _shown_default(value: Any, kind: str) -> Any:
    if kind in ("csv", "ints") and isinstance(value, tuple):
        return ",".join(map(str, value)) if value else None
    if kind == "multi":
        return None
    return value


def _annotation(name: str, kind: str) -> Any:
    """The type typer parses the option's text into (lists stay text until parse_text)."""
    if kind in ("csv", "ints"):
        return str | None
    if kind == "multi":
        return list[str] | None
    hint = HINTS[name]
    if typing.get_origin(hint) is typing.Literal:
        return str
    return hint


def field_parameter(name: str) -> inspect.Parameter:
    """The typer parameter of a RunConfig field, with its real default shown."""
    field, spec = FIELDS[name]
    default = None if field.default is MISSING else field.default
    text = spec.default_text
    annotation = _annotation(name, spec.kind)
    flags = (spec.switch,) if spec.switch else flags_of(name, spec)
    option = typer.Option(
        *flags,
        help=_help(spec.help, text),
        rich_help_panel=spec.panel.capitalize(),
        show_default=text is None,
    )
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=_shown_default(default, spec.kind),
        annotation=Annotated[annotation, option],
    )


# each command's own options (not RunConfig fields): name -> (type, default, flag, help)
OWN: dict[str, tuple[Any, Any, str, str]] = {
    "dry_run": (bool, False, "--dry-run", "Print the resolved configuration and the stages it would run."),
    "fmt": (str, "npz", "--format", "npz: the run folder's own files; bin: also one raw file per sample and "
            "input (input_ids/0.bin ...), as ais_bench and msame read them."),
    "bin_dtype": (str, "int64", "--bin-dtype", "With --format bin: int64 (as the ONNX export) or int32."),
    "triton": (Path | None, None, "--triton", "Also write a Triton Inference Server model repository here "
               "(the optimized ONNX model and config.pbtxt, checked with Triton's schema)."),
    "triton_name": (str | None, None, "--triton-name", "The model's name in the repository [default: the "
                    "recipe's]."),
    "triton_precision": (str, "fp32", "--triton-precision", "Which onnxruntime artifact to serve: fp32 "
                         "(fused), int8, int8-block, int8-token, int8-static, fp16 (GPU)."),
    "triton_kind": (str | None, None, "--triton-kind", "KIND_CPU or KIND_GPU instances [default: KIND_GPU "
                    "when --device finds a GPU]."),
    "triton_max_batch": (int | None, None, "--triton-max-batch", "max_batch_size [default: the largest "
                         "benchmark batch size]."),
    "ascend": (bool, False, "--ascend", "Also write the Ascend hand-off RUN/ascend/: the graph ATC gets, and "
               "run.sh with one atc line per --batch-sizes, the ais_bench and msame lines over RUN/bin/ "
               "(written first when absent, as `prepare --format bin`) and the score --outputs line."),
    "soc_version": (str, "Ascend310P3", "--soc-version", "With --ascend: ATC's --soc_version."),
    "handoff_dtype": (str | None, None, "--bin-dtype", "With --ascend: int64 or int32 per-sample files "
                      "[default: that of RUN/bin/'s samples when they are current, else int64]; the graph "
                      "takes this type."),
    "predictions": (Path | None, None, "--predictions", "Score this predictions file (made anywhere) instead "
                    "of a run folder: squad {id: answer} JSON, or a TSV with id and prediction."),
    "na_probs": (Path | None, None, "--na-probs", "squad2 with --predictions: {id: no-answer probability} "
                 "JSON, as the official script's --na-prob-file (adds best_exact / best_f1 and thresholds)."),
    "outputs": (Path | None, None, "--outputs", "Score a device runner's output folder (ais_bench "
                "<i>_<k>.bin|.npy or msame <i>_output_<k>.bin) for the samples `prepare --format bin` "
                "wrote."),
    "layout": (str, "auto", "--layout", "auto | ais_bench | msame"),
    "output_dtype": (str, "float32", "--output-dtype", "Element type of raw .bin outputs."),
}


def own(*names: str) -> tuple[inspect.Parameter, ...]:
    """The typer parameters of a command's own options."""
    made = []
    for name in names:
        annotation, default, flag, text = OWN[name]
        panel = "Run control" if name == "dry_run" else "Command"
        option = typer.Option(flag, help=escape(text), rich_help_panel=panel)
        made.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                      annotation=Annotated[annotation, option]))
    return tuple(made)


RECIPE_HELP = "Recipe name (see `encoderzoo recipes`) [default: the --config file's `recipe`]."


def common_parameters(recipe_help: str = RECIPE_HELP) -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "recipe",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[str | None, typer.Argument(help=escape(recipe_help))],
        ),
        inspect.Parameter(
            "out",
            keyword,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(
                    "--out", help=escape("Run folder [default: runs/RECIPE]."), rich_help_panel="Run control"
                ),
            ],
        ),
        inspect.Parameter(
            "config_file",
            keyword,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(
                    "--config",
                    help="A TOML (or YAML) file of options, e.g. `batch-size = 16`; options given on the "
                    "command line win.",
                    rich_help_panel="Run control",
                ),
            ],
        ),
    ]


def command(
    app: typer.Typer,
    name: str,
    fields: tuple[str, ...],
    body: Callable[..., None],
    *,
    extra: tuple[inspect.Parameter, ...] = (),
    recipe_help: str = RECIPE_HELP,
    lazy: bool = False,
) -> None:
    """Register `name`: its common parameters, the options of `fields`, then `extra`; `body` gets
    (ctx, the RunConfig, the extra values), or with `lazy` (ctx, a function that builds the
    RunConfig, the extra values) for a command that may not need one."""
    ctx, recipe, *run_control = common_parameters(recipe_help)
    ordered = sorted(fields, key=lambda f: PANELS.index(FIELDS[f][1].panel))  # --help lists topics in order
    parameters = [ctx, recipe, *(field_parameter(f) for f in ordered), *run_control, *extra]
    extras = {p.name for p in extra}

    def handler(**values: Any) -> None:
        ctx = values.pop("ctx")
        own = {k: values.pop(k) for k in list(values) if k in extras}
        recipe, out, config_file = values.pop("recipe"), values.pop("out"), values.pop("config_file")

        def make() -> RunConfig:
            return build_config(ctx, recipe, out, config_file, values)

        body(ctx, make if lazy else make(), **own)

    handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    handler.__annotations__ = {p.name: p.annotation for p in parameters}
    handler.__doc__ = body.__doc__
    app.command(name)(handler)


def build_config(
    ctx: typer.Context | None,
    recipe: str | None,
    out: Path | None,
    config_file: Path | None,
    values: dict[str, Any],
) -> RunConfig:
    """A RunConfig from the command line (the options given), over the --config file's values,
    over RunConfig's defaults."""

    options: dict[str, Any] = {}
    for name, value in values.items():
        source = ctx.get_parameter_source(name) if ctx is not None else None
        if source is not None and source.name in ("DEFAULT", "DEFAULT_MAP"):  # typer vendors click
            continue
        spec = FIELDS[name][1]
        options[name] = parse_text(spec.kind, flags_of(name, spec)[0], value)
    from_file = read_config_file(config_file) if config_file else {}
    recipe = recipe or from_file.pop("recipe", None)
    out = out or from_file.pop("out", None)
    if not recipe:
        raise ConfigError("name a recipe (see `encoderzoo recipes`), or set `recipe` in the --config file")
    return RunConfig(recipe=recipe, out=out or Path("runs") / recipe, config_file=config_file,
                     **(from_file | options))
