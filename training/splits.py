"""Iterative stratification for multi-label data (Sechidis et al. 2011, as implemented by iterative-stratification),
so that rare labels land in every split and fold."""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit


def train_validation_test(labels: np.ndarray, validation: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split; `validation` and `test` are fractions of all rows."""
    rows = np.arange(len(labels))
    outer = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=validation + test, random_state=seed)
    train, rest = next(outer.split(rows, labels))
    inner = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test / (validation + test), random_state=seed)
    val_part, test_part = next(inner.split(rest, labels[rest]))
    return {"train": np.sort(train), "validation": np.sort(rest[val_part]), "test": np.sort(rest[test_part])}


def k_folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) for each of `folds` stratified folds."""
    splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.arange(len(labels)), labels)]
