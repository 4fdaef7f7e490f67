"""e5 sentence embeddings from a backbone checkpoint (models/backbone/): NFC, prefix, mean pooling, L2 norm; used
by the zero-shot baseline and the active-learning simulation. The passes run in bf16 where the hardware has it
(`mixed_precision`, policytag/training/precision.py); the embeddings are float32."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.training.predictors import BaselineError


class EncoderError(BaselineError):
    """A backbone directory without a checkpoint; the message says how to build it."""


class Encoder:
    """e5 sentence embeddings from a backbone checkpoint (models/backbone/): NFC, prefix, mean pooling, L2 norm."""

    def __init__(self, backbone_dir: str | os.PathLike, max_length: int = 128, batch_size: int = 32,
                 mixed_precision: str = "auto"):
        from transformers import AutoModel, AutoTokenizer

        from policytag.training import precision

        backbone_dir = Path(backbone_dir)
        if not (backbone_dir / "config.json").is_file():
            raise EncoderError(f"{backbone_dir} holds no backbone checkpoint (config.json expected); build it "
                               "with `dvc repro backbone` (python -m policytag.training.backbone) or pass the right "
                               "directory")
        self.tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
        self.model = AutoModel.from_pretrained(str(backbone_dir), add_pooling_layer=False).eval()
        self.max_length, self.batch_size = max_length, batch_size
        self.mixed_precision = precision.resolve(mixed_precision, self.model.device)
        self._cache: dict[tuple[str, str], np.ndarray] = {}  # (prefix, text) -> embedding: folds share sentences

    def encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        import torch

        from policytag.model import mean_pool
        from policytag.training import precision
        from policytag.training.batches import tokenized_batches

        texts = list(texts)
        todo = list(dict.fromkeys(t for t in texts if (prefix, t) not in self._cache))
        with torch.inference_mode(), precision.autocast(self.model.device, self.mixed_precision):
            # sorted by length: little of a batch is padding (the cache puts the vectors back in input order)
            for rows, batch in tokenized_batches(self.tokenizer, todo, self.batch_size, self.max_length, prefix,
                                                 by_length=True):
                chunk = [todo[i] for i in rows]
                hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                pooled = torch.nn.functional.normalize(mean_pool(hidden.last_hidden_state.float(),
                                                                 batch["attention_mask"]), dim=-1).numpy()
                self._cache.update(((prefix, text), vector) for text, vector in zip(chunk, pooled))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._cache[(prefix, text)]
        return out


@lru_cache(maxsize=2)
def load_encoder(backbone_dir: str, max_length: int, batch_size: int, mixed_precision: str = "auto") -> Encoder:
    """One encoder per backbone and settings, shared by the folds of a cross-validation."""
    return Encoder(backbone_dir, max_length, batch_size, mixed_precision)
