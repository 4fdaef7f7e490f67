"""Writing a classifier directory: the one format `policytag tag`, `serve-ml` and the evaluation load, whichever
stage trained the model (the classifier of policytag/training/train.py, the student of policytag/training/distill.py).

A classifier directory holds the checkpoint (safetensors), the tokenizer, thresholds.json (with the int8 export's
own thresholds when calibration sentences are given), training_params.json (with the weights' version), the stage's
other JSON facts and a model card; it is built beside its destination and renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.model import Classifier, SentenceTagger, save_classifier, weights_version, write_thresholds
from policytag.records import atomic_directory
from policytag.training.artifacts import write_json


def write_classifier(out_dir: str | os.PathLike, model: SentenceTagger, tokenizer, thresholds: np.ndarray,
                     training: dict, card: Callable[[dict], str], facts: Mapping[str, dict] | None = None,
                     calibration_texts: Sequence[str] = ()) -> Path:
    """Write the classifier directory atomically. `training` becomes training_params.json (with `model_version`
    added), each entry of `facts` NAME.json, and `card(training)` README.md. With `calibration_texts`, the int8
    export is made and its thresholds matched on them to the fp32 decisions (policytag/training/int8_thresholds.py)."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        save_classifier(tmp, model, tokenizer, thresholds)
        if calibration_texts:
            from policytag.training.int8_thresholds import int8_thresholds

            scores = Classifier(model, tokenizer, list(LABEL_NAMES), thresholds, "calibration",
                                next(model.parameters()).device).predict_proba(calibration_texts)
            write_thresholds(tmp, LABEL_NAMES, thresholds, int8_thresholds(tmp, scores, calibration_texts, thresholds))
        training = {**training, "model_version": weights_version(tmp)}
        write_json(tmp / "training_params.json", training)
        for name, payload in (facts or {}).items():
            write_json(tmp / f"{name}.json", payload)
        (tmp / "README.md").write_text(card(training), encoding="utf-8")
    return out_dir
