"""The `zeroshot` baseline: the backbone alone, no training: the cosine similarity between a sentence's e5
embedding and the embedding of each label's description (policytag.labels), mean-pooled over the attention mask as
e5 was trained (policytag/training/encoder.py). Similarities are standardised per label against the training sentences
and squashed with a sigmoid, so its scores lie in (0, 1) like the others' (a ranking score, not a calibrated
probability). Nothing in it is fitted on labels, so its thresholds are tuned on train and validation together by
default (`tune_on: train_and_validation`): the validation split alone often has no positive of a rare label, and
the 0.5 fallback means nothing on this score's scale. `tune_on: validation` tunes on validation alone."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.labels import LABEL_NAMES, LABELS
from policytag.training.data import split_arrays
from policytag.training.encoder import Encoder, load_encoder
from policytag.training.model_cards import zeroshot_card
from policytag.training.params import ZeroshotParams
from policytag.training.predictors import (
    DEFAULT_BACKBONE,
    BaselineError,
    card_facts,
    kind_settings,
    predict_labels,
    read_config,
    read_model_thresholds,
    read_safetensors,
    stored_thresholds,
    write_model_files,
)
from policytag.training.thresholds import FALLBACK, tune_thresholds

ZEROSHOT_WEIGHTS = "label_embeddings.safetensors"


@dataclass
class ZeroShotPredictor:
    settings: dict
    label_embeddings: np.ndarray  # [labels, hidden], L2-normalised
    center: np.ndarray  # [labels]: mean similarity of the training sentences to each label
    scale: np.ndarray  # [labels]: their standard deviation
    thresholds: np.ndarray
    labels: tuple[str, ...] = LABEL_NAMES
    facts: dict = field(default_factory=dict)
    kind = "zeroshot"

    @property
    def encoder(self) -> Encoder:
        return load_encoder(str(self.settings["backbone"]), self.settings["max_length"], self.settings["batch_size"],
                            self.settings.get("mixed_precision", "fp32"))  # saved before the setting: float32

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity [texts, labels] between each sentence and each label description."""
        return self.encoder.encode(texts, self.settings["sentence_prefix"]) @ self.label_embeddings.T

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import expit

        return expit((self.similarities(texts) - self.center[None, :]) / self.scale[None, :])

    def predict(self, texts: Sequence[str]) -> list[list[str]]:
        return predict_labels(self, texts)

    def save(self, directory: str | os.PathLike) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        descriptions = {label.name: label.description for label in LABELS if label.name in self.labels}
        save_file({"label_embeddings": self.label_embeddings, "center": self.center, "scale": self.scale},
                  str(directory / ZEROSHOT_WEIGHTS))
        write_model_files(directory, {"kind": self.kind, "labels": list(self.labels), "settings": self.settings,
                                      "descriptions": descriptions, "facts": self.facts},
                          self.labels, self.thresholds, zeroshot_card(self))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, backbone: str | os.PathLike | None = None) -> "ZeroShotPredictor":
        """`backbone` overrides the checkpoint directory recorded at fit time (relative to the working directory)."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = read_config(directory, cls.kind)
        arrays = read_safetensors(directory / ZEROSHOT_WEIGHTS, load_file)
        labels, thresholds = read_model_thresholds(directory, config["labels"])
        settings = dict(config["settings"])
        if backbone is not None:
            settings["backbone"] = str(backbone)
        return cls(settings, arrays["label_embeddings"], arrays["center"], arrays["scale"], thresholds,
                   tuple(labels), config.get("facts", {}))


def fit_zeroshot(train, validation, params: dict | None = None, backbone_dir: str | os.PathLike = DEFAULT_BACKBONE,
                 **_) -> ZeroShotPredictor:
    """Label-description embeddings from the backbone; per-label thresholds tuned on `validation` (or on train and
    validation together with tune_on: train_and_validation: nothing else is fitted on their labels)."""
    settings = {**kind_settings(ZeroshotParams, params), "backbone": str(backbone_dir)}
    encoder = load_encoder(str(settings["backbone"]), settings["max_length"], settings["batch_size"],
                           settings["mixed_precision"])
    label_embeddings = encoder.encode([label.description for label in LABELS], settings["label_prefix"])
    texts, gold = split_arrays(train)
    if not texts:
        raise BaselineError("no training sentences: the dataset's train split is empty")
    train_sims = encoder.encode(texts, settings["sentence_prefix"]) @ label_embeddings.T
    center, scale = train_sims.mean(axis=0), np.maximum(train_sims.std(axis=0), 1e-6)
    predictor = ZeroShotPredictor(settings, label_embeddings, center.astype(np.float32), scale.astype(np.float32),
                                  np.full(len(LABEL_NAMES), FALLBACK))
    val_texts, val_gold = split_arrays(validation)
    val_scores = predictor.predict_proba(val_texts) if val_texts else np.zeros((0, len(LABEL_NAMES)))
    if settings["tune_on"] == "train_and_validation":
        from scipy.special import expit

        train_scores = expit((train_sims - center) / scale)
        predictor.thresholds = stored_thresholds(tune_thresholds(np.vstack([gold, val_gold]),
                                                                 np.vstack([train_scores, val_scores])))
    else:
        predictor.thresholds = stored_thresholds(tune_thresholds(val_gold, val_scores))
    predictor.facts = card_facts(gold, val_gold, val_scores, predictor.thresholds)
    return predictor
