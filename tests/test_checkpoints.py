import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from encoderzoo.checkpoints import fingerprint, load_model, load_tokenizer, resolve_checkpoint
from encoderzoo.errors import CheckpointError
from encoderzoo.families import family_of, get_family
from encoderzoo.recipes import get_recipe
from encoderzoo.tasks import get_task
from tests.conftest import build_tiny_bert

RECIPE = get_recipe("bert-base-cased-sst2")
BERT, SST2 = get_family("bert"), get_task("sst2")


def resolve(spec: str | Path):  # type: ignore[no-untyped-def]
    return resolve_checkpoint(str(spec), RECIPE)


def copy_without(src: Path, dst: Path, *names: str) -> Path:
    shutil.copytree(src, dst, ignore=lambda _d, files: [f for f in files if f in names])
    return dst


def test_fp16_weights_are_upcast_to_fp32(tiny_bert: Path, tmp_path: Path) -> None:
    folder = build_tiny_bert(tmp_path / "fp16", dtype="float16")
    checkpoint = resolve(folder)
    model = load_model(checkpoint, SST2)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert checkpoint.config.dtype == torch.float16  # what was stored, recorded in the report
    reference = build_tiny_bert(tmp_path / "fp32-again", seed=0)  # same seed, fp32 weights
    full = load_model(resolve(reference), SST2)
    ids = torch.tensor([[101, 8667, 1362, 102]])
    with torch.inference_mode():
        upcast = model(input_ids=ids).logits
        exact = full(input_ids=ids).logits
    assert torch.allclose(upcast, exact, atol=1e-2)  # only fp16 rounding of the weights


def test_tokenizer_is_the_checkpoints_own_fast_one(tiny_bert: Path) -> None:
    tokenizer = load_tokenizer(resolve(tiny_bert))
    assert tokenizer.is_fast
    assert tokenizer("Hello world")["input_ids"] == [101, 8667, 1362, 102]


@pytest.mark.parametrize(("removed", "message"), [
    (("config.json",), "no config.json"),
    (("model.safetensors",), "no weights"),
])
def test_incomplete_folders(tiny_bert: Path, tmp_path: Path, removed: tuple[str, ...], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        resolve(copy_without(tiny_bert, tmp_path / "ckpt", *removed))


def test_missing_tokenizer(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "ckpt", "tokenizer.json", "tokenizer_config.json")
    with pytest.raises(CheckpointError, match=r"ckpt has 5 tokens but .*ckpt/config.json embeds 28996: the "
                                              "tokenizer files are missing"):
        load_tokenizer(resolve(folder))


def test_tokenizer_larger_than_the_embedding(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"vocab_size": 1000}))
    with pytest.raises(CheckpointError, match="embeds only 1000: the tokenizer and the model come from"):
        load_tokenizer(resolve(folder))


def demo_with(tmp_path: Path, **files: Path) -> Path:
    from encoderzoo.assets import asset_path

    folder = copy_without(asset_path("demo/model"), tmp_path / "demo", *files)
    for name, source in files.items():
        shutil.copy(source, folder / name.replace("_", ".", 1))
    return folder


def test_a_near_size_vocabulary_of_another_model_is_refused(tmp_path: Path) -> None:
    """The demo's uncased 30,522-token model with bert-base-cased's 28,996-token vocab.txt."""
    from tests.conftest import BERT_CASED_VOCAB

    folder = copy_without(demo_with(tmp_path, vocab_txt=BERT_CASED_VOCAB), tmp_path / "only-vocab",
                          "tokenizer.json")
    with pytest.raises(CheckpointError, match=r"only-vocab/vocab.txt has 28996 tokens but .*only-vocab/"
                                              r"config.json embeds 30522: .* cased vocabulary"):
        load_tokenizer(resolve(folder))
    both = demo_with(tmp_path / "both", vocab_txt=BERT_CASED_VOCAB)  # beside the demo's own tokenizer.json
    with pytest.raises(CheckpointError, match=r"both/demo/tokenizer.json and .*both/demo/vocab.txt disagree"):
        load_tokenizer(resolve(both))


def test_another_padding_id_is_refused(tmp_path: Path) -> None:
    from encoderzoo.assets import asset_path

    folder = copy_without(asset_path("demo/model"), tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"pad_token_id": 1}))
    with pytest.raises(CheckpointError, match=r"pads with id 0 .* trained with pad_token_id 1"):
        load_tokenizer(resolve(folder))


def test_the_real_tokenizers_fit_their_models() -> None:
    from encoderzoo.assets import asset_path

    assert len(load_tokenizer(resolve(asset_path("demo/model")))) == 30522


def test_the_family_comes_from_the_checkpoint_not_the_recipe(tmp_path: Path) -> None:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    RobertaForSequenceClassification(RobertaConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32)).save_pretrained(tmp_path / "roberta")
    checkpoint = resolve(tmp_path / "roberta")  # through a bert recipe
    assert family_of(checkpoint.config.model_type, checkpoint.location).name == "roberta"
    from encoderzoo.families import FAMILIES

    runs = ", ".join(sorted(t for f in FAMILIES.values() for t in f.model_types))
    assert "modernbert, mpnet" in runs
    expected = f"gpt2/: a 'gpt2' model, which encoderzoo does not run (model types it runs: {runs})"
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        family_of("gpt2", "gpt2/")


def test_label_count_must_match_the_task(tmp_path: Path) -> None:
    checkpoint = resolve(build_tiny_bert(tmp_path / "three", num_labels=3))
    with pytest.raises(CheckpointError, match="3 output classes, task 'sst2' has 2"):
        SST2.for_model(checkpoint.config, checkpoint.location)


def test_offline_hub_id_is_one_clear_line() -> None:
    with pytest.raises(CheckpointError, match=r"offline.*pass --checkpoint PATH") as caught:
        resolve("someone/some-model")
    assert "\n" not in str(caught.value)


def test_not_a_folder_or_hub_id(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        resolve(tmp_path / "nope")


def test_bin_weights_load_with_weights_only(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "bin", "model.safetensors")
    state = load_model(resolve(tiny_bert), SST2).state_dict()
    torch.save(state, folder / "pytorch_model.bin")
    model = load_model(resolve(folder), SST2)
    assert torch.equal(model.classifier.weight, state["classifier.weight"])


class Payload:
    """Unpickling this runs os.makedirs: the kind of side effect weights_only must refuse."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.makedirs, (str(self.marker),))


def test_pickle_payload_in_bin_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "evil", "model.safetensors")
    marker = tmp_path / "payload-ran"
    state = load_model(resolve(tiny_bert), SST2).state_dict()
    torch.save(dict(state, extra=Payload(marker)), folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refuses to unpickle"):
        load_model(resolve(folder), SST2)
    assert not marker.exists()


def test_missing_head_weights_are_an_error_not_a_random_head(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "headless", "model.safetensors")
    state = load_model(resolve(tiny_bert), SST2).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("classifier")},
               folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"weights missing for 2 parameters \(e.g. classifier"):
        load_model(resolve(folder), SST2)


def test_code_in_the_checkpoint_folder_never_runs(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "remote")
    marker = tmp_path / "code-ran"
    (folder / "custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config |= {"model_type": "custom-bert", "auto_map": {"AutoConfig": "custom.CustomConfig"}}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"auto_map.*pass --trust-remote-code if you trust it"):
        resolve(folder)
    assert not marker.exists()


def test_code_runs_only_when_the_user_asks(tiny_bert: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_bert, tmp_path / "remote")
    marker = tmp_path / "code-ran"
    (folder / "custom.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import BertConfig\n"
        "class CustomConfig(BertConfig):\n    model_type = 'bert'\n")
    config = json.loads((folder / "config.json").read_text())
    config |= {"auto_map": {"AutoConfig": "custom.CustomConfig"}}
    (folder / "config.json").write_text(json.dumps(config))
    recipe = get_recipe("bert-base-cased-sst2")
    resolve_checkpoint(str(folder), recipe, trust_remote_code=True)
    assert marker.exists()


def test_fingerprint_follows_the_weights(tiny_bert: Path, tmp_path: Path) -> None:
    first = fingerprint(resolve(tiny_bert))
    assert first == fingerprint(resolve(copy_without(tiny_bert, tmp_path / "same")))
    other = build_tiny_bert(tmp_path / "other", seed=1)
    assert fingerprint(resolve(other)) != first


def with_bias(src: Path, dst: Path, delta: float) -> Path:
    """A copy of `src` whose classifier bias differs by `delta`: another model, same shapes."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    weights["classifier.bias"] = weights["classifier.bias"] + delta
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_a_hub_checkpoint_is_keyed_by_the_snapshot_it_resolved_to(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers 5 sets no config._commit_hash: two hub models of one recipe must still get
    different keys, from the snapshot's commit and the files actually loaded."""
    import huggingface_hub.constants

    from encoderzoo.checkpoints import content_hashes
    from tests.hub_cache import add_repo

    cache = tmp_path / "hub"
    commit_a = add_repo(cache, "org/model-a", tiny_bert)
    add_repo(cache, "org/model-c", with_bias(tiny_bert, tmp_path / "c", 1.0))
    add_repo(cache, "org/copy-of-a", tiny_bert)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    a, c, copy = resolve("org/model-a"), resolve("org/model-c"), resolve("org/copy-of-a")
    assert (a.location, a.revision, a.is_local) == ("org/model-a", commit_a, False)
    assert a.folder == cache / "models--org--model-a" / "snapshots" / commit_a
    assert fingerprint(a) != fingerprint(c)
    assert content_hashes(a)["tokenizer"] == content_hashes(resolve(f"org/model-a@{commit_a}"))["tokenizer"]
    assert fingerprint(a) != fingerprint(copy) and fingerprint(a) != fingerprint(resolve(tiny_bert))  # + id
    logits = [load_model(ckpt, SST2)(input_ids=torch.tensor([[101, 8667, 102]])).logits for ckpt in (a, c)]
    assert torch.allclose(logits[1] - logits[0], torch.ones(2), atol=1e-5)  # each loads its own files
    with pytest.raises(CheckpointError, match="org/model-b: not in the local hub cache"):
        resolve("org/model-b")
