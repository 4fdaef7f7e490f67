"""The int8 model's own thresholds, so that the default CPU path decides as the fp32 classifier does.

Dynamic int8 quantisation shifts every score a little, and a shift of 0.01 near a threshold flips decisions; the
fp32 thresholds applied to int8 scores cost several points of macro-F1 on unseen text. The int8 export of the
classifier scores a sample of the training sentences, and each label's int8 threshold is set so that int8 predicts
it for as many of them as fp32 does at its own threshold (policytag/training/thresholds.py, matched_thresholds). No
label is used, so every training sentence can serve; the evaluation puts int8 and fp32 side by side on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.training.thresholds import matched_thresholds


def sample_texts(texts: Sequence[str], size: int, seed: int) -> list[str]:
    texts = list(texts)
    if len(texts) <= size:
        return texts
    rows = np.sort(np.random.default_rng(seed).permutation(len(texts))[:size])
    return [texts[i] for i in rows]


def int8_thresholds(model_dir: Path, fp32_scores: np.ndarray, texts: Sequence[str],
                    thresholds: np.ndarray) -> np.ndarray:
    """Thresholds for the int8 export of the classifier in `model_dir` (exported once, cached by model version),
    matched on `texts` to the fp32 decisions that `fp32_scores` give at `thresholds`."""
    from policytag.fast_scorer import OnnxScorer

    int8_scores = OnnxScorer(model_dir).predict_proba(list(texts))
    return matched_thresholds(fp32_scores, np.asarray(thresholds), int8_scores)
