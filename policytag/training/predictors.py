"""What every model kind of the baseline and crossval stages gives back (`Predictor`), and how a baseline's model
directory is written and read: config.json (kind, labels, settings, facts), arrays as safetensors, thresholds.json in
the format of policytag.model (its reader and writer), and a model card (policytag/training/model_cards.py). No
pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.scoring import Scorer
from policytag.training.artifacts import write_json
from policytag.training.params import ParamsError, section_params
from policytag.training.thresholds import apply_thresholds, f1_at_thresholds

CONFIG_FILE, CARD_FILE = "config.json", "README.md"
DEFAULT_BACKBONE = "models/backbone"


class BaselineError(RuntimeError):
    """A baseline model that cannot be fitted or loaded; the message names the file and what to do."""


Predictor = Scorer
"""What every model kind of the baseline and crossval stages gives back: a policytag.model.Scorer (scores in schema
order, one threshold per label)."""


def kind_settings(cls, params: dict | None) -> dict:
    """A kind's settings (params.yaml `baseline.<kind>`, or a crossval variant's) checked by its params class and
    with its defaults filled in, as the plain mapping config.json records."""
    from dataclasses import asdict

    try:
        return asdict(section_params(cls, params))
    except ParamsError as error:
        raise BaselineError(str(error)) from None


def stored_thresholds(thresholds) -> np.ndarray:
    """Thresholds as thresholds.json holds them (6 decimals), so a loaded model decides exactly as the fitted one."""
    return np.round(np.asarray(thresholds, dtype=np.float64), 6)


def predict_labels(predictor: Predictor, texts: Sequence[str]) -> list[list[str]]:
    """Label names whose score reaches the label's threshold, per text."""
    chosen = apply_thresholds(predictor.predict_proba(texts), predictor.thresholds)
    return [[label for label, on in zip(predictor.labels, row) if on] for row in chosen]


def card_facts(gold: np.ndarray, val_gold: np.ndarray, val_scores: np.ndarray, thresholds: np.ndarray) -> dict:
    """What the card reports: positives per label in train and validation, validation F1 at the tuned thresholds."""
    return {
        "train_sentences": int(len(gold)), "validation_sentences": int(len(val_gold)),
        "labels": {label: {"train_positives": int(gold[:, j].sum()), "validation_positives": int(val_gold[:, j].sum()),
                           "threshold": round(float(thresholds[j]), 6),
                           "validation_f1": _validation_f1(val_gold[:, j], val_scores[:, j], thresholds[j])}
                   for j, label in enumerate(LABEL_NAMES)},
    }


def _validation_f1(gold: np.ndarray, scores: np.ndarray, threshold: float) -> float | None:
    return round(float(f1_at_thresholds(gold, scores, [threshold])[0]), 4) if gold.any() else None


def write_model_files(directory: Path, config: dict, labels: Sequence[str], thresholds: np.ndarray,
                      card: str) -> None:
    """config.json, thresholds.json (policytag.model's writer) and README.md of a baseline model directory."""
    from policytag.model import write_thresholds

    write_json(directory / CONFIG_FILE, config)
    write_thresholds(directory, list(labels), thresholds)
    (directory / CARD_FILE).write_text(card, encoding="utf-8")


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path} is missing: not a baseline model directory; build it with "
                            "`dvc repro baseline` (python -m policytag.training.baseline)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: malformed JSON ({error}); rebuild with `dvc repro baseline`") from None


def read_config(directory: Path, kind: str | None) -> dict:
    config = read_json(directory / CONFIG_FILE)
    if not isinstance(config, dict) or "kind" not in config or "labels" not in config:
        raise BaselineError(f"{directory / CONFIG_FILE}: not a baseline config (kind and labels expected)")
    if kind is not None and config["kind"] != kind:
        raise BaselineError(f"{directory} holds a {config['kind']!r} model, not {kind!r}")
    if list(config["labels"]) != list(LABEL_NAMES):
        raise BaselineError(f"{directory}: labels {config['labels']} differ from the schema's {list(LABEL_NAMES)}; "
                            "rebuild with `dvc repro baseline`")
    return config


def read_safetensors(path: Path, load_file) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise BaselineError(f"{path} is missing; rebuild with `dvc repro baseline`")
    return load_file(str(path))


def read_model_thresholds(directory: Path, labels: list[str]) -> tuple[list[str], np.ndarray]:
    """Labels and thresholds of thresholds.json (policytag.model's reader), as the float64 values the file holds
    (6 decimals: a loaded model decides exactly as the fitted one did)."""
    from policytag.model import THRESHOLDS_FILE, ClassifierError, read_thresholds

    try:
        names, values = read_thresholds(directory)
    except ClassifierError as error:
        raise BaselineError(f"{directory / THRESHOLDS_FILE}: cannot be read ({error}); rebuild with "
                            "`dvc repro baseline`") from None
    if names != list(labels):
        raise BaselineError(f"{directory / THRESHOLDS_FILE}: labels do not match config.json")
    return names, np.array([round(float(value), 6) for value in values], dtype=np.float64)
