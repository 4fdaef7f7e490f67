"""e5 sentence embeddings from a backbone checkpoint (models/backbone/): NFC, prefix, mean pooling, L2 norm; used
by the zero-shot baseline and the active-learning simulation. The passes run in bf16 where the hardware has it
(`mixed_precision`, policytag/training/precision.py); the embeddings are float32.

The `embed` stage (policytag/training/embed.py) encodes every dataset sentence once and writes the vectors to
models/embeddings/; a stage that passes that directory to `use_embeddings` gets them from there instead of running
the encoder again, provided they were made from the same backbone weights with the same prefix, length limit and
precision (any other sentence is encoded as before)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.training.predictors import BaselineError


class EncoderError(BaselineError):
    """A backbone directory without a checkpoint; the message says how to build it."""


EMBEDDINGS_FILE = "embeddings.safetensors"
EMBEDDINGS_FACTS = "embeddings.json"

# (backbone weights version, prefix, max_length, precision) -> {text: vector}: what use_embeddings loaded
_PRECOMPUTED: dict[tuple[str, str, int, str], dict[str, np.ndarray]] = {}


def embeddings_key(backbone_version: str, prefix: str, max_length: int, mixed_precision: str) -> tuple:
    return (backbone_version, prefix, int(max_length), mixed_precision)


def add_embeddings_option(parser) -> None:
    """The `--embeddings` option of the stages that embed dataset sentences with the bare encoder."""
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="the embed stage's output (models/embeddings): sentence vectors come from there instead "
                             "of running the encoder again")


def use_embeddings(directory: str | os.PathLike) -> int:
    """Let every Encoder of this process take its vectors from the embed stage's output in `directory` where the
    backbone, prefix, length limit and precision match; returns how many sentences it holds."""
    import json

    from safetensors.numpy import load_file

    directory = Path(directory)
    try:
        facts = json.loads((directory / EMBEDDINGS_FACTS).read_text(encoding="utf-8"))
        vectors = load_file(str(directory / EMBEDDINGS_FILE))["vectors"]
        key = embeddings_key(facts["backbone_version"], facts["prefix"], facts["max_length"], facts["mixed_precision"])
        texts = facts["texts"]
    except (OSError, ValueError, KeyError) as error:
        raise EncoderError(f"{directory}: not the embed stage's output ({error}); run `dvc repro embed` or leave "
                           "out --embeddings") from None
    if len(texts) != len(vectors):
        raise EncoderError(f"{directory}: {len(texts)} sentences but {len(vectors)} vectors; run `dvc repro embed`")
    _PRECOMPUTED.setdefault(key, {}).update(zip(texts, vectors))
    return len(texts)


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
        self.backbone_dir = backbone_dir
        self._backbone_version: str | None = None

    def precomputed(self, prefix: str) -> dict[str, np.ndarray]:
        """The embed stage's vectors made with this encoder's backbone and settings (use_embeddings), if any."""
        if not _PRECOMPUTED:
            return {}
        if self._backbone_version is None:
            from policytag.model import weights_version

            self._backbone_version = weights_version(self.backbone_dir)
        return _PRECOMPUTED.get(embeddings_key(self._backbone_version, prefix, self.max_length,
                                               self.mixed_precision), {})

    def encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        import torch

        from policytag.model import mean_pool
        from policytag.training import precision
        from policytag.training.batches import tokenized_batches

        texts = list(texts)
        known = self.precomputed(prefix)
        self._cache.update(((prefix, t), known[t]) for t in texts if t in known and (prefix, t) not in self._cache)
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
