import json
from pathlib import Path

import pytest

from encoderzoo.checkpoints import load_model, load_tokenizer, resolve_checkpoint
from encoderzoo.errors import CheckpointError
from encoderzoo.families import get_family
from encoderzoo.random_weights import architecture_config, build_random_checkpoint
from encoderzoo.recipes import RECIPES, get_recipe
from encoderzoo.tasks import get_task


def test_base_is_the_real_architecture_and_tiny_shrinks_it() -> None:
    recipe = get_recipe("deberta-v3-base-mnli")
    base = architecture_config(recipe, get_family("deberta-v2"), "base")
    tiny = architecture_config(recipe, get_family("deberta-v2"), "tiny")
    assert (base["hidden_size"], base["num_hidden_layers"], base["vocab_size"]) == (768, 12, 128100)
    assert (tiny["hidden_size"], tiny["num_hidden_layers"], tiny["vocab_size"]) == (32, 2, 128100)
    assert tiny["pos_att_type"] == base["pos_att_type"] == ["p2c", "c2p"]


# classify/regress take their labels and columns from the command line (tests/tasks/test_files.py)
@pytest.mark.parametrize("name", [n for n in RECIPES if n not in ("demo", "classify", "regress")])
def test_random_checkpoint_loads_like_any_other(
    name: str, family_tokenizers: dict[str, Path], tmp_path: Path
) -> None:
    recipe = get_recipe(name)
    family, task = get_family(recipe.family), get_task(recipe.task)
    folder = build_random_checkpoint(tmp_path / "ckpt", recipe=recipe, family=family, task=task,
                                     size="tiny", tokenizer=str(family_tokenizers[recipe.family]))
    checkpoint = resolve_checkpoint(str(folder), recipe)
    assert checkpoint.random_weights == "tiny"
    tokenizer = load_tokenizer(checkpoint)
    assert checkpoint.config.vocab_size >= len(tokenizer)
    assert checkpoint.config.vocab_size == architecture_config(recipe, family, "tiny")["vocab_size"]
    bound = task.for_model(checkpoint.config, checkpoint.location)
    assert (getattr(bound, "model_labels", None) or ()) == (getattr(task, "labels", None) or ())  # none: QA
    model = load_model(checkpoint, task)
    assert model.config.hidden_size == 32
    marker = json.loads((folder / "encoderzoo_random_weights.json").read_text())
    assert marker["size"] == "tiny" and marker["architecture"] == recipe.architecture


def test_offline_without_tokenizer_says_what_to_pass(tmp_path: Path) -> None:
    recipe = get_recipe("albert-base-v2-sst2")
    message = r"pass --tokenizer PATH to a folder with spiece\.model"
    with pytest.raises(CheckpointError, match=message) as caught:
        build_random_checkpoint(tmp_path / "ckpt", recipe=recipe, family=get_family("albert"),
                                task=get_task("sst2"), size="tiny", tokenizer=None)
    assert "\n" not in str(caught.value) and not (tmp_path / "ckpt").exists()


def test_tokenizer_folder_without_the_family_files(tmp_path: Path) -> None:
    recipe = get_recipe("roberta-base-sst2")
    with pytest.raises(CheckpointError, match=r"expected a folder with vocab\.json and merges\.txt"):
        build_random_checkpoint(tmp_path / "ckpt", recipe=recipe, family=get_family("roberta"),
                                task=get_task("sst2"), size="tiny", tokenizer=str(tmp_path))
