"""A sentence-embedding model: an encoder (transformers' AutoModel) with the pooling its
sentence-transformers folder declares (modules.json, 1_Pooling/config.json: mean, CLS or max
over the tokens; a Normalize module: unit length), in one torch module, so that the exported
graph outputs `sentence_embedding` itself. Loaded like a transformers auto class
(`from_pretrained`, `from_config`); no code from the model folder runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

POOLING_FILE = "1_Pooling/config.json"
MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
         "pooling_mode_max_tokens": "max"}
NORMALIZE = "sentence_transformers.models.Normalize"


def pooling_of(files: dict[str, Any]) -> tuple[str, bool]:
    """(mode, normalize) from the parsed modules.json and pooling config (None when absent:
    mean pooling, no normalization, sentence-transformers' defaults for a plain encoder)."""
    pooling = files.get("pooling") or {}
    modes = [mode for key, mode in MODES.items() if pooling.get(key)]
    if len(modes) > 1 or pooling.get("pooling_mode_mean_sqrt_len_tokens") or \
            pooling.get("pooling_mode_weightedmean_tokens") or pooling.get("pooling_mode_lasttoken"):
        from encoderzoo.errors import CheckpointError

        raise CheckpointError(f"{POOLING_FILE}: pooling {pooling} is not one of mean, cls or max alone; "
                              "encoderzoo builds those three")
    normalize = any(m.get("type") == NORMALIZE for m in files.get("modules") or [])
    return (modes[0] if modes else "mean"), normalize


def _read_json(source: str, name: str) -> Any:
    """A file of a local folder, or of a hub repository (from the local cache when offline)."""
    folder = Path(source)
    if folder.is_dir():
        path = folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        repo, _, revision = source.partition("@")
        return json.loads(Path(hf_hub_download(repo, name, revision=revision or None)).read_text("utf-8"))
    except Exception:  # no such file in the repository (a plain encoder)
        return None


def _module_class() -> Any:
    import torch

    class SentenceEmbedding(torch.nn.Module):
        """encoder -> pooled (and normalized) `sentence_embedding` (batch, hidden)."""

        def __init__(self, encoder: Any, mode: str = "mean", normalize: bool = False) -> None:
            super().__init__()
            self.encoder, self.mode, self.normalize = encoder, mode, normalize
            self.config = encoder.config

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None,
                    return_dict: bool = True) -> dict[str, Any]:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra,
                                  return_dict=True).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            if self.mode == "cls":
                pooled = tokens[:, 0]
            elif self.mode == "max":
                pooled = tokens.masked_fill(mask == 0, torch.finfo(tokens.dtype).min).max(dim=1).values
            else:
                pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return {"sentence_embedding": pooled}

        def half(self) -> Any:
            self.encoder = self.encoder.half()
            return self

        def save_pretrained(self, folder: Any) -> None:
            """The encoder's files and a sentence-transformers layout (modules.json, pooling)."""
            folder = Path(folder)
            self.encoder.save_pretrained(folder)
            parts = (("", "Transformer"), ("1_Pooling", "Pooling"))
            modules = [{"idx": i, "name": str(i), "path": path,
                        "type": f"sentence_transformers.models.{kind}"}
                       for i, (path, kind) in enumerate(parts)]
            if self.normalize:
                modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": NORMALIZE})
            (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
            (folder / "1_Pooling").mkdir(exist_ok=True)
            pooling = {"word_embedding_dimension": int(self.config.hidden_size)} | {
                key: mode == self.mode for key, mode in MODES.items()}
            (folder / POOLING_FILE).write_text(json.dumps(pooling, indent=2) + "\n", encoding="utf-8")

    return SentenceEmbedding


class AutoModelForSentenceEmbedding:
    """Builds the pooled model as transformers' auto classes build theirs."""

    @staticmethod
    def from_pretrained(source: str, **kwargs: Any) -> Any:
        import transformers

        loaded = transformers.AutoModel.from_pretrained(source, **kwargs)
        encoder, info = loaded if kwargs.get("output_loading_info") else (loaded, None)
        if info is not None:  # the pooler layer is not used: a checkpoint need not have it
            info["missing_keys"] = [k for k in info.get("missing_keys", []) if not k.startswith("pooler.")]
        files = {"modules": _read_json(source, "modules.json"), "pooling": _read_json(source, POOLING_FILE)}
        model = _module_class()(encoder, *pooling_of(files))
        return (model, info) if info is not None else model

    @staticmethod
    def from_config(config: Any) -> Any:
        import transformers

        return _module_class()(transformers.AutoModel.from_config(config), "mean", True)
