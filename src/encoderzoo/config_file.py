"""Run configuration files: `--config run.toml|.yaml` with the options' own names (`batch-size =
16`), checked against RunConfig's field types, and `--dry-run`'s printout, itself such a file."""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any

from encoderzoo.config import RunConfig
from encoderzoo.errors import ConfigError
from encoderzoo.options import whole_number


def _kinds() -> dict[str, str]:
    """Every RunConfig field's kind of value: int, float, bool, str, path, ints or strs."""
    kinds = {}
    settable = {f.name for f in dataclasses.fields(RunConfig)}
    for name, hint in typing.get_type_hints(RunConfig).items():
        if name not in settable:  # parsed from the others, or not a setting
            continue
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = (
            args[0] if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else hint
        )
        if typing.get_origin(base) is tuple:
            kinds[name] = "ints" if typing.get_args(base)[0] is int else "strs"
        elif base is Path:
            kinds[name] = "path"
        else:
            kinds[name] = {bool: "bool", int: "int", float: "float"}.get(base, "str")
    return kinds


KINDS = _kinds()


def read_config_file(path: Path) -> dict[str, Any]:
    """RunConfig values from a TOML (or YAML) file whose keys are the options' names, e.g.
    `batch-size = 16`, `backends = ["torch", "onnxruntime:int8"]`; checked and converted."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the configuration file ({err})") from None
    values: dict[str, Any] = {}
    for raw_key, value in _parse(path, text).items():
        key = str(raw_key).replace("-", "_")
        if key not in KINDS:
            close = difflib.get_close_matches(key, sorted(KINDS), n=1)
            hint = f"; did you mean '{close[0].replace('_', '-')}'?" if close else ""
            raise ConfigError(f"{path}: unknown option '{raw_key}'{hint}")
        values[key] = _convert(path, key, value)
    return values


def _parse(path: Path, text: str) -> dict[str, Any]:
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

    kind = KINDS[key]
    if kind == "int":
        if not is_int(value):
            raise bad("an integer")
        return value
    if kind == "float":
        if not (is_int(value) or isinstance(value, float)):
            raise bad("a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise bad("a string")
        return Path(value) if kind == "path" else value
    items = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise bad("a list")
    if kind == "ints":
        if isinstance(value, str):  # "1,8,32", as on the command line
            items = [v if whole_number(v) is None else whole_number(v) for v in items]
        if not all(is_int(v) for v in items):
            raise bad("a list of integers")
        return tuple(items)
    if not all(isinstance(v, str) for v in items):
        raise bad("a list of strings")
    return tuple(items)


def config_from_record(record: dict[str, Any], where: str, **changes: Any) -> RunConfig:
    """The RunConfig a run recorded (report.json's "config"), with `changes`; each value checked
    as a configuration file's would be."""
    values = {key: _convert(Path(where), key, value) for key, value in record.items()
              if key in KINDS and value is not None}
    return RunConfig(**(values | changes))


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
