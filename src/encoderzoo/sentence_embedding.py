"""A sentence-embedding model: an encoder (transformers' AutoModel) with the pooling its
sentence-transformers folder declares (modules.json, 1_Pooling/config.json: mean, CLS or max
over the tokens; a Normalize module: unit length), in one torch module, so that the exported
graph outputs `sentence_embedding` itself. Loaded like a transformers auto class
(`from_pretrained`, `from_config`); no code from the model folder runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from encoderzoo.errors import CheckpointError

POOLING_FILE = "1_Pooling/config.json"  # where save_pretrained puts the pooling config
MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
         "pooling_mode_max_tokens": "max"}
TRANSFORMER, POOLING = "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"


def _modules(folder: Path) -> list[dict[str, Any]]:
    """modules.json's entries ([] for a plain encoder without one)."""
    path = folder / "modules.json"
    if not path.is_file():
        return []
    try:
        modules = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CheckpointError(f"{path}: expected a list of modules ({{'type', 'path'}} each)")
    return modules


def pooling_files(folder: Path) -> list[Path]:
    """The files that decide the pooling: modules.json and its Pooling module's config (what
    the model's identity must cover besides config.json and the weights)."""
    try:
        modules = _modules(folder)
    except CheckpointError:  # unreadable: hashed as it is, refused when loaded
        return [folder / "modules.json"]
    found = [folder / "modules.json"] if modules else []
    found += [folder / m.get("path", "") / "config.json" for m in modules if m.get("type") == POOLING]
    return [p for p in found if p.is_file()]


def read_pooling(folder: Path) -> tuple[str, bool]:
    """(mode, normalize) as the folder's sentence-transformers modules say: an encoder at the
    folder's root, then a Pooling module (mean, CLS or max) and optionally Normalize. A plain
    encoder (no modules.json) pools by mean without normalizing, as sentence-transformers does.
    Any other module (Dense, ...) or pooling mode is refused: leaving it out would give other
    embeddings than the model's."""
    modules = _modules(folder)
    where = folder / "modules.json"
    for module in modules:
        kind = module.get("type")
        if kind not in (TRANSFORMER, POOLING, NORMALIZE):
            raise CheckpointError(f"{where}: module {kind!r} is not one encoderzoo builds (a Transformer at "
                                  "the folder's root, Pooling, Normalize)")
        if kind == TRANSFORMER and module.get("path", "") != "":
            raise CheckpointError(f"{where}: the Transformer module lives in {module['path']!r}; encoderzoo "
                                  "reads the encoder at the folder's root (move its files there, as "
                                  "sentence-transformers saves models today)")
    pools = [m for m in modules if m.get("type") == POOLING]
    pooling: dict[str, Any] = {}
    if pools:
        path = folder / pools[0].get("path", "") / "config.json"
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; modules.json lists a Pooling module here")
        try:
            pooling = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    modes = [mode for key, mode in MODES.items() if pooling.get(key)]
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and k not in MODES and v]
    if len(pools) > 1 or len(modes) > 1 or others:
        raise CheckpointError(f"{where}: pooling {pooling} is not one of mean, cls or max alone; encoderzoo "
                              "builds those three")
    return (modes[0] if modes else "mean"), any(m.get("type") == NORMALIZE for m in modules)


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
            parts = (("", TRANSFORMER), ("1_Pooling", POOLING))
            modules = [{"idx": i, "name": str(i), "path": path, "type": kind}
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
        if not Path(source).is_dir():  # encoderzoo passes the checkpoint's (snapshot) folder
            raise CheckpointError(f"{source}: sentence embeddings load from a local folder (for its pooling "
                                  "files)")
        model = _module_class()(encoder, *read_pooling(Path(source)))
        return (model, info) if info is not None else model

    @staticmethod
    def from_config(config: Any) -> Any:
        import transformers

        return _module_class()(transformers.AutoModel.from_config(config), "mean", True)
