"""The `crossval` stage: grouped k-fold cross-validation of every model kind, on documents it has never seen.

The question that matters is how a model does on documents it never saw, so folds are cut by document group
(policytag/training/splits.py): no document, and no translation of it, is on both sides of a fold. The rows are the
train and validation documents with their translations; test documents are left for the test split alone, so the final
classifier's thresholds can come from these out-of-fold scores without ever seeing a test label. Each fold's model
is fitted on the other folds (translations included) for a fixed number of epochs and scores its fold's original
sentences. Thresholds are cross-fitted: a fold's sentences are decided at thresholds tuned on the other folds'
out-of-fold scores (policytag/training/thresholds.py), so no sentence's own label sets the threshold it is judged at.
Folds and seed are `crossval.folds` and `crossval.seed`; with the transformer, the frozen bottom layers' output is
computed once and shared by every fold.

Model kinds (`crossval.models`): `tfidf` and `zeroshot` (policytag/training/tfidf.py and
policytag/training/zeroshot.py, params `baseline.<kind>`) and `transformer` (policytag.training.fit.fit, params
`train`, imported only when asked for). An entry may also be a variant, `{name: transformer_random_head, kind:
transformer, params: {head_init: random}}`: the kind's params with those overrides, so that an ablation is measured on
the same folds. Each entry writes models/crossval/<name>.jsonl: one line per sentence, in dataset order, with its
fold, out-of-fold scores and the fold's thresholds per label, and its gold labels (names); <name>.params.json, the
kind and the params it was fitted with; and for a transformer, <name>.folds/fold-<k>.safetensors, each fold model's
trained weights (the train stage's `final_model: fold_average` averages them: policytag/training/fold_average.py).
The evaluate stage turns these into metrics.
`python -m policytag.training.crossval --dataset data/dataset --backbone models/backbone --out models/crossval`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.records import atomic_directory, write_jsonl
from policytag.training.artifacts import directory_hash, write_json
from policytag.training.data import DatasetError, load_dataset_dict, split_arrays
from policytag.training.encoder import add_embeddings_option, use_embeddings
from policytag.training.params import (
    CrossvalParams,
    TfidfParams,
    TrainParams,
    ZeroshotParams,
    read_params,
    section_params,
)
from policytag.training.predictors import DEFAULT_BACKBONE, BaselineError, Predictor, kind_settings
from policytag.training.splits import k_folds
from policytag.training.tfidf import fit_tfidf
from policytag.training.thresholds import DEFAULT_STEP, MIN_POSITIVES, tune_thresholds
from policytag.training.zeroshot import fit_zeroshot


@dataclass
class TransformerPredictor:
    """policytag.training.fit.fit's result seen as a Predictor: scores in schema order, the thresholds it tuned."""

    model: object
    thresholds: np.ndarray
    history: dict = field(default_factory=dict)
    labels: tuple[str, ...] = LABEL_NAMES

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(list(texts)))

    @property
    def tagger(self):
        """The fitted SentenceTagger (whichever scorer wraps it)."""
        return self.model.model


class CachedTopScorer:
    """A fitted transformer whose bottom layers are the frozen pretrained ones, scoring through the cache of their
    output that the folds share (the same scores as the whole model, without running the bottom again)."""

    def __init__(self, model, tokenizer, params: TrainParams, state_cache: dict):
        from policytag.training import frozen_layers, precision

        self.model, self.tokenizer, self.params, self.state_cache = model, tokenizer, params, state_cache
        self.frozen = frozen_layers.frozen_count(model, params.trainable_layers)
        self.mixed_precision = precision.resolve(params.mixed_precision, next(model.parameters()).device)
        self.labels = tuple(model.config.label_names)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from policytag.training import frozen_layers

        states = frozen_layers.FrozenStates(self.model, self.tokenizer, list(texts), self.frozen,
                                            self.params.max_length, self.params.eval_batch_size, self.state_cache,
                                            self.mixed_precision)
        return frozen_layers.cached_scores(self.model, states, self.frozen, self.params.eval_batch_size)


def fit_transformer(train, validation, params: dict | None = None, backbone_dir: str | os.PathLike = DEFAULT_BACKBONE,
                    state_cache: dict | None = None, **_) -> TransformerPredictor:
    """Fine-tune the transformer (policytag.training.fit.fit: early stopping and thresholds on `validation`)."""
    from policytag.training.fit import fit  # torch training; only when the transformer is cross-validated

    model, thresholds, history = fit(train, validation, dict(params or {}), backbone_dir, state_cache=state_cache)
    if not hasattr(model, "predict_proba"):  # a SentenceTagger: score it the way the tagger does
        from transformers import AutoTokenizer

        from policytag.model import Classifier
        from policytag.training import frozen_layers

        tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
        recipe = TrainParams.from_dict(dict(params or {}))
        if state_cache is not None and frozen_layers.frozen_count(model, recipe.trainable_layers):
            model = CachedTopScorer(model, tokenizer, recipe, state_cache)
        else:
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
    entries = section_params(CrossvalParams, params.get("crossval")).models
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
        return kind_settings(TfidfParams, params)
    if kind == "zeroshot":
        return kind_settings(ZeroshotParams, params)
    return asdict(TrainParams.from_dict(params))


def in_schema_order(scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Columns of `scores` (in `labels` order) rearranged to policytag.labels order."""
    if list(labels) == list(LABEL_NAMES):
        return np.asarray(scores)
    missing = sorted(set(LABEL_NAMES) - set(labels))
    if missing:
        raise BaselineError(f"model has no output for label(s) {', '.join(missing)}")
    return np.asarray(scores)[:, [list(labels).index(name) for name in LABEL_NAMES]]


def cross_fitted_thresholds(gold: np.ndarray, scores: np.ndarray, folds: np.ndarray, step: float = DEFAULT_STEP,
                            min_positives: int = MIN_POSITIVES) -> np.ndarray:
    """Thresholds [rows, labels] for out-of-fold rows: each fold's rows are decided at thresholds tuned on the other
    folds' out-of-fold scores, so that no sentence's own label sets the threshold it is judged at."""
    thresholds = np.empty_like(np.asarray(scores, dtype=np.float64))
    for fold in np.unique(folds):
        others = folds != fold
        thresholds[folds == fold] = tune_thresholds(gold[others], scores[others], step, min_positives=min_positives)
    return thresholds


def cross_validate(dataset, kind: str, folds: int, seed: int, params: dict,
                   backbone_dir: str | os.PathLike = DEFAULT_BACKBONE,
                   progress: Callable[[str], None] = lambda message: None,
                   state_cache: dict | None = None,
                   on_fold: Callable[[int, Predictor, int], None] | None = None) -> list[dict]:
    """Out-of-fold records for every original sentence of `dataset` (a datasets.Dataset with the dataset stage's
    columns), in its order; translations only ever train. Folds are grouped by document (policytag/training/splits.py).
    `state_cache` (transformer only) holds the frozen layers' output across calls, e.g. several recipes.
    `on_fold(fold, predictor, training_rows)` sees each fold's fitted model (the stage keeps the transformer's)."""
    from policytag.training.dataset import row_facts

    texts, gold = split_arrays(dataset)
    ids = list(dataset["id"])
    fold_of = np.full(len(ids), -1)
    scores = np.zeros(gold.shape)
    extra = {"state_cache": {} if state_cache is None else state_cache} if kind == "transformer" else {}
    for fold, (train_rows, held_out) in enumerate(k_folds(row_facts(dataset), folds, seed)):
        start = time.perf_counter()
        predictor = FITTERS[kind](dataset.select(train_rows), dataset.select([]), params, backbone_dir=backbone_dir,
                                  **extra)
        scores[held_out] = in_schema_order(predictor.predict_proba([texts[i] for i in held_out]), predictor.labels)
        fold_of[held_out] = fold
        if on_fold is not None:
            on_fold(fold, predictor, len(train_rows))
        progress(f"{kind}: fold {fold + 1}/{folds}: fitted on {len(train_rows)}, scored {len(held_out)} "
                 f"({time.perf_counter() - start:.1f} s)")
    scored = np.flatnonzero(fold_of >= 0)
    thresholds = cross_fitted_thresholds(gold[scored], scores[scored], fold_of[scored])
    return [{
        "id": ids[row], "fold": int(fold_of[row]),
        "labels": [name for name, on in zip(LABEL_NAMES, gold[row]) if on],
        "probabilities": {name: round(float(p), 6) for name, p in zip(LABEL_NAMES, scores[row])},
        "thresholds": {name: round(float(t), 6) for name, t in zip(LABEL_NAMES, row_thresholds)},
    } for row, row_thresholds in zip(scored, thresholds)]


def crossval_rows(dataset_dict):
    """The rows cross-validation runs over: every document outside the test split (train and validation documents
    with their translations); test documents are left for the test split alone."""
    from datasets import concatenate_datasets

    test_groups = set(dataset_dict["test"]["group"]) if "test" in dataset_dict else set()
    parts = [dataset_dict[name] for name in ("train", "validation", "held_out_translations") if name in dataset_dict]
    rows = concatenate_datasets(parts)
    return rows.filter(lambda group: group not in test_groups, input_columns="group", keep_in_memory=True)


def all_rows(dataset_dict):
    """Every labelled original row: the train, validation and test splits concatenated."""
    from datasets import concatenate_datasets

    return concatenate_datasets([dataset_dict[name] for name in ("train", "validation", "test")
                                 if name in dataset_dict])


def fold_saver(build: Path, run: Run, dataset_version: str) -> Callable[[int, Predictor, int], None] | None:
    """For a transformer run, what writes each fold model's trained weights to <run>.folds/ (the train stage's
    `final_model: fold_average` averages them, policytag/training/fold_average.py); None for the baselines."""
    if run.kind != "transformer":
        return None
    from policytag.training.fold_average import folds_dir, save_fold_weights

    def save(fold: int, predictor: Predictor, training_rows: int) -> None:
        save_fold_weights(folds_dir(build, run.name), fold, predictor.tagger,
                          {"fold": fold, "training_rows": training_rows, "dataset_version": dataset_version,
                           "epochs": predictor.history.get("epochs", [])})

    return save


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, default=Path(DEFAULT_BACKBONE))
    parser.add_argument("--out", type=Path, default=Path("models/crossval"))
    add_embeddings_option(parser)
    args = parser.parse_args(argv)
    try:
        if args.embeddings:
            use_embeddings(args.embeddings)
        params = read_params(args.params)
        settings = section_params(CrossvalParams, params.get("crossval"))
        folds, seed = settings.folds, settings.seed
        runs = runs_from(params)
        dataset = crossval_rows(load_dataset_dict(args.dataset))
        dataset_version = directory_hash(args.dataset)
        with atomic_directory(args.out) as build:
            for run in runs:
                records = cross_validate(dataset, run.kind, folds, seed, run.params, args.backbone,
                                         progress=lambda message: print(f"crossval: {run.name}: {message}",
                                                                        file=sys.stderr),
                                         on_fold=fold_saver(build, run, dataset_version))
                write_jsonl(build / f"{run.name}.jsonl", records)
                run_facts = {"name": run.name, "kind": run.kind, "params": effective_params(run.kind, run.params),
                             "folds": folds, "seed": seed, "dataset_version": dataset_version}
                write_json(build / f"{run.name}.params.json", run_facts)
    except (BaselineError, DatasetError, OSError, ValueError) as error:
        print(f"crossval: error: {error}", file=sys.stderr)
        return 1
    print(f"crossval: {', '.join(run.name for run in runs)} x {folds} grouped folds over {len(dataset)} rows "
          f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
