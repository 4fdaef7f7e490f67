"""The classifier's decision thresholds, from the cross-validation of its own recipe.

A threshold tuned on a few dozen validation sentences follows their quirks; tuned on the out-of-fold scores of
every training document (the crossval stage: grouped folds, test documents never included) it rests on hundreds of
sentences scored by models that had not seen their documents, which is the situation a new article is in. The
crossval run must have used exactly the train stage's parameters, or its thresholds would belong to another model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.training.out_of_fold import OutOfFoldError, read_out_of_fold
from policytag.training.thresholds import MIN_POSITIVES, out_of_fold_thresholds


class ThresholdSourceError(ValueError):
    """Out-of-fold scores that cannot give the classifier's thresholds; the message says what to rerun."""


def thresholds_from_crossval(crossval_dir: Path, run: str, params: dict, step: float,
                             min_positives: int = MIN_POSITIVES) -> tuple[np.ndarray, dict]:
    """Thresholds (schema order) and their stability per label, from models/crossval/<run>.jsonl; the run's
    recorded params must equal `params` (the train stage's, as asdict(TrainParams))."""
    facts_path = crossval_dir / f"{run}.params.json"
    try:
        facts = json.loads(facts_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ThresholdSourceError(f"{facts_path}: cannot read ({error}); run `dvc repro crossval`") from None
    ran = facts.get("params", {})
    differ = sorted(key for key in set(ran) | set(params) if ran.get(key) != params.get(key))
    if differ:
        shown = ", ".join(f"{key}: crossval {ran.get(key)!r}, train {params.get(key)!r}" for key in differ)
        raise ThresholdSourceError(f"{facts_path}: the cross-validated recipe differs from train's ({shown}); "
                                   f"make params.yaml crossval.models entry {run!r} use the train params, then "
                                   "`dvc repro`")
    try:
        predictions = read_out_of_fold(crossval_dir / f"{run}.jsonl")
    except OutOfFoldError as error:
        raise ThresholdSourceError(str(error)) from None
    thresholds, stability = out_of_fold_thresholds(predictions.gold, predictions.scores, predictions.folds, step,
                                                   min_positives)
    return thresholds, {LABEL_NAMES[k]: facts for k, facts in stability.items()}
