"""Multi-label classification metrics as pure functions of gold and predicted matrices [rows, labels].

Conventions follow scikit-learn with zero_division=0: a precision with no prediction, a recall with no positive
and an F1 with neither are 0. Macro-F1 is the unweighted mean over all labels (a label with no positive among
the rows scores 0 unless `present_only`); micro-F1 pools the counts of every label.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.training.metrics import macro_f1

__all__ = ["average_precision", "confusion", "macro_f1", "micro_f1", "per_label", "pr_curve", "summary"]


def _matrices(gold, predicted) -> tuple[np.ndarray, np.ndarray]:
    gold, predicted = np.asarray(gold) > 0.5, np.asarray(predicted).astype(bool)
    if gold.shape != predicted.shape or gold.ndim != 2:
        raise ValueError(f"gold {gold.shape} and predicted {predicted.shape} must both be [rows, labels]")
    return gold, predicted


def confusion(gold, predicted, labels: Sequence[str] = LABEL_NAMES) -> dict[str, dict[str, int]]:
    """Per label: true positives, false positives, false negatives, true negatives."""
    gold, predicted = _matrices(gold, predicted)
    return {
        label: {"tp": int(np.sum(gold[:, k] & predicted[:, k])), "fp": int(np.sum(~gold[:, k] & predicted[:, k])),
                "fn": int(np.sum(gold[:, k] & ~predicted[:, k])), "tn": int(np.sum(~gold[:, k] & ~predicted[:, k]))}
        for k, label in enumerate(labels)
    }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def per_label(gold, predicted, labels: Sequence[str] = LABEL_NAMES) -> dict[str, dict[str, float | int]]:
    """Per label: precision, recall, F1 and support (the number of gold positives)."""
    return {label: {**scores_from_counts(c["tp"], c["fp"], c["fn"]), "support": c["tp"] + c["fn"]}
            for label, c in confusion(gold, predicted, labels).items()}


def micro_f1(gold, predicted) -> float:
    counts = confusion(gold, predicted, [str(k) for k in range(np.asarray(gold).shape[1])]).values()
    return scores_from_counts(sum(c["tp"] for c in counts), sum(c["fp"] for c in counts),
                              sum(c["fn"] for c in counts))["f1"]


def summary(gold, predicted, labels: Sequence[str] = LABEL_NAMES) -> dict:
    """What the metrics files hold for one model: label -> precision/recall/f1/support, then micro and macro
    scores. Nested so that `dvc metrics show` lists e.g. tfidf.privacy.f1 and tfidf.macro_f1."""
    gold, predicted = _matrices(gold, predicted)
    counts = confusion(gold, predicted, labels).values()
    micro = scores_from_counts(sum(c["tp"] for c in counts), sum(c["fp"] for c in counts), sum(c["fn"] for c in counts))
    return {
        **per_label(gold, predicted, labels),
        "micro_precision": micro["precision"], "micro_recall": micro["recall"], "micro_f1": micro["f1"],
        "macro_f1": macro_f1(gold, predicted),
        "macro_f1_present": macro_f1(gold, predicted, present_only=True),
        "sentences": int(len(gold)),
    }


def pr_curve(gold, scores) -> list[dict[str, float | None]]:
    """Precision-recall points of one label, one per distinct score taken as threshold (`score >= threshold`),
    from the highest threshold (lowest recall) down, after a first point at recall 0, precision 1 (threshold
    None: nothing predicted). Empty when there is no gold positive: recall is undefined."""
    gold, scores = np.asarray(gold) > 0.5, np.asarray(scores, dtype=np.float64)
    if gold.ndim != 1 or gold.shape != scores.shape:
        raise ValueError(f"gold {gold.shape} and scores {scores.shape} must be the same 1-d shape")
    positives = int(gold.sum())
    if not positives:
        return []
    points = [{"threshold": None, "recall": 0.0, "precision": 1.0}]
    for threshold in np.unique(scores)[::-1]:
        predicted = scores >= threshold
        tp = int(np.sum(gold & predicted))
        points.append({"threshold": float(threshold), "recall": tp / positives, "precision": tp / int(predicted.sum())})
    return points


def average_precision(gold, scores) -> float:
    """Area under the precision-recall step curve (scikit-learn's average_precision_score); 0 with no positive."""
    points = pr_curve(gold, scores)
    return float(sum((b["recall"] - a["recall"]) * b["precision"] for a, b in zip(points, points[1:])))
