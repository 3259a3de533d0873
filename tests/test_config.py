from pathlib import Path

import pytest

from encoderzoo.config import RunConfig
from encoderzoo.errors import ConfigError


def config(**options: object) -> RunConfig:
    return RunConfig(recipe="demo", out=Path("runs/demo"), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "message"), [
    ({"limit": 0}, "--limit must be >= 1, got 0"),
    ({"seq_len": 0}, "--seq-len must be >= 1, got 0"),
    ({"batch_size": -1}, "--batch-size must be >= 1, got -1"),
    ({"batch_sizes": (1, 0)}, "--batch-sizes must be >= 1, got 0"),
    ({"batch_sizes": ()}, "need at least one value"),
    ({"threads": 0}, "--threads must be >= 1"),
    ({"backends": ()}, "--backends is empty"),
    ({"backends": ("torch", "tensorrt")}, "unknown backend 'tensorrt'"),
    ({"calibration_size": 0}, "--calibration-size must be >= 1"),
    ({"padding": "longest"}, "--padding must be 'dynamic' or 'fixed'"),
    ({"gate": 1.5}, "--gate must be between 0 and 1"),
    ({"warmup": -1}, "--warmup and --min-seconds must be >= 0"),
])
def test_impossible_options_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**options)


def test_defaults_come_from_the_recipe() -> None:
    cfg = config()
    assert cfg.effective_seq_len == 128 and cfg.effective_gate == 0.99
    settings = cfg.bench_settings()
    assert settings.batch_sizes == (1, 4, 8, 16, 32, 64) and settings.seq_lens == (128,)
    assert cfg.backends == ("torch", "onnxruntime", "openvino")


def test_cli_default_backends_are_the_config_defaults() -> None:
    from encoderzoo.cli import ALL_BACKENDS
    from encoderzoo.config import DEFAULT_BACKENDS

    assert tuple(ALL_BACKENDS.split(",")) == DEFAULT_BACKENDS


def test_overrides_and_repeats() -> None:
    cfg = config(seq_len=64, gate=0.999, backends=("torch:fp32", "onnxruntime:int8", "onnxruntime"))
    assert cfg.bench_settings().seq_lens == (64,) and cfg.effective_gate == 0.999
    from encoderzoo.backends import resolve_runs
    from encoderzoo.devices import Machine

    assert resolve_runs(cfg.backends, Machine("cpu", native_bf16=False))[0] == [
        ("torch", "fp32"), ("onnxruntime", "int8"), ("onnxruntime", "fp32")]
    assert cfg.to_json()["out"] == "runs/demo"


@pytest.mark.parametrize(("options", "message"), [
    ({"random_weights": "small"}, "--random-weights is 'tiny' or 'base'"),
    ({"random_weights": "tiny", "checkpoint": "x"}, "leave out --checkpoint"),
    ({"tokenizer": "x"}, "--tokenizer goes with --random-weights"),
    ({"optimize_timeout": 0}, "--optimize-timeout must be > 0"),
])
def test_random_weights_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**options)


@pytest.mark.parametrize(("options", "message"), [
    ({"order": "random"}, "--order must be 'length' or 'dataset'"),
    ({"buckets": (32, 0)}, "--buckets must be >= 1"),
    ({"buckets": (32,), "padding": "fixed"}, "leave out --padding fixed"),
])
def test_batching_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**options)


def test_batching_defaults_sort_by_length() -> None:
    assert config().batching.order == "length" and config(buckets=(128, 32)).batching.buckets == (32, 128)


def test_every_option_can_be_set_in_a_config_file() -> None:
    from dataclasses import fields

    from encoderzoo.config import FIELDS

    assert {f.name for f in fields(RunConfig)} == FIELDS


def test_toml_and_yaml_files(tmp_path: Path) -> None:
    from encoderzoo.config import read_config_file

    toml = tmp_path / "run.toml"
    toml.write_text('recipe = "demo"\nbatch-size = 16\nbackends = ["torch:fp32", "onnxruntime:int8"]\n'
                    'seq-lens = "64,128"\ngate = 1\nbench = false\nout = "runs/x"\n')
    values = read_config_file(toml)
    assert values == {"recipe": "demo", "batch_size": 16, "backends": ("torch:fp32", "onnxruntime:int8"),
                      "seq_lens": (64, 128), "gate": 1.0, "bench": False, "out": Path("runs/x")}
    yaml = tmp_path / "run.yaml"
    yaml.write_text("batch_size: 16\nbackends: [torch:fp32, onnxruntime:int8]\nbench: false\n")
    assert read_config_file(yaml) == {"batch_size": 16, "backends": ("torch:fp32", "onnxruntime:int8"),
                                      "bench": False}


def test_a_written_configuration_reads_back(tmp_path: Path) -> None:
    from encoderzoo.config import read_config_file, to_toml

    config = RunConfig(recipe="demo", out=tmp_path / "r", batch_size=7, seq_lens=(32, 64), gate=0.95,
                       backends=("torch:fp32",), backend_options=("openvino.hint=latency",))
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config.to_json()))
    assert RunConfig(**read_config_file(path)) == config


def test_command_line_wins_over_the_file_which_wins_over_defaults(tmp_path: Path) -> None:
    from tests.conftest import cli

    path = tmp_path / "run.toml"
    path.write_text('recipe = "demo"\nbatch-size = 16\nbackends = "torch:fp32,onnxruntime:int8"\n'
                    f'out = "{tmp_path / "from-file"}"\nlimit = 50\n')
    result = cli("run", "--config", str(path), "--batch-size", "8", "--dry-run")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "batch-size = 8\n" in text and "limit = 50\n" in text and "padding = \"dynamic\"" in text
    assert 'backends = ["torch:fp32", "onnxruntime:int8"]' in text
    assert "infer     [build] onnxruntime int8 on cpu: batch 8" in text and "torch bf16" not in text
    assert "quantize  [build] onnx-int8" in text and "report" in text
    assert not (tmp_path / "from-file").exists()  # a dry run builds nothing
