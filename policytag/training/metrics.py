"""Multi-label scores of a gold matrix against decisions [rows, labels]: macro-F1 (shared by training, the
evaluation stage and the active-learning simulation) and the per-label table the train stage records.

F1 follows scikit-learn with zero_division=0: a label with neither a positive nor a prediction scores 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from policytag.labels import LABEL_NAMES


def macro_f1(gold, predicted, present_only: bool = False) -> float:
    """Mean per-label F1; with `present_only`, over the labels that have a gold positive (0.0 if none has)."""
    gold, predicted = np.asarray(gold) > 0.5, np.asarray(predicted).astype(bool)
    if gold.shape != predicted.shape or gold.ndim != 2:
        raise ValueError(f"gold {gold.shape} and predicted {predicted.shape} must both be [rows, labels]")
    f1 = []
    for k in range(gold.shape[1]):
        tp = int(np.sum(gold[:, k] & predicted[:, k]))
        fp = int(np.sum(~gold[:, k] & predicted[:, k]))
        fn = int(np.sum(gold[:, k] & ~predicted[:, k]))
        if tp + fn or not present_only:
            f1.append(2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0)
    return float(np.mean(f1)) if f1 else 0.0


def label_metrics(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
                  labels: Sequence[str] = LABEL_NAMES) -> dict:
    """Per-label precision, recall, F1 and support at the given thresholds, plus their macro-F1 over the labels
    with a positive."""
    y_true = np.asarray(y_true) > 0.5
    predicted = np.asarray(scores) >= np.asarray(thresholds)
    per_label = {}
    for k, name in enumerate(labels):
        tp = int((predicted[:, k] & y_true[:, k]).sum())
        fp = int((predicted[:, k] & ~y_true[:, k]).sum())
        fn = int((~predicted[:, k] & y_true[:, k]).sum())
        support = int(y_true[:, k].sum())
        per_label[name] = {
            "threshold": round(float(thresholds[k]), 4),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / support, 4) if support else None,
            "f1": round(2 * tp / (2 * tp + fp + fn), 4) if support else None,
            "support": support,
        }
    return {"labels": per_label, "macro_f1": round(macro_f1(y_true, predicted, present_only=True), 4),
            "sentences": int(len(y_true))}
