"""Randomly initialised models of a recipe's architecture (`--random-weights tiny|base`), to
benchmark an architecture or test the chain without downloading weights. Scores they get are
meaningless and labelled as such."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from encoderzoo.assets import asset_path
from encoderzoo.cache import files_hash, make_key, versions
from encoderzoo.checkpoints import (
    RANDOM_WEIGHTS_MARKER,
    model_class,
    quiet_transformers,
    random_weights_record,
)
from encoderzoo.errors import CheckpointError
from encoderzoo.families import Family
from encoderzoo.fileio import atomic_dir
from encoderzoo.recipes import Recipe
from encoderzoo.tasks.base import Task

Size = Literal["tiny", "base"]


def architecture(recipe: Recipe, family: Family) -> tuple[str, str, dict[str, Any]]:
    """(architecture, hub tokenizer, tokenizer options): the recipe's for its own family, else
    the family's base model (`--family`)."""
    if family.name == recipe.family:
        return recipe.architecture, recipe.tokenizer_hub_id, dict(recipe.tokenizer_kwargs)
    return family.architecture, family.hub_tokenizer, {}


def architecture_config(recipe: Recipe, family: Family, size: Size) -> dict[str, Any]:
    """The bundled base-size config, shrunk by the family's tiny overrides if asked."""
    name = architecture(recipe, family)[0]
    config = json.loads(asset_path(f"configs/{name}.json").read_text(encoding="utf-8"))
    return config | dict(family.tiny) if size == "tiny" else config


def load_family_tokenizer(recipe: Recipe, family: Family, spec: str | None) -> Any:
    """The tokenizer for a random model: a --tokenizer folder with the family's files, or the
    architecture's hub tokenizer when online."""
    quiet_transformers()
    import transformers

    tokenizer_class = getattr(transformers, family.tokenizer_class)
    files = " and ".join(family.tokenizer_files)
    if spec is not None:
        folder = Path(spec).expanduser()
        present = [f for f in (*family.tokenizer_files, "tokenizer.json") if (folder / f).is_file()]
        if not folder.is_dir() or not present:
            raise CheckpointError(
                f"--tokenizer {spec}: expected a folder with {files} (or tokenizer.json) for a "
                f"{family.name} tokenizer"
            )
    _, hub_id, kwargs = architecture(recipe, family)
    source = str(folder) if spec is not None else hub_id
    try:
        tokenizer = tokenizer_class.from_pretrained(source, **kwargs)
        if _knows_words(tokenizer):
            return tokenizer
        problem = "no vocabulary came with it"  # transformers builds an empty one without error
    except (OSError, ValueError) as err:
        problem = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
    if spec is not None:
        raise CheckpointError(f"--tokenizer {spec}: cannot load a {family.name} tokenizer: {problem}")
    raise CheckpointError(
        f"random weights need a tokenizer and '{source}' could not be fetched from the hub "
        f"(offline?); pass --tokenizer PATH to a folder with {files}"
    )


def _knows_words(tokenizer: Any) -> bool:
    """A real vocabulary splits plain English into something other than unknown tokens."""
    ids = tokenizer("the film is a charming journey", add_special_tokens=False)["input_ids"]
    return any(i != tokenizer.unk_token_id for i in ids)


def random_weights_key(*, recipe: Recipe, family: Family, task: Task, size: Size, tokenizer: str | None,
                       seed: int = 0) -> str:
    """Everything a random model is built from: the architecture's config, its task head, the
    seed and the tokenizer (the bytes of a --tokenizer folder's files, else the hub id)."""
    source: Any = tokenizer or architecture(recipe, family)[1]
    if tokenizer is not None and Path(tokenizer).expanduser().is_dir():
        folder = Path(tokenizer).expanduser()
        source = files_hash([p for p in folder.iterdir() if p.is_file()])
    return make_key("random-weights", config=architecture_config(recipe, family, size), size=size,
                    head=task.head_config(), seed=seed, tokenizer=source,
                    libraries=versions("torch", "transformers", "tokenizers"))


def build_random_checkpoint(
    folder: Path, *, recipe: Recipe, family: Family, task: Task, size: Size,
    tokenizer: str | None, seed: int = 0, key: str | None = None,
) -> Path:
    """Write a Hugging Face folder holding a random model of the recipe's architecture with the
    tokenizer. The embedding keeps the architecture's real size unless the tokenizer needs more
    rows (a smaller test tokenizer's ids all fit)."""
    import torch
    from transformers import AutoConfig

    loaded = load_family_tokenizer(recipe, family, tokenizer)
    settings = architecture_config(recipe, family, size)
    model_type = settings.pop("model_type")
    settings |= task.head_config() | {"vocab_size": max(int(settings["vocab_size"]), len(loaded))}
    if loaded.pad_token_id is not None:
        settings["pad_token_id"] = loaded.pad_token_id
    config = AutoConfig.for_model(model_type, **settings)
    torch.manual_seed(seed)
    model = model_class(task.auto_class).from_config(config).eval()
    ours = bool(random_weights_record(folder))  # made by --random-weights before markers existed
    with atomic_dir(folder, "random-weights", overwrite=ours, option="the random checkpoint") as tmp:
        model.save_pretrained(tmp)
        loaded.save_pretrained(tmp)
        name, hub_id, _ = architecture(recipe, family)
        marker = {"size": size, "seed": seed, "architecture": name, "tokenizer": tokenizer or hub_id,
                  "key": key or random_weights_key(recipe=recipe, family=family, task=task, size=size,
                                                   tokenizer=tokenizer, seed=seed)}
        (tmp / RANDOM_WEIGHTS_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return folder
