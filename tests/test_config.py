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
    ({"padding": "longest"}, "--padding is 'dynamic' or 'fixed', not 'longest'"),
    ({"engine": "spark"}, "--engine is 'local' or 'ray', not 'spark'"),
    ({"random_weights": "huge"}, "--random-weights is unset or 'tiny' or 'base', not 'huge'"),
    ({"e2e_seconds": 0.0}, "--optimize-timeout and --e2e-seconds must be > 0"),
    ({"min_agreement": 2.0}, "--min-agreement must be between 0 and 1"),
    ({"reference": ("accuracy",)}, "--reference takes METRIC=VALUE"),
    ({"gate": 1.5}, "--gate must be between 0 and 1"),
    ({"warmup": -1}, "--warmup, --min-seconds, --e2e-runs, --max-tokens, --triage-rows must be >= 0"),
    ({"triage_rows": -1}, "--triage-rows must be >= 0"),
    ({"max_tokens": -1}, "--max-tokens, --triage-rows must be >= 0"),
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


def test_run_help_shows_every_option_once_with_its_real_default() -> None:
    """Options are declared once, beside RunConfig's fields: `run --help` lists each under its
    topic with the default RunConfig really uses (Rich once ate every "[default: ...]" text)."""
    import re
    import subprocess
    import sys

    from encoderzoo.options import flags_of, option_fields

    result = subprocess.run([sys.executable, "-m", "encoderzoo", "run", "--help"], capture_output=True,
                            text=True, env={"COLUMNS": "400", "PATH": "/usr/bin:/bin", "TERM": "dumb"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if re.match(r"^│ --", line)}
    for panel in ("Data", "Model", "Backends", "Batching", "Gate", "Benchmark", "Run control"):
        assert f"─ {panel} ─" in result.stdout
    for name, (field, spec) in option_fields(RunConfig).items():
        flag = (spec.switch or flags_of(name, spec)[0]).split("/")[0].split(",")[0]
        line = next((text for shown, text in lines.items()
                     if shown.split(",")[0].split("/")[0] == flag), None)
        assert line is not None, f"{flag} is not in run --help"
        if spec.default_text:
            assert f"[default: {spec.default_text}]" in " ".join(line.split()), flag
        elif field.default not in (None, (), False, True):
            value = field.default
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            assert f"[default: {shown}]" in line, flag
    assert "[default: 32]" in lines["--batch-size"]
    assert "[default: torch,onnxruntime,openvino]" in lines["--backends"]


def test_overrides_and_repeats() -> None:
    cfg = config(seq_len=64, gate=0.999, backends=("torch:fp32", "onnxruntime:int8", "onnxruntime"))
    assert cfg.bench_settings().seq_lens == (64,) and cfg.effective_gate == 0.999
    from encoderzoo.backends import resolve_runs
    from encoderzoo.devices import Machine

    assert resolve_runs(cfg.backends, Machine("cpu", native_bf16=False))[0] == [
        ("torch", "fp32"), ("onnxruntime", "int8"), ("onnxruntime", "fp32")]
    assert cfg.to_json()["out"] == "runs/demo"


@pytest.mark.parametrize(("options", "message"), [
    ({"random_weights": "small"}, "--random-weights is unset or 'tiny' or 'base'"),
    ({"random_weights": "tiny", "checkpoint": "x"}, "leave out --checkpoint"),
    ({"tokenizer": "x"}, "--tokenizer goes with --random-weights"),
    ({"optimize_timeout": 0}, "--optimize-timeout and --e2e-seconds must be > 0"),
])
def test_random_weights_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**options)


@pytest.mark.parametrize(("options", "message"), [
    ({"order": "random"}, "--order is 'length' or 'dataset'"),
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

    from encoderzoo.config_file import KINDS

    assert {f.name for f in fields(RunConfig)} == set(KINDS)


def test_toml_and_yaml_files(tmp_path: Path) -> None:
    from encoderzoo.config_file import read_config_file

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
    from encoderzoo.config_file import read_config_file, to_toml

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
