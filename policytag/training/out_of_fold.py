"""The one reader of the crossval stage's out-of-fold predictions (models/crossval/<run>.jsonl, written by
policytag/training/crossval.py): one line per sentence with its `id`, `fold`, gold `labels` (names), and per label its
out-of-fold score (`probabilities`) and the cross-fitted threshold it is decided at (`thresholds`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.records import JsonlError, read_jsonl


class OutOfFoldError(ValueError):
    """Out-of-fold predictions that are missing or malformed; the message says to rerun the crossval stage."""


@dataclass
class OutOfFold:
    """A crossval run's predictions; matrices are [rows, labels] in schema order, rows in the file's order."""

    path: Path
    records: list[dict]
    ids: list[str]
    gold: np.ndarray
    scores: np.ndarray
    thresholds: np.ndarray
    folds: np.ndarray

    def run_facts(self) -> dict | None:
        """<run>.params.json beside the predictions (kind, params, folds, seed, dataset version), if there."""
        path = self.path.with_name(self.path.name[: -len(".jsonl")] + ".params.json")
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_out_of_fold(path: str | Path) -> OutOfFold:
    """The predictions of models/crossval/<run>.jsonl; a missing, empty or malformed file is an OutOfFoldError."""
    path = Path(path)
    if not path.exists():
        raise OutOfFoldError(f"{path}: no out-of-fold predictions; run `dvc repro crossval` first")
    try:
        records = list(read_jsonl(path))
    except (JsonlError, OSError) as error:
        raise OutOfFoldError(f"{error}; rerun `dvc repro crossval`") from None
    if not records:
        raise OutOfFoldError(f"{path} is empty; rerun `dvc repro crossval`")
    return out_of_fold(records, path)


def out_of_fold(records: list[dict], path: str | Path = "<records>") -> OutOfFold:
    """Out-of-fold records (as read from the file, or as policytag.training.crossval.cross_validate returns them) as
    matrices."""
    path = Path(path)
    try:
        ids = [r["id"] for r in records]
        gold = np.array([[name in r["labels"] for name in LABEL_NAMES] for r in records], dtype=np.float64)
        scores = np.array([[r["probabilities"][name] for name in LABEL_NAMES] for r in records], dtype=np.float64)
        thresholds = np.array([[r["thresholds"][name] for name in LABEL_NAMES] for r in records], dtype=np.float64)
        folds = np.array([int(r["fold"]) for r in records])
    except (KeyError, TypeError, ValueError) as error:
        raise OutOfFoldError(f"{path}: a line lacks {error} (id, fold, labels, probabilities and thresholds per "
                             "label expected); rerun `dvc repro crossval`") from None
    return OutOfFold(path, records, ids, gold, scores, thresholds, folds)
