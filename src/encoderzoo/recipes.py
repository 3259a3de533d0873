"""Recipes: a model family, a task, a checkpoint and a dataset, with the defaults to run them.

Adding a pipeline means adding one `register_recipe(Recipe(...))` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from encoderzoo.registry import Registry

SWEEP_BATCH_SIZES = (1, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class CheckpointSource:
    """Where a recipe's checkpoint comes from when `--checkpoint` is not given."""

    hub_id: str | None = None  # downloaded by transformers when online
    packaged: str | None = None  # a folder under encoderzoo/assets (works offline)


@dataclass(frozen=True)
class DataSource:
    """Where a recipe's evaluation data comes from when `--data` is not given."""

    format: str  # the task reader's format name, e.g. "glue-tsv"
    url: str | None = None  # a download (a zip, or the file itself), cached once
    member: str | None = None  # the file inside the downloaded zip
    packaged: str | None = None  # a file under encoderzoo/assets (works offline)
    hint: str = ""  # what a user should pass as --data


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    task: str  # key in encoderzoo.tasks
    family: str  # key in encoderzoo.families
    checkpoint: CheckpointSource
    data: DataSource
    seq_len: int  # default maximum sequence length (tokens)
    reference: Mapping[str, float]  # published metric values (fractions), e.g. {"accuracy": 0.92}
    batch_sizes: tuple[int, ...] = SWEEP_BATCH_SIZES
    gate: float = 0.99  # a backend passes when it keeps >= gate x the reference metric
    export_atol: float = 1e-4  # max |Δ| allowed between PyTorch and ONNX outputs
    notes: tuple[str, ...] = field(default=())


RECIPES: Registry[Recipe] = Registry("recipe")


def register_recipe(recipe: Recipe) -> Recipe:
    return RECIPES.register(recipe.name, recipe)


def get_recipe(name: str) -> Recipe:
    return RECIPES[name]


GLUE_SST2 = DataSource(
    format="glue-tsv",
    url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
    member="SST-2/dev.tsv",
    hint="the GLUE SST-2 dev.tsv (sentence<TAB>label with a header row)",
)

register_recipe(Recipe(
    name="demo",
    description="Embedded demo: MiniLM-L6 fine-tuned on SST-2, on the real SST-2 dev set.",
    task="sst2",
    family="bert",
    checkpoint=CheckpointSource(packaged="demo/model"),
    data=DataSource(format="glue-tsv", packaged="demo/data/sst2-dev.tsv", hint=GLUE_SST2.hint),
    seq_len=128,
    # demo/model/eval_results.json: 774 / 872 with the stored fp16 weights upcast to fp32.
    reference={"accuracy": 774 / 872},
))

register_recipe(Recipe(
    name="bert-base-cased-sst2",
    description="BERT-base-cased fine-tuned on GLUE SST-2 (BertForSequenceClassification).",
    task="sst2",
    family="bert",
    checkpoint=CheckpointSource(hub_id="gchhablani/bert-base-cased-finetuned-sst2"),
    data=GLUE_SST2,
    seq_len=128,
    reference={"accuracy": 0.9243},
    notes=(
        "reference 92.43 is the reference pipeline's published accuracy; the default hub "
        "checkpoint's model card reports 92.32",
    ),
))
