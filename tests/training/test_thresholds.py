"""Thresholds that transfer: out-of-fold tuning with its stability and fallback, cross-fitting, and the int8
thresholds matched to fp32's decisions."""

import numpy as np
import pytest

from policytag.training.crossval import cross_fitted_thresholds
from policytag.training.thresholds import FALLBACK, matched_thresholds, out_of_fold_thresholds, tune_thresholds


def scored_rows(rows: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    gold = (rng.random((rows, 2)) < [0.3, 0.01]).astype(float)  # the second label is rare
    scores = np.clip(gold * 0.5 + rng.normal(0.3, 0.15, gold.shape), 0, 1)
    return gold, scores, np.arange(rows) % 5


def test_out_of_fold_thresholds_report_spread_and_fall_back_on_rare_labels():
    gold, scores, folds = scored_rows()
    thresholds, stability = out_of_fold_thresholds(gold, scores, folds, min_positives=10)
    assert 0.4 < thresholds[0] < 0.8
    assert stability[0]["positives"] == int(gold[:, 0].sum()) and not stability[0]["fallback"]
    assert len(stability[0]["fold_thresholds"]) == 5 and stability[0]["fold_std"] < 0.1
    assert gold[:, 1].sum() < 10 and stability[1]["fallback"] and thresholds[1] == pytest.approx(FALLBACK)


def test_cross_fitted_thresholds_never_use_a_folds_own_labels():
    gold, scores, folds = scored_rows(seed=1)
    thresholds = cross_fitted_thresholds(gold, scores, folds, min_positives=1)
    for fold in range(5):
        others = folds != fold
        expected = tune_thresholds(gold[others], scores[others])
        np.testing.assert_allclose(thresholds[folds == fold], np.repeat(expected[None], (folds == fold).sum(), 0))
    changed = gold.copy()
    changed[folds == 2] = 1 - changed[folds == 2]  # fold 2's labels do not move fold 2's thresholds
    np.testing.assert_allclose(cross_fitted_thresholds(changed, scores, folds, min_positives=1)[folds == 2],
                               thresholds[folds == 2])


def test_matched_thresholds_make_a_shifted_scorer_decide_like_the_reference():
    rng = np.random.default_rng(2)
    reference = rng.random((500, 3))
    other = np.clip(reference - 0.03 + rng.normal(0, 0.002, reference.shape), 0, 1)  # int8-like shift
    thresholds = np.array([0.5, 0.8, 2.0], dtype=np.float32)  # the last label is never predicted
    matched = matched_thresholds(reference, thresholds, other)
    for k in range(2):
        assert (other[:, k] >= matched[k]).sum() == (reference[:, k] >= thresholds[k]).sum()
        assert matched[k] < thresholds[k]
    agreement_before = ((other >= thresholds) == (reference >= thresholds)).mean()
    agreement_after = ((other >= matched) == (reference >= thresholds)).mean()
    assert agreement_after > agreement_before and matched[2] == pytest.approx(2.0)
