"""prepare: read the dataset's splits and tokenize them with the checkpoint's own tokenizer into
the run folder's data/ (examples, features, and a record whose key names the checkpoint, data
bytes and options they were made with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from encoderzoo.console import step
from encoderzoo.context import RunContext
from encoderzoo.fileio import write_json
from encoderzoo.options import DATA, MODEL
from encoderzoo.sources import describe_data, resolve_data
from encoderzoo.tasks.base import read_splits
from encoderzoo.workspace import unlink

OPTIONS = (*DATA, *MODEL, "overwrite")  # what it reads of RunConfig


def current(ctx: RunContext, key: str) -> bool:
    ws = ctx.ws
    return ctx.prepared.get("key") == key and ws.features.is_file() and ws.examples.is_file()


def run(ctx: RunContext) -> dict[str, Any]:
    cfg, ws = ctx.config, ctx.ws
    files = resolve_data(ctx.recipe, cfg.data, cfg.cache_dir)
    step(f"prepare: reading {', '.join(f'{split}: {path}' for split, path in files.items())}")
    examples, results = read_splits(ctx.task_spec, files, limit=cfg.limit)
    options = ctx.prepare_options(files)
    key = ctx.prepare_key(options)  # after reading: bad data fails before a model is built
    if current(ctx, key):
        step(f"prepare: reusing {ws.features.parent.name}/ (same data, tokenizer and options)")
        return ctx.prepared
    if ws.prepare_json.is_file():
        step(
            "prepare: the data prepared here were made with another checkpoint, data or options; "
            "preparing again"
        )
    examples = ctx.task.check(examples, files)  # gold labels the model can name (a file of the user's)
    unlink(ws.infer_json, *ws.results())  # made from the old data
    seq_len = cfg.effective_seq_len
    ctx.check_seq_lens("--seq-len", (seq_len,))
    features = ctx.task.encode(examples, ctx.source.tokenizer(), seq_len=seq_len, input_names=ctx.input_names)
    ctx.task.save_examples(examples, ws.examples)
    features.save(ws.features)
    checkpoint = ctx.source.checkpoint()
    location = Path(checkpoint.location)
    in_run = checkpoint.is_local and location.is_relative_to(ws.root.resolve())
    splits = {
        split: {
            "data": str(files[split]),
            "examples": len(result.examples),
            "skipped_unlabeled": result.skipped,
        }
        for split, result in results.items()
    }
    record = {
        "key": key,
        "options": options,
        "recipe": ctx.recipe.name,
        "task": ctx.recipe.task,
        "splits": splits,
        "data": ", ".join(s["data"] for s in splits.values()),
        "examples": len(examples),
        "features": len(features),
        "seq_len": seq_len,
        "mean_tokens": round(float(features.lengths.mean()), 2),
        "max_tokens": int(features.lengths.max()),
        "at_seq_len": int((features.lengths >= seq_len).sum()),  # possibly truncated
        "checkpoint": str(location.relative_to(ws.root.resolve())) if in_run else checkpoint.location,
        "checkpoint_in_run": in_run,
        "revision": checkpoint.revision,
        "graph": ctx.graph_record(),
        "model_config": kept() if callable(kept := getattr(ctx.source.config, "kept", None)) else None,
        **ctx.task.binding(),
    }
    write_json(ws.prepare_json, record)
    ctx.prepared_again(record, features, examples)
    step(f"prepare: {len(examples)} examples, mean {record['mean_tokens']} tokens")
    return record


def plan(ctx: RunContext) -> list[tuple[str, str, str]]:
    cfg = ctx.config
    data = describe_data(ctx.recipe, cfg.data, cfg.cache_dir)
    files = {split: Path(p) for split, p in data.items() if Path(p).is_file()}
    prepared = len(files) == len(data) and current(ctx, ctx.prepare_key(ctx.prepare_options(files)))
    limit = f", first {cfg.limit}" if cfg.limit else ""
    read = "; ".join(f"{s}: {p}" for s, p in data.items())
    return [
        (
            "prepare",
            f"read {read}; tokenize to {cfg.effective_seq_len} tokens{limit}",
            "reuse" if prepared and cfg.resume else "build",
        )
    ]
