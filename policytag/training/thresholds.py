"""Per-label decision thresholds, tuned the same way for every model kind (tfidf, zero-shot, the transformer).

A label is predicted when its score reaches its threshold (`score >= threshold`, the rule of
policytag.model.Classifier.decide). Each label's threshold is the grid value (step, 2 step, ..., below 1) that
maximises that label's F1 on the rows it is tuned on: validation rows, never test rows. With a handful of
positives many grid values tie; the middle of the tied values is taken (the centre of a plateau generalises better
than its edge). A label with fewer than `min_positives` positives among the tuning rows (default 1: none at all)
gets the fallback, 0.5: too little to tune it on.
"""

from __future__ import annotations

import numpy as np

FALLBACK = 0.5
MIN_POSITIVES = 5
"""Out-of-fold tuning: fewer positives than this and a label keeps the fallback threshold."""
DEFAULT_STEP = 0.01


def threshold_grid(step: float = DEFAULT_STEP) -> np.ndarray:
    """step, 2 step, ... up to (not including) 1."""
    if not 0 < step < 0.5:
        raise ValueError(f"threshold step must lie in (0, 0.5), not {step}")
    return np.round(np.arange(step, 1.0 - step / 2, step), 6)


def f1_at_thresholds(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """F1 of one label (1-d gold and scores) at each of `thresholds`; 0 where there is nothing to count."""
    y_true = np.asarray(y_true) > 0.5
    predicted = np.asarray(scores)[None, :] >= np.asarray(thresholds, dtype=np.float64)[:, None]
    tp = (predicted & y_true).sum(axis=1)
    wrong = (predicted ^ y_true).sum(axis=1)  # false positives + false negatives
    denominator = 2 * tp + wrong
    return np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)


def best_threshold(y_true: np.ndarray, scores: np.ndarray, grid: np.ndarray | None = None,
                   fallback: float = FALLBACK, min_positives: int = 1) -> float:
    """The F1-maximising grid threshold of one label; the middle one among ties; `fallback` with fewer than
    `min_positives` positives."""
    grid = threshold_grid() if grid is None else np.asarray(grid)
    if (np.asarray(y_true) > 0.5).sum() < max(1, min_positives):
        return float(fallback)
    f1 = f1_at_thresholds(y_true, scores, grid)
    best = grid[f1 >= f1.max() - 1e-12]
    return float(best[len(best) // 2])


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, step: float = DEFAULT_STEP,
                    fallback: float = FALLBACK, min_positives: int = 1) -> np.ndarray:
    """One threshold per label (float32, column order of `scores`) from multi-hot `y_true` [rows, labels] and
    scores [rows, labels] of the rows to tune on."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and scores {scores.shape} must both be [rows, labels]")
    grid = threshold_grid(step)
    return np.array([best_threshold(y_true[:, k], scores[:, k], grid, fallback, min_positives)
                     for k in range(y_true.shape[1])],
                    dtype=np.float32)


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Boolean predictions: each score against its label's threshold. `thresholds` is [labels] or, for rows scored
    by different models (cross-validation folds), [rows, labels]."""
    thresholds = np.asarray(thresholds)
    return np.asarray(scores) >= (thresholds[None, :] if thresholds.ndim == 1 else thresholds)


def out_of_fold_thresholds(gold: np.ndarray, scores: np.ndarray, folds: np.ndarray, step: float = DEFAULT_STEP,
                           min_positives: int = MIN_POSITIVES) -> tuple[np.ndarray, dict]:
    """Thresholds tuned on pooled out-of-fold scores (rows scored by models that never saw their documents), and
    how stable each is: the thresholds that each fold's complement gives, their spread, and whether the label had
    too few positives and kept the fallback."""
    gold, scores, folds = np.asarray(gold), np.asarray(scores, dtype=np.float64), np.asarray(folds)
    pooled = tune_thresholds(gold, scores, step, min_positives=min_positives)
    per_fold = np.array([tune_thresholds(gold[folds != fold], scores[folds != fold], step,
                                         min_positives=min_positives) for fold in np.unique(folds)])
    stability = {}
    for k in range(gold.shape[1]):
        positives = int((gold[:, k] > 0.5).sum())
        column = per_fold[:, k] if len(per_fold) else np.array([pooled[k]])
        stability[k] = {"threshold": round(float(pooled[k]), 4), "positives": positives,
                        "fallback": positives < max(1, min_positives),
                        "fold_thresholds": [round(float(t), 4) for t in column],
                        "fold_std": round(float(column.std()), 4),
                        "fold_range": round(float(column.max() - column.min()), 4)}
    return pooled, stability


def matched_thresholds(reference: np.ndarray, thresholds: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Thresholds for `other` scores [rows, labels] under which each label is predicted for as many rows as
    `reference` scores predict it at `thresholds`: a second scorer of the same model (the int8 export) then decides
    like the first. A label the reference never predicts keeps its threshold."""
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    matched = np.asarray(thresholds, dtype=np.float64).copy()
    for k in range(reference.shape[1]):
        count = int((reference[:, k] >= thresholds[k]).sum())
        if count == 0:
            continue
        ranked = np.sort(other[:, k])[::-1]
        below = ranked[count] if count < len(ranked) else 0.0
        matched[k] = (ranked[count - 1] + below) / 2 if ranked[count - 1] > below else ranked[count - 1]
    return matched.astype(np.float32)
