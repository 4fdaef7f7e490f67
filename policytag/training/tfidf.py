"""The `tfidf` baseline: TF-IDF over character n-grams within word boundaries (char_wb, so Vietnamese syllables
and their tone marks count as much as English words; NFC-normalised first) and one logistic regression per label
(one-vs-rest, class_weight="balanced", fixed random_state); thresholds tuned on the validation split. Saved without
pickle: the vectorizer's vocabulary as JSON, arrays as safetensors (policytag/training/predictors.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.text import normalise_text
from policytag.training.artifacts import write_json
from policytag.training.data import split_arrays
from policytag.training.model_cards import tfidf_card
from policytag.training.params import TfidfParams
from policytag.training.predictors import (
    BaselineError,
    card_facts,
    kind_settings,
    predict_labels,
    read_config,
    read_json,
    read_model_thresholds,
    read_safetensors,
    stored_thresholds,
    write_model_files,
)
from policytag.training.thresholds import FALLBACK, tune_thresholds

TFIDF_WEIGHTS, TFIDF_VOCABULARY = "weights.safetensors", "vocabulary.json"
_CONSTANT_LOGIT = 12.0  # a label that is always (or never) positive in training: p = sigmoid(+-12)


@dataclass
class TfidfPredictor:
    settings: dict
    vocabulary: list[str]
    idf: np.ndarray
    coef: np.ndarray  # [labels, features]
    intercept: np.ndarray  # [labels]
    thresholds: np.ndarray
    labels: tuple[str, ...] = LABEL_NAMES
    facts: dict = field(default_factory=dict)
    kind = "tfidf"

    def __post_init__(self):
        self.vectorizer = _vectorizer(self.settings, self.vocabulary)
        self.vectorizer.idf_ = self.idf

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import expit

        features = self.vectorizer.transform([normalise_text(t) for t in texts])
        return expit(features @ self.coef.T + self.intercept[None, :])

    def predict(self, texts: Sequence[str]) -> list[list[str]]:
        return predict_labels(self, texts)

    def save(self, directory: str | os.PathLike) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / TFIDF_VOCABULARY, self.vocabulary)
        save_file({"idf": self.idf, "coef": self.coef, "intercept": self.intercept},
                  str(directory / TFIDF_WEIGHTS))
        write_model_files(directory, {"kind": self.kind, "labels": list(self.labels), "settings": self.settings,
                                      "facts": self.facts}, self.labels, self.thresholds, tfidf_card(self))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TfidfPredictor":
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = read_config(directory, cls.kind)
        vocabulary = read_json(directory / TFIDF_VOCABULARY)
        arrays = read_safetensors(directory / TFIDF_WEIGHTS, load_file)
        labels, thresholds = read_model_thresholds(directory, config["labels"])
        return cls(config["settings"], vocabulary, arrays["idf"], arrays["coef"], arrays["intercept"], thresholds,
                   tuple(labels), config.get("facts", {}))


def _vectorizer(settings: dict, vocabulary: list[str] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=settings["analyzer"], ngram_range=tuple(settings["ngram_range"]),
                           sublinear_tf=settings["sublinear_tf"], min_df=settings["min_df"],
                           max_df=settings["max_df"], max_features=settings["max_features"], lowercase=True,
                           dtype=np.float64, vocabulary=vocabulary)


def fit_tfidf(train, validation, params: dict | None = None, **_) -> TfidfPredictor:
    """TF-IDF (char_wb n-grams) + one balanced logistic regression per label; thresholds tuned on `validation`."""
    from sklearn.linear_model import LogisticRegression

    settings = kind_settings(TfidfParams, params)
    texts, gold = split_arrays(train)
    if not texts:
        raise BaselineError("no training sentences: the dataset's train split is empty")
    vectorizer = _vectorizer(settings)
    features = vectorizer.fit_transform([normalise_text(t) for t in texts])
    coef = np.zeros((len(LABEL_NAMES), features.shape[1]))
    intercept = np.zeros(len(LABEL_NAMES))
    for j in range(len(LABEL_NAMES)):
        positives = int(gold[:, j].sum())
        if 0 < positives < len(texts):
            model = LogisticRegression(C=settings["C"], class_weight="balanced", solver=settings["solver"],
                                       max_iter=settings["max_iter"], random_state=settings["seed"])
            model.fit(features, gold[:, j].astype(int))
            coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
        else:
            intercept[j] = _CONSTANT_LOGIT if positives else -_CONSTANT_LOGIT
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    predictor = TfidfPredictor(settings, vocabulary, vectorizer.idf_.astype(np.float64), coef, intercept,
                               np.full(len(LABEL_NAMES), FALLBACK))
    val_texts, val_gold = split_arrays(validation)
    val_scores = predictor.predict_proba(val_texts) if val_texts else np.zeros((0, len(LABEL_NAMES)))
    predictor.thresholds = stored_thresholds(tune_thresholds(val_gold, val_scores))
    predictor.facts = card_facts(gold, val_gold, val_scores, predictor.thresholds)
    return predictor
