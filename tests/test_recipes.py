import json

import pytest

from encoderzoo.assets import asset_path
from encoderzoo.errors import ConfigError
from encoderzoo.families import FAMILIES
from encoderzoo.recipes import RECIPES, SWEEP_BATCH_SIZES, get_recipe
from encoderzoo.tasks import TASKS


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_is_complete(name: str) -> None:
    recipe = RECIPES[name]
    assert recipe.task in TASKS
    assert recipe.family in FAMILIES
    # classify/regress: --data FILE; CoNLL-2003 has no public download
    own_file = getattr(TASKS[recipe.task], "user_columns", False) or recipe.task == "ner"
    assert recipe.data and all(source.url or source.packaged or own_file for source in recipe.data.values())
    assert 0 < recipe.gate <= 1
    metrics = TASKS[recipe.task].metric_names
    expected = set(metrics) if len(recipe.data) == 1 else {f"{s}.{m}" for s in recipe.data for m in metrics}
    if recipe.kind == "seed":  # a default checkpoint and its published score, keyed like the run's
        assert (recipe.checkpoint.hub_id or recipe.checkpoint.packaged) and recipe.reference
        assert set(recipe.reference) <= expected
    else:  # a task preset: the user's checkpoint, no published score
        assert recipe.kind == "task" and not recipe.reference and recipe.name == recipe.task
    assert asset_path(f"configs/{recipe.architecture}.json").is_file()


def test_demo_reference_is_the_recorded_accuracy() -> None:
    recorded = json.loads((asset_path("demo/model") / "eval_results.json").read_text())
    assert get_recipe("demo").reference["accuracy"] == recorded["eval_accuracy"]


def test_demo_assets_are_embedded() -> None:
    model = asset_path("demo/model")
    assert (model / "model.safetensors").is_file()
    assert (model / "tokenizer.json").is_file()
    lines = asset_path("demo/data/sst2-dev.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence\tlabel" and len(lines) == 873


SEED_DEFAULTS = {  # recipe: (model class, seq, reference)
    "bert-base-cased-sst2": ("BertForSequenceClassification", 128, {"accuracy": 0.9243}),
    "roberta-base-sst2": ("RobertaForSequenceClassification", 70, {"accuracy": 0.948}),
    "albert-base-v2-sst2": ("AlbertForSequenceClassification", 128, {"accuracy": 0.9282}),
    "deberta-v3-base-mnli": ("DebertaV2ForSequenceClassification", 256,
                             {"matched.accuracy": 0.905, "mismatched.accuracy": 0.905}),
    "spanbert-base-cased-squad1": ("BertForQuestionAnswering", 512, {"f1": 0.924}),
}


@pytest.mark.parametrize("name", sorted(SEED_DEFAULTS))
def test_seed_recipe_defaults(name: str) -> None:
    import transformers

    from encoderzoo.random_weights import architecture_config

    model_class, seq_len, reference = SEED_DEFAULTS[name]
    recipe = get_recipe(name)
    assert (recipe.seq_len, dict(recipe.reference)) == (seq_len, reference)
    assert recipe.batch_sizes == SWEEP_BATCH_SIZES
    family = FAMILIES[recipe.family]
    config = transformers.AutoConfig.for_model(**architecture_config(recipe, family, "base"))
    auto = getattr(transformers, TASKS[recipe.task].auto_class)
    assert auto._model_mapping[type(config)].__name__ == model_class
    assert config.model_type in family.model_types


def test_bert_base_cased_sst2_defaults() -> None:
    recipe = get_recipe("bert-base-cased-sst2")
    assert (recipe.seq_len, recipe.batch_sizes) == (128, SWEEP_BATCH_SIZES)
    assert SWEEP_BATCH_SIZES == (1, 4, 8, 16, 32, 64)
    assert recipe.reference == {"accuracy": 0.9243}


def test_unknown_recipe_names_the_known_ones() -> None:
    message = "unknown recipe 'bert-large'; known recipes: demo, bert-base-cased-sst2"
    with pytest.raises(ConfigError, match=message):
        get_recipe("bert-large")


def test_registry_refuses_a_second_entry_of_the_same_name() -> None:
    from encoderzoo.registry import Registry

    registry: Registry[int] = Registry("thing")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        registry.register("a", 2)
    with pytest.raises(ConfigError, match="unknown thing 'b'; known things: a"):
        registry["b"]
    assert list(registry) == ["a"] and "a" in registry and len(registry) == 1
