"""The command line: a thin front end over encoderzoo.pipeline. Heavy libraries are imported
inside the commands, so `--help` answers at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from encoderzoo.errors import ConfigError, EncoderzooError

app = typer.Typer(
    name="encoderzoo", no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False,
    help="Fine-tuned BERT-family checkpoint + task data in; a verified, optimized, benchmarked "
         "inference artifact out.",
)
_state = {"debug": False}
GATE_FAILED_EXIT = 3
ALL_BACKENDS = "torch,onnxruntime,openvino"  # = config.DEFAULT_BACKENDS (kept here: --help stays light)

RecipeArg = Annotated[str | None, typer.Argument(
    help="Recipe name (see `encoderzoo recipes`) [default: the --config file's `recipe`].")]
ConfigFileOpt = Annotated[Path | None, typer.Option(
    "--config", help="A TOML (or YAML) file of options, e.g. `batch-size = 16`; options given on "
                     "the command line win.")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="Continue an interrupted run: finished stages and output shards are kept.")]
E2eRunsOpt = Annotated[int, typer.Option(
    "--e2e-runs", help="Warm passes over the data timed after inference (the median is reported); 0: none.")]
E2eRowsOpt = Annotated[int, typer.Option(
    "--e2e-rows", help="Rows, spread over the data, that a timed warm pass runs at most.")]
ShardSizeOpt = Annotated[int, typer.Option(
    "--shard-size", help="Inference outputs are saved every this many rows (for --resume).")]
EngineOpt = Annotated[str, typer.Option(
    "--engine", help="local: this process; ray: a Ray cluster's actors through Ray Data.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="With --engine ray: the cluster, e.g. ray://head:10001 [default: RAY_ADDRESS, "
                          "else a local cluster on this machine].")]
RayActorsOpt = Annotated[int, typer.Option(
    "--ray-actors", help="With --engine ray: actors, each loading the model once.")]
TrustCodeOpt = Annotated[bool, typer.Option(
    "--trust-remote-code", help="Let transformers run Python code shipped in the checkpoint "
                                "folder (auto_map). Off by default: read that code first.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Run folder [default: runs/RECIPE].")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing folder that encoderzoo did not make (it refuses by "
                        "default; never one that holds this run's inputs).")]
CheckpointOpt = Annotated[str | None, typer.Option(
    "--checkpoint",
    help="Hugging Face folder or hub id [default: the run folder's (from prepare), else the recipe's].")]
DataOpt = Annotated[list[str] | None, typer.Option(
    "--data", help="Dataset file, a folder holding each split's file, or SPLIT=PATH (repeatable) "
                   "[default: the recipe's].")]
RandomOpt = Annotated[str | None, typer.Option(
    "--random-weights", help="tiny|base: a randomly initialised model of the recipe's architecture.")]
TokenizerOpt = Annotated[str | None, typer.Option(
    "--tokenizer", help="With --random-weights: a folder with the family's tokenizer files.")]
LabelNamesOpt = Annotated[str | None, typer.Option(
    "--label-names", "--labels", help="The model's class names in class order, e.g. entailment,"
                                      "neutral,contradiction [default: config.id2label].")]
OptimizeTimeoutOpt = Annotated[float, typer.Option(
    "--optimize-timeout", help="Seconds before the graph optimizer is given up (unfused graph used).")]
BackendsOpt = Annotated[str, typer.Option(
    "--backends", help="Comma-separated backends (each with its default precisions) or "
                       "name:precision, e.g. torch:fp32,onnxruntime:int8,openvino:bf16.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", help="Inference batch size.")]
BatchSizesOpt = Annotated[str | None, typer.Option(
    "--batch-sizes", help="Benchmark batch sizes, e.g. 1,8,32 [default: the recipe's].")]
SeqLensOpt = Annotated[str | None, typer.Option(
    "--seq-lens", help="Benchmark sequence lengths, e.g. 64,128 [default: --seq-len].")]
SeqLenOpt = Annotated[int | None, typer.Option(
    "--seq-len", help="Max tokens per example [default: the recipe's].")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Only the first N examples.")]
PaddingOpt = Annotated[str, typer.Option(
    "--padding", help="dynamic: pad each batch to its longest; fixed: pad to --seq-len.")]
OrderOpt = Annotated[str, typer.Option(
    "--order", help="length: batch examples of similar length together (outputs keep dataset "
                    "order); dataset: as they come.")]
BucketsOpt = Annotated[str | None, typer.Option(
    "--buckets", help="Static shapes: pad each batch to the smallest of these lengths that fits, "
                      "e.g. 32,64,128.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="Intra-op threads [default: available cores].")]
ProvidersOpt = Annotated[str | None, typer.Option(
    "--providers", help="ONNX Runtime execution providers in order, e.g. tensorrt,cuda,cpu "
                        "[default: by --device].")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", help="auto: a CUDA GPU when one is present (never required), else the CPU; cpu; cuda.")]
BackendOptionOpt = Annotated[list[str] | None, typer.Option(
    "--backend-option", help="BACKEND.KEY=VALUE session setting (repeatable): onnxruntime.io_binding, "
                             "onnxruntime.spinning, openvino.hint, openvino.streams.")]
GateOpt = Annotated[float | None, typer.Option(
    "--gate", help="Fraction of the reference metric to keep [default: the recipe's, 0.99].")]
MinAgreementOpt = Annotated[float | None, typer.Option(
    "--min-agreement", help="Share of predictions that must equal torch fp32's, e.g. 0.95 "
                            "[default: the task's].")]
ReferenceOpt = Annotated[list[str] | None, typer.Option(
    "--reference", help="METRIC=VALUE (repeatable), e.g. accuracy=92.4: what torch fp32 is gated "
                        "against [default: the recipe's published score for its own checkpoint, else "
                        "the checkpoint's eval_results.json, else none: torch fp32 is the reference].")]
OptimizeOpt = Annotated[bool, typer.Option(
    "--optimize/--no-optimize", help="Fuse the ONNX graph with ONNX Runtime's optimizer.")]
BenchOpt = Annotated[bool, typer.Option("--bench/--no-bench", help="Run the benchmark stage.")]
TriageOpt = Annotated[bool, typer.Option(
    "--triage/--no-triage", help="Re-quantize an int8 model that misses its gate, leaving the "
                                 "nodes that drift most in float.")]
CalibrationOpt = Annotated[int, typer.Option(
    "--calibration-size", help="Examples, spread over the data, that calibrate int8 models.")]
WarmupOpt = Annotated[int, typer.Option("--warmup", help="Benchmark: untimed runs per point.")]
MinRunsOpt = Annotated[int, typer.Option("--min-runs", help="Benchmark: timed runs per point.")]
MinSecondsOpt = Annotated[float, typer.Option(
    "--min-seconds", help="Benchmark: timed seconds per point, at least.")]


def _ints(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, e.g. 1,8,32; got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


# RunConfig fields whose CLI parameter has another name
CLI_NAMES = {"backend_options": "backend_option", "config_file": "config"}


def _config(ctx: typer.Context | None, recipe: str | None, out: Path | None,
            config_file: Path | None = None, **options: Any) -> Any:
    """A RunConfig from the command line, over the --config file's values, over the defaults."""
    from encoderzoo.config import RunConfig, read_config_file

    for key in ("batch_sizes", "seq_lens", "buckets"):
        if key in options:
            options[key] = _ints(options[key], "--" + key.replace("_", "-"))
    for key in ("backends", "providers", "label_names"):
        if options.get(key) is not None:
            options[key] = _names(options[key])
    options["data"] = tuple(options.get("data") or ())
    options["backend_options"] = tuple(options.get("backend_options") or ())
    if "reference" in options:
        options["reference"] = tuple(options["reference"] or ())
    from_file = read_config_file(config_file) if config_file else {}
    for key, value in from_file.items():
        param = CLI_NAMES.get(key, key)
        source = ctx.get_parameter_source(param) if ctx is not None else None
        given = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")  # typer vendors click
        if key not in ("recipe", "out") and not given:
            options[key] = value
    recipe = recipe or from_file.get("recipe")
    if not recipe:
        raise ConfigError("name a recipe (see `encoderzoo recipes`), or set `recipe` in the --config file")
    out = out or from_file.get("out") or Path("runs") / recipe
    for key in ("threads", "buckets", "providers"):  # None: the RunConfig default
        if options.get(key) is None:
            options.pop(key, None)
    return RunConfig(recipe=recipe, out=out, **options)


def _pipeline(ctx: typer.Context, config: Any) -> Any:
    """A Pipeline over the run folder, locked (and proven ours) until the command ends."""
    from encoderzoo.pipeline import Pipeline
    from encoderzoo.workspace import stage_folder

    return Pipeline(config, ctx.with_resource(stage_folder(config.out, overwrite=config.overwrite)))


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def recipes() -> None:
    """List the built-in recipes."""
    from rich.console import Console
    from rich.table import Table

    from encoderzoo.recipes import RECIPES

    table = Table("recipe", "task", "family", "seq", "batch sizes", "reference", "checkpoint")
    for r in RECIPES.values():
        reference = ", ".join(f"{k} {100 * v:.2f}" for k, v in r.reference.items())
        source = r.checkpoint.hub_id or f"(embedded) {r.checkpoint.packaged}"
        table.add_row(r.name, r.task, r.family, str(r.seq_len),
                      ",".join(map(str, r.batch_sizes)), reference, source)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command()
def backends() -> None:
    """List the registered backends and their precisions."""
    from encoderzoo.backends import BACKENDS

    for spec in BACKENDS.values():
        typer.echo(f"{spec.name:<12} {','.join(spec.precisions):<10} {spec.description}")


@app.command()
def run(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None, data: DataOpt = None,
    random_weights: RandomOpt = None, tokenizer: TokenizerOpt = None, label_names: LabelNamesOpt = None,
    backends: BackendsOpt = ALL_BACKENDS, batch_size: BatchSizeOpt = 32,
    batch_sizes: BatchSizesOpt = None, seq_len: SeqLenOpt = None, seq_lens: SeqLensOpt = None,
    limit: LimitOpt = None, padding: PaddingOpt = "dynamic", order: OrderOpt = "length",
    buckets: BucketsOpt = None, threads: ThreadsOpt = None,
    device: DeviceOpt = "auto", providers: ProvidersOpt = None, backend_option: BackendOptionOpt = None,
    gate: GateOpt = None, min_agreement: MinAgreementOpt = None, reference: ReferenceOpt = None,
    optimize: OptimizeOpt = True, optimize_timeout: OptimizeTimeoutOpt = 300.0,
    calibration_size: CalibrationOpt = 100, triage: TriageOpt = True,
    bench: BenchOpt = True, warmup: WarmupOpt = 2, min_runs: MinRunsOpt = 5,
    min_seconds: MinSecondsOpt = 1.0, resume: ResumeOpt = False, shard_size: ShardSizeOpt = 1024,
    engine: EngineOpt = "local", ray_address: RayAddressOpt = None, ray_actors: RayActorsOpt = 2,
    e2e_runs: E2eRunsOpt = 3, e2e_rows: E2eRowsOpt = 1024,
    trust_remote_code: TrustCodeOpt = False, overwrite: OverwriteOpt = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the resolved configuration and the stages it would run.")] = False,
) -> None:
    """The whole chain: prepare → export → optimize → infer → score (→ triage) → bench → report."""
    config = _config(
        ctx, recipe, out, config_file, checkpoint=checkpoint, data=data, random_weights=random_weights,
        tokenizer=tokenizer, label_names=label_names, backends=backends, batch_size=batch_size,
        batch_sizes=batch_sizes, seq_len=seq_len, seq_lens=seq_lens, limit=limit,
        padding=padding, order=order, buckets=buckets, threads=threads, device=device, providers=providers,
        backend_options=backend_option, gate=gate, min_agreement=min_agreement, reference=reference,
        optimize=optimize,
        optimize_timeout=optimize_timeout, calibration_size=calibration_size, triage=triage,
        bench=bench, warmup=warmup, min_runs=min_runs, min_seconds=min_seconds, resume=resume,
        shard_size=shard_size, engine=engine, ray_address=ray_address, ray_actors=ray_actors,
        trust_remote_code=trust_remote_code, overwrite=overwrite, e2e_runs=e2e_runs, e2e_rows=e2e_rows,
    )
    if dry_run:
        _print_plan(config)
        return
    from encoderzoo.pipeline import run as run_pipeline

    passed, report = run_pipeline(config)
    typer.echo(report.read_text(encoding="utf-8"))
    typer.echo(f"report: {report}")
    if not passed:
        typer.echo(f"accuracy gate failed; see {report}", err=True)
        raise typer.Exit(GATE_FAILED_EXIT)


def _print_plan(config: Any) -> None:
    from encoderzoo.config import to_toml
    from encoderzoo.pipeline import Pipeline
    from encoderzoo.workspace import Workspace, check_run_folder, partial_folder

    check_run_folder(config.out, overwrite=config.overwrite, inputs=config.input_paths)  # as `run` would
    partial = partial_folder(config.out)
    folder = partial if config.resume and partial.is_dir() else config.out
    typer.echo("# encoderzoo run --dry-run: the resolved configuration (a --config file)\n")
    typer.echo(to_toml(config.to_json()))
    typer.echo(f"# stages, in order (run folder {config.out}; artifacts checked in {folder}):")
    for stage, what, status in Pipeline(config, Workspace(folder)).plan():
        typer.echo(f"#   {stage:<9} [{status}] {what}")


@app.command()
def convert(
    fmt: Annotated[str, typer.Argument(
        metavar="FORMAT", help="fairseq-roberta | deberta | albert-pytorch | spanbert")],
    source: Annotated[Path, typer.Argument(help="The original checkpoint file or its folder.")],
    out: Annotated[Path, typer.Option("--out", help="The Hugging Face folder to write.")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="The original config JSON [default: found beside the weights].")] = None,
    tokenizer: Annotated[Path | None, typer.Option(
        "--tokenizer", help="A folder whose tokenizer files are copied into the result.")] = None,
    labels: LabelNamesOpt = None,
    head: Annotated[str | None, typer.Option(
        "--head", help="fairseq: which classification head [default: the only one].")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert an original research checkpoint into a Hugging Face folder (weights_only loading;
    objects other than tensors in the file are replaced by inert records, never run)."""
    from encoderzoo.convert import convert_checkpoint

    info = convert_checkpoint(fmt, source, out, config=config, tokenizer=tokenizer,
                              labels=_names(labels) if labels else None, head=head, overwrite=overwrite)
    typer.echo(f"wrote {out} ({info['model_class']})")
    if info["ignored_keys"]:
        typer.echo(f"left out {len(info['ignored_keys'])} source parameters: "
                   f"{', '.join(info['ignored_keys'][:5])}{' ...' if len(info['ignored_keys']) > 5 else ''}")
    if info["replaced_objects"]:
        typer.echo(f"not unpickled (replaced by inert records): {', '.join(info['replaced_objects'])}")
    if tokenizer is None:
        typer.echo("no tokenizer copied: add the tokenizer files (or pass --tokenizer) before running")


@app.command()
def prepare(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None, data: DataOpt = None,
    random_weights: RandomOpt = None, tokenizer: TokenizerOpt = None, label_names: LabelNamesOpt = None,
    seq_len: SeqLenOpt = None, limit: LimitOpt = None, trust_remote_code: TrustCodeOpt = False,
    fmt: Annotated[str, typer.Option(
        "--format", help="npz: the run folder's own files; bin: also one raw file per sample and "
                         "input (input_ids/0.bin ...), as ais_bench and msame read them.")] = "npz",
    bin_dtype: Annotated[str, typer.Option(
        "--bin-dtype", help="With --format bin: int64 (as the ONNX export) or int32.")] = "int64",
    overwrite: OverwriteOpt = False,
) -> None:
    """Read the dataset and tokenize it with the checkpoint's tokenizer."""
    if fmt not in ("npz", "bin"):
        raise ConfigError(f"--format is npz or bin, not {fmt!r}")
    pipeline = _pipeline(ctx, _config(ctx, recipe, out, config_file, checkpoint=checkpoint, data=data,
                                 random_weights=random_weights, tokenizer=tokenizer,
                                 label_names=label_names, seq_len=seq_len, limit=limit,
                                 trust_remote_code=trust_remote_code, overwrite=overwrite))
    pipeline.prepare()
    if fmt == "bin":
        info = pipeline.write_bin(bin_dtype, overwrite=overwrite)
        typer.echo(f"wrote {info['samples']} samples x {len(info['inputs'])} inputs "
                   f"({', '.join(info['inputs'])}, {info['dtype']}, {info['seq_len']} tokens) to "
                   f"{pipeline.ws.bin_dir}")


@app.command()
def export(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None, trust_remote_code: TrustCodeOpt = False,
    triton: Annotated[Path | None, typer.Option(
        "--triton", help="Also write a Triton Inference Server model repository here (the optimized "
                         "ONNX model and config.pbtxt, checked with Triton's schema).")] = None,
    triton_name: Annotated[str | None, typer.Option(
        "--triton-name", help="The model's name in the repository [default: the recipe's].")] = None,
    triton_precision: Annotated[str, typer.Option(
        "--triton-precision", help="Which onnxruntime artifact to serve: fp32 (fused), int8, int8-static, "
                                   "fp16 (GPU).")] = "fp32",
    triton_kind: Annotated[str | None, typer.Option(
        "--triton-kind", help="KIND_CPU or KIND_GPU instances [default: KIND_GPU when --device finds "
                              "a GPU].")] = None,
    triton_max_batch: Annotated[int | None, typer.Option(
        "--triton-max-batch", help="max_batch_size [default: the largest benchmark batch size].")] = None,
    device: DeviceOpt = "auto", batch_sizes: BatchSizesOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Export to ONNX and check it against PyTorch on prepared inputs (reused when the run
    folder holds the export of these exact weights); with --triton, a serving repository."""
    pipeline = _pipeline(ctx, _config(ctx, recipe, out, config_file, checkpoint=checkpoint, device=device,
                                      batch_sizes=batch_sizes, trust_remote_code=trust_remote_code))
    if pipeline.ws.features.is_file() or triton is None:
        pipeline.export()
    if triton is not None:
        info = pipeline.triton(triton, name=triton_name, precision=triton_precision, kind=triton_kind,
                               max_batch_size=triton_max_batch, overwrite=overwrite)
        typer.echo(f"wrote {info['config']}")


@app.command()
def optimize(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None, optimize_timeout: OptimizeTimeoutOpt = 300.0,
    trust_remote_code: TrustCodeOpt = False,
) -> None:
    """Fuse the exported graph (attention, LayerNorm, GELU) and check it again."""
    _pipeline(ctx, _config(ctx, recipe, out, config_file, checkpoint=checkpoint,
                           optimize_timeout=optimize_timeout, trust_remote_code=trust_remote_code)).optimize()


@app.command()
def infer(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None,
    backends: BackendsOpt = ALL_BACKENDS, batch_size: BatchSizeOpt = 32,
    padding: PaddingOpt = "dynamic", order: OrderOpt = "length", buckets: BucketsOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto", providers: ProvidersOpt = None, backend_option: BackendOptionOpt = None,
    resume: ResumeOpt = False, shard_size: ShardSizeOpt = 1024, engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None, ray_actors: RayActorsOpt = 2, trust_remote_code: TrustCodeOpt = False,
    e2e_runs: E2eRunsOpt = 3, e2e_rows: E2eRowsOpt = 1024,
) -> None:
    """Run every prepared example through each backend; save outputs and predictions (finished
    runs with the same model, data and batching are reused)."""
    _pipeline(ctx, _config(ctx, recipe, out, config_file, checkpoint=checkpoint, backends=backends,
                      batch_size=batch_size, padding=padding, order=order, buckets=buckets,
                      threads=threads, device=device, providers=providers, backend_options=backend_option,
                      resume=resume, shard_size=shard_size, engine=engine, ray_address=ray_address,
                      ray_actors=ray_actors, trust_remote_code=trust_remote_code, e2e_runs=e2e_runs,
                      e2e_rows=e2e_rows)).infer()


@app.command()
def score(
    ctx: typer.Context,
    recipe: Annotated[str | None, typer.Argument(
        help="Recipe name; with --predictions also a task name (sst2, mnli, squad).")] = None,
    out: OutOpt = None, config_file: ConfigFileOpt = None, gate: GateOpt = None,
    min_agreement: MinAgreementOpt = None, reference: ReferenceOpt = None, label_names: LabelNamesOpt = None,
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Score this predictions file (made anywhere) instead of a run "
                              "folder: squad {id: answer} JSON, or a TSV with id and prediction.")] = None,
    data: DataOpt = None,
    outputs: Annotated[Path | None, typer.Option(
        "--outputs", help="Score a device runner's output folder (ais_bench <i>_<k>.bin|.npy or msame "
                          "<i>_output_<k>.bin) for the samples `prepare --format bin` wrote.")] = None,
    layout: Annotated[str, typer.Option("--layout", help="auto | ais_bench | msame")] = "auto",
    output_dtype: Annotated[str, typer.Option(
        "--output-dtype", help="Element type of raw .bin outputs.")] = "float32",
) -> None:
    """Score a run folder's outputs (exit 3 when a gate fails), a device runner's outputs, or a
    predictions file against the gold data, as the official evaluation scripts do."""
    import json

    if predictions is not None:
        from encoderzoo.pipeline import score_predictions

        if recipe is None:
            raise ConfigError("name the recipe or task whose gold data --predictions is scored against")
        result = score_predictions(recipe, predictions, tuple(data or ()))
        typer.echo(json.dumps(result, indent=2))
        return
    pipeline = _pipeline(ctx, _config(ctx, recipe, out, config_file, gate=gate, min_agreement=min_agreement,
                                 reference=reference, label_names=label_names))
    if outputs is not None:
        typer.echo(json.dumps(pipeline.score_device_outputs(outputs, layout=layout, dtype=output_dtype),
                              indent=2))
        return
    if not pipeline.score()["gate_passed"]:
        raise typer.Exit(GATE_FAILED_EXIT)


@app.command("triage")
def triage_command(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    gate: GateOpt = None, min_agreement: MinAgreementOpt = None, reference: ReferenceOpt = None,
    calibration_size: CalibrationOpt = 100, threads: ThreadsOpt = None,
) -> None:
    """Re-quantize the scored int8 models that missed their gate; exit 3 if one still does."""
    pipeline = _pipeline(ctx, _config(ctx, recipe, out, config_file, gate=gate, min_agreement=min_agreement,
                                 reference=reference, calibration_size=calibration_size, threads=threads))
    pipeline.score()  # with this command's gate
    pipeline.triage()
    from encoderzoo.fileio import read_json

    if not read_json(pipeline.ws.accuracy_json)["gate_passed"]:
        raise typer.Exit(GATE_FAILED_EXIT)


@app.command()
def bench(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None,
    random_weights: RandomOpt = None, tokenizer: TokenizerOpt = None,
    backends: BackendsOpt = ALL_BACKENDS, batch_sizes: BatchSizesOpt = None,
    seq_len: SeqLenOpt = None, seq_lens: SeqLensOpt = None, threads: ThreadsOpt = None,
    device: DeviceOpt = "auto", providers: ProvidersOpt = None, backend_option: BackendOptionOpt = None,
    optimize: OptimizeOpt = True, optimize_timeout: OptimizeTimeoutOpt = 300.0, warmup: WarmupOpt = 2,
    min_runs: MinRunsOpt = 5, min_seconds: MinSecondsOpt = 1.0, trust_remote_code: TrustCodeOpt = False,
) -> None:
    """Sweep batch sizes x sequence lengths; latency percentiles and throughput. Exports (and
    optimizes) first when the run folder has no ONNX graph of this checkpoint yet."""
    pipeline = _pipeline(ctx, _config(
        ctx, recipe, out, config_file, checkpoint=checkpoint, random_weights=random_weights,
        tokenizer=tokenizer, backends=backends, batch_sizes=batch_sizes, seq_len=seq_len,
        seq_lens=seq_lens, threads=threads, device=device, providers=providers,
        backend_options=backend_option,
        optimize=optimize, optimize_timeout=optimize_timeout, warmup=warmup, min_runs=min_runs,
        min_seconds=min_seconds, trust_remote_code=trust_remote_code))
    pipeline.bench()
    pipeline.report()
    typer.echo(pipeline.ws.report_md.read_text(encoding="utf-8"))


@app.command()
def report(
    ctx: typer.Context, recipe: RecipeArg = None, out: OutOpt = None, config_file: ConfigFileOpt = None,
    checkpoint: CheckpointOpt = None,
) -> None:
    """Write report.json, report.md and the throughput plot from the stages' results."""
    pipeline = _pipeline(ctx, _config(ctx, recipe, out, config_file, checkpoint=checkpoint))
    pipeline.report()
    typer.echo(pipeline.ws.report_md.read_text(encoding="utf-8"))


def main() -> None:
    try:
        app()
    except EncoderzooError as err:
        if _state["debug"]:
            raise
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"error: {message}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # a bug, not bad input: still one line, the traceback on request
        if _state["debug"]:
            raise
        message = " ".join(f"{type(err).__name__}: {err}".split())
        print(f"error: internal error ({message}); rerun with --debug for the traceback and "
              "report it", file=sys.stderr)
        sys.exit(1)
