"""The one interface of everything that scores sentences (policytag.model.Classifier, the fast paths of
policytag/fast_scorer.py, the baselines of policytag/training/): a protocol, so that a scorer need not import it, and
in a module of its own that imports no model library, so that the tagger's worker processes stay light."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Scorer(Protocol):
    """What scores sentences, whatever the model: the labels in output order, one decision threshold per label, and
    sigmoid-like scores [len(texts), len(labels)] in input order. policytag.model.Classifier, the fast paths of
    policytag/fast_scorer.py (OnnxScorer, TorchScorer) and the baselines of policytag/training/ (TF-IDF, zero-shot)
    all are Scorers: the evaluation, the suggestions and the ML backend take any of them."""

    labels: Sequence[str]
    thresholds: np.ndarray

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class VersionedScorer(Scorer, Protocol):
    """A Scorer whose output names the model that made it (a hash of its weights): what the tagger writes with
    every row, and what its resume compares."""

    model_version: str
