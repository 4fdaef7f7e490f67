"""The `crossval` stage: k-fold cross-validation over every labelled sentence, for every model kind.

With ~100 sentences and three or four positives for some labels, one test split says little; cross-validation
scores every sentence exactly once, by a model that never saw it. Train, validation and test splits are pooled,
cut into `evaluate.folds` folds by iterative stratification (training/splits.py, `evaluate.seed`); in each fold a
validation part (`crossval.validation_fraction` of the fold's training rows, stratified too) is carved off for
early stopping and threshold tuning, the model is fitted on the rest, and the held-out fold is scored.

Model kinds (`crossval.models`): `tfidf` and `zeroshot` (training/baseline.py, params `baseline.<kind>`) and
`transformer` (training.train.fit, params `train`, imported only when asked for). An entry may also be a variant,
`{name: transformer_random_head, kind: transformer, params: {head_init: random}}`: the kind's params with those
overrides, so that an ablation is measured on the same folds. Each entry writes models/crossval/<name>.jsonl: one
line per sentence, in dataset order, with its fold, out-of-fold scores and the fold's thresholds per label, and its
gold labels (names); and <name>.params.json, the kind and the params it was fitted with. The evaluate stage turns
these into metrics.
`python -m training.crossval --dataset data/dataset --backbone models/backbone --out models/crossval`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.records import atomic_directory, write_jsonl
from training.baseline import (
    DEFAULT_BACKBONE,
    TFIDF_DEFAULTS,
    ZEROSHOT_DEFAULTS,
    BaselineError,
    Predictor,
    fit_tfidf,
    fit_zeroshot,
    load_dataset_dict,
    load_params,
    settings_from,
    split_arrays,
)
from training.splits import k_folds

DEFAULTS = {"models": ["tfidf", "zeroshot", "transformer"], "validation_fraction": 0.15}


@dataclass
class TransformerPredictor:
    """training.train.fit's result seen as a Predictor: scores in schema order, the thresholds it tuned."""

    model: object
    thresholds: np.ndarray
    history: dict = field(default_factory=dict)
    labels: tuple[str, ...] = LABEL_NAMES

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(list(texts)))


def fit_transformer(train, validation, params: dict | None = None, backbone_dir: str | os.PathLike = DEFAULT_BACKBONE,
                    **_) -> TransformerPredictor:
    """Fine-tune the transformer (training.train.fit: early stopping and thresholds on `validation`)."""
    from training.train import fit  # torch training; only when the transformer is cross-validated

    model, thresholds, history = fit(train, validation, dict(params or {}), backbone_dir)
    if not hasattr(model, "predict_proba"):  # a SentenceTagger: score it the way the tagger does
        from transformers import AutoTokenizer

        from policytag.model import Classifier

        tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
        model = Classifier(model, tokenizer, list(model.config.label_names), np.asarray(thresholds), "crossval",
                           next(model.parameters()).device)
    labels = tuple(getattr(model, "labels", None) or LABEL_NAMES)
    return TransformerPredictor(model, np.asarray(thresholds, dtype=np.float64), history or {}, labels)


FITTERS: dict[str, Callable[..., Predictor]] = {"tfidf": fit_tfidf, "zeroshot": fit_zeroshot,
                                                "transformer": fit_transformer}


def model_params(params: dict, kind: str) -> dict:
    """The params.yaml section a kind is fitted with."""
    if kind == "transformer":
        return dict(params.get("train") or {})
    return dict((params.get("baseline") or {}).get(kind) or {})


@dataclass(frozen=True)
class Run:
    """One entry of crossval.models: a name for its output files, a model kind, the params it is fitted with."""

    name: str
    kind: str
    params: dict


def runs_from(params: dict) -> list[Run]:
    """The entries of params.yaml crossval.models, with each kind's params (and a variant's overrides)."""
    entries = (params.get("crossval") or {}).get("models", DEFAULTS["models"])
    runs = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"name": entry, "kind": entry}
        if not isinstance(entry, dict) or "kind" not in entry:
            raise BaselineError(f"params.yaml crossval.models: {entry!r} is neither a kind nor "
                                "{name: ..., kind: ..., params: {...}}")
        if entry["kind"] not in FITTERS:
            raise BaselineError(f"params.yaml crossval.models: unknown kind {entry['kind']!r}; "
                                f"known: {', '.join(FITTERS)}")
        name = str(entry.get("name", entry["kind"]))
        if not name.replace("_", "").replace("-", "").isalnum():
            raise BaselineError(f"params.yaml crossval.models: name {name!r} must be letters, digits, - or _")
        runs.append(Run(name, entry["kind"], {**model_params(params, entry["kind"]), **(entry.get("params") or {})}))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise BaselineError(f"params.yaml crossval.models: names must be unique, got {names}")
    return runs


def effective_params(kind: str, params: dict) -> dict:
    """The params a kind is fitted with once its defaults are filled in (what <name>.params.json records)."""
    if kind == "tfidf":
        return settings_from(params, TFIDF_DEFAULTS, "baseline.tfidf")
    if kind == "zeroshot":
        return settings_from(params, ZEROSHOT_DEFAULTS, "baseline.zeroshot")
    from dataclasses import asdict

    from training.train import TrainParams

    return asdict(TrainParams.from_dict(params))


def carve_validation(gold: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows), positions into `gold`, stratified by label."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    if not 0 < fraction < 1:
        raise BaselineError(f"params.yaml crossval.validation_fraction must lie between 0 and 1, not {fraction}")
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    fit_rows, validation_rows = next(splitter.split(np.arange(len(gold)), gold))
    return np.sort(fit_rows), np.sort(validation_rows)


def in_schema_order(scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Columns of `scores` (in `labels` order) rearranged to policytag.labels order."""
    if list(labels) == list(LABEL_NAMES):
        return np.asarray(scores)
    missing = sorted(set(LABEL_NAMES) - set(labels))
    if missing:
        raise BaselineError(f"model has no output for label(s) {', '.join(missing)}")
    return np.asarray(scores)[:, [list(labels).index(name) for name in LABEL_NAMES]]


def cross_validate(dataset, kind: str, folds: int, seed: int, validation_fraction: float, params: dict,
                   backbone_dir: str | os.PathLike = DEFAULT_BACKBONE,
                   progress: Callable[[str], None] = lambda message: None) -> list[dict]:
    """Out-of-fold records for every row of `dataset` (a datasets.Dataset), in its order."""
    texts, gold = split_arrays(dataset)
    ids = list(dataset["id"])
    records: list[dict | None] = [None] * len(ids)
    for fold, (train_rows, held_out) in enumerate(k_folds(gold, folds, seed)):
        fit_part, validation_part = carve_validation(gold[train_rows], validation_fraction, seed + fold)
        start = time.perf_counter()
        predictor = FITTERS[kind](dataset.select(train_rows[fit_part]), dataset.select(train_rows[validation_part]),
                                  params, backbone_dir=backbone_dir)
        scores = in_schema_order(predictor.predict_proba([texts[i] for i in held_out]), predictor.labels)
        thresholds = in_schema_order(np.asarray(predictor.thresholds)[None, :], predictor.labels)[0]
        for row, row_scores in zip(held_out, scores):
            records[row] = {
                "id": ids[row], "fold": fold,
                "labels": [name for name, on in zip(LABEL_NAMES, gold[row]) if on],
                "probabilities": {name: round(float(p), 6) for name, p in zip(LABEL_NAMES, row_scores)},
                "thresholds": {name: round(float(t), 6) for name, t in zip(LABEL_NAMES, thresholds)},
            }
        progress(f"{kind}: fold {fold + 1}/{folds}: fitted on {len(fit_part)}, tuned on {len(validation_part)}, "
                 f"scored {len(held_out)} ({time.perf_counter() - start:.1f} s)")
    if any(record is None for record in records):  # k_folds covers every row; this guards against a change there
        raise BaselineError("cross-validation left rows unscored")
    return records


def all_rows(dataset_dict):
    """Every labelled row: the dataset's splits concatenated (train, validation, test)."""
    from datasets import concatenate_datasets

    splits = [dataset_dict[name] for name in ("train", "validation", "test") if name in dataset_dict]
    return concatenate_datasets(splits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, default=Path(DEFAULT_BACKBONE))
    parser.add_argument("--out", type=Path, default=Path("models/crossval"))
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        settings = {**DEFAULTS, **(params.get("crossval") or {})}
        evaluate = params.get("evaluate") or {}
        folds, seed = int(evaluate.get("folds", 5)), int(evaluate.get("seed", 13))
        runs = runs_from(params)
        dataset = all_rows(load_dataset_dict(args.dataset))
        with atomic_directory(args.out) as build:
            for run in runs:
                records = cross_validate(dataset, run.kind, folds, seed, float(settings["validation_fraction"]),
                                         run.params, args.backbone,
                                         progress=lambda message: print(f"crossval: {run.name}: {message}",
                                                                        file=sys.stderr))
                write_jsonl(build / f"{run.name}.jsonl", records)
                run_facts = {"name": run.name, "kind": run.kind, "params": effective_params(run.kind, run.params),
                             "folds": folds, "seed": seed,
                             "validation_fraction": float(settings["validation_fraction"])}
                (build / f"{run.name}.params.json").write_text(json.dumps(run_facts, indent=1) + "\n",
                                                               encoding="utf-8")
    except (BaselineError, OSError, ValueError) as error:
        print(f"crossval: error: {error}", file=sys.stderr)
        return 1
    print(f"crossval: {', '.join(run.name for run in runs)} x {folds} folds over {len(dataset)} sentences "
          f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
