"""The dataset stage's output as the other stages read it: the DatasetDict, and a split as texts and a gold matrix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from policytag.labels import LABEL_NAMES


class DatasetError(RuntimeError):
    """A dataset directory that cannot be read; the message says how to build it."""


def load_dataset_dict(path: str | os.PathLike):
    """The DatasetDict the dataset stage saved at `path` (data/dataset)."""
    from datasets import load_from_disk

    path = Path(path)
    if not (path / "dataset_dict.json").is_file():
        raise DatasetError(f"{path} holds no dataset (dataset_dict.json expected); build it with "
                           "`dvc repro dataset` (python -m policytag.training.dataset)")
    return load_from_disk(str(path))


def split_arrays(split) -> tuple[list[str], np.ndarray]:
    """Texts and the multi-hot gold matrix [rows, labels] (schema order, float32) of a dataset split (empty too)."""
    texts = list(split["text"]) if len(split) else []
    gold = np.asarray(split["labels"], dtype=np.float32).reshape(len(texts), len(LABEL_NAMES))
    return texts, gold
