"""policytag.evaluation.metrics against counts done by hand, and against scikit-learn where it computes the same thing."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, precision_recall_fscore_support

from policytag.evaluation.metrics import (
    average_precision,
    confusion,
    macro_f1,
    micro_f1,
    per_label,
    pr_curve,
    scores_from_counts,
    summary,
)

LABELS = ["a", "b"]
# rows:      0       1       2       3       4
GOLD = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 0]])
PRED = np.array([[1, 0], [0, 1], [1, 0], [0, 0], [1, 1]])
# label a: TP rows 0, 4; FP row 2; FN row 1; TN row 3        -> P 2/3, R 2/3, F1 2/3
# label b: TP row 1;     FP row 4; FN row 3; TN rows 0, 2    -> P 1/2, R 1/2, F1 1/2
# micro: TP 3, FP 2, FN 2 -> F1 6/10; macro: (2/3 + 1/2) / 2 = 7/12


def test_confusion_by_hand():
    assert confusion(GOLD, PRED, LABELS) == {"a": {"tp": 2, "fp": 1, "fn": 1, "tn": 1},
                                             "b": {"tp": 1, "fp": 1, "fn": 1, "tn": 2}}


def test_per_label_micro_macro_by_hand():
    scores = per_label(GOLD, PRED, LABELS)
    assert scores["a"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert scores["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert micro_f1(GOLD, PRED) == pytest.approx(0.6)
    assert macro_f1(GOLD, PRED) == pytest.approx(7 / 12)
    assert f1_score(GOLD, PRED, average="micro") == pytest.approx(0.6)
    assert f1_score(GOLD, PRED, average="macro") == pytest.approx(7 / 12)


def test_zero_division_is_zero_as_in_sklearn():
    gold = np.array([[0, 1], [0, 0], [0, 1]])
    predicted = np.array([[0, 0], [0, 0], [0, 0]])
    scores = per_label(gold, predicted, LABELS)
    assert scores["a"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert macro_f1(gold, predicted) == f1_score(gold, predicted, average="macro", zero_division=0) == 0.0
    assert scores_from_counts(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # present_only leaves out the label with no positive
    predicted[0, 1] = 1
    assert macro_f1(gold, predicted, present_only=True) == pytest.approx(2 / 3)
    assert macro_f1(gold, predicted) == pytest.approx(1 / 3)


def test_random_matrices_agree_with_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(20):
        gold = rng.random((40, 6)) < 0.2
        predicted = rng.random((40, 6)) < 0.3
        p, r, f, s = precision_recall_fscore_support(gold, predicted, zero_division=0)
        ours = per_label(gold, predicted, [str(k) for k in range(6)])
        np.testing.assert_allclose([ours[str(k)]["precision"] for k in range(6)], p)
        np.testing.assert_allclose([ours[str(k)]["recall"] for k in range(6)], r)
        np.testing.assert_allclose([ours[str(k)]["f1"] for k in range(6)], f)
        assert [ours[str(k)]["support"] for k in range(6)] == s.tolist()
        assert micro_f1(gold, predicted) == pytest.approx(f1_score(gold, predicted, average="micro", zero_division=0))
        assert macro_f1(gold, predicted) == pytest.approx(f1_score(gold, predicted, average="macro", zero_division=0))


def test_summary_is_what_dvc_metrics_reads():
    result = summary(GOLD, PRED, LABELS)
    assert set(result) == {"a", "b", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "macro_f1_present",
                           "sentences"}
    assert set(result["a"]) == {"precision", "recall", "f1", "support"}
    assert result["micro_precision"] == result["micro_recall"] == pytest.approx(0.6)
    assert result["sentences"] == 5
    with pytest.raises(ValueError):
        summary(GOLD, PRED[:, :1], LABELS)


def test_pr_curve_by_hand():
    gold, scores = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.4, 0.1])
    points = pr_curve(gold, scores)
    assert points[0] == {"threshold": None, "recall": 0.0, "precision": 1.0}
    assert [p["threshold"] for p in points[1:]] == [0.9, 0.8, 0.4, 0.1]
    assert [p["recall"] for p in points[1:]] == [0.5, 0.5, 1.0, 1.0]
    assert [p["precision"] for p in points[1:]] == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert average_precision(gold, scores) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert average_precision(gold, scores) == pytest.approx(average_precision_score(gold, scores))


def test_pr_curve_agrees_with_sklearn_including_ties():
    rng = np.random.default_rng(1)
    for _ in range(10):
        gold = rng.random(30) < 0.3
        gold[0] = True
        scores = np.round(rng.random(30), 1)  # many tied scores
        points = pr_curve(gold, scores)[1:]
        precision, recall, thresholds = precision_recall_curve(gold, scores)
        # sklearn: increasing thresholds, then the (recall 0, precision 1) end point
        np.testing.assert_allclose([p["threshold"] for p in points], thresholds[::-1])
        np.testing.assert_allclose([p["precision"] for p in points], precision[:-1][::-1])
        np.testing.assert_allclose([p["recall"] for p in points], recall[:-1][::-1])
        assert average_precision(gold, scores) == pytest.approx(average_precision_score(gold, scores))


def test_pr_curve_without_positives_is_empty():
    assert pr_curve(np.zeros(3), np.array([0.1, 0.5, 0.9])) == []
    assert average_precision(np.zeros(3), np.array([0.1, 0.5, 0.9])) == 0.0
