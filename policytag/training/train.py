"""The `train` stage: make the sentence classifier, take its thresholds from the cross-validation of the same recipe
(policytag/training/classifier_thresholds.py), and write models/classifier/.

The classifier is, as `train.final_model` says, either the average of the crossval stage's fold models' weights
(`fold_average`, policytag/training/fold_average.py: every train and validation document learnt, no further training
run) or the recipe fine-tuned once more on the train split (`refit`, policytag/training/fit.py).

params.yaml `train:`, data/dataset and models/backbone in; models/classifier/ out (checkpoint, tokenizer,
thresholds.json, training_params.json, history.json, metrics.json and a model card, policytag/training/model_cards.py),
written to a temporary directory and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.model import Classifier
from policytag.training.artifacts import directory_hash, package_versions, write_json
from policytag.training.classifier_dir import write_classifier
from policytag.training.crossval import crossval_rows
from policytag.training.data import DatasetError, load_dataset_dict, split_arrays
from policytag.training.fit import _stderr, fit, training_rows
from policytag.training.metrics import label_metrics
from policytag.training.model_cards import classifier_card, format_score
from policytag.training.out_of_fold import OutOfFoldError, read_out_of_fold
from policytag.training.params import ParamsError, TrainParams, load_section

__all__ = ["TrainParams", "fit", "main"]


def _language_counts(dataset) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split in dataset.values():
        if "lang" in split.column_names:
            for lang in split["lang"]:
                counts[lang] = counts.get(lang, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _stage_metrics(history: dict) -> dict:
    """Validation metrics (of a fold average: its fold models' out-of-fold metrics) for `dvc metrics` (no timings:
    a rerun gives the same file)."""
    validation = history["validation"] or {}
    tuned = validation.get("tuned", {})
    scores = {
        "macro_f1": tuned.get("macro_f1"),
        "macro_f1_at_0.5": validation.get("at_0.5", {}).get("macro_f1"),
        "f1": {name: m["f1"] for name, m in tuned.get("labels", {}).items()},
    }
    if history.get("final_model") == "fold_average":
        return {"final_model": "fold_average", "folds": len(history["fold_files"]), "out_of_fold": scores}
    return {"best_epoch": history["best_epoch"], "epochs_run": len(history["epochs"]), "validation": scores}


def fold_average_history(out_of_fold_file: Path, made_of: dict, rows: int) -> dict:
    """The history of a fold-average classifier: the fold files it averages, and as its metrics those of its fold
    models on the sentences each did not see (out-of-fold, at the cross-fitted thresholds): the averaged model has
    seen every train and validation document, so no split of them is held out from it."""
    predictions = read_out_of_fold(out_of_fold_file)
    decided = (predictions.scores >= predictions.thresholds).astype(np.float64)
    at_half = np.full(len(LABEL_NAMES), 0.5)
    tuned = label_metrics(predictions.gold, decided, at_half)
    for name in LABEL_NAMES:  # each row was decided at its own fold's threshold: no one threshold to show
        tuned["labels"][name]["threshold"] = None
    return {"final_model": "fold_average", **made_of, "epochs": [], "best_epoch": None, "stopped_early": False,
            "train_sentences": rows, "validation_sentences": len(predictions.records),
            "validation": {"tuned": tuned, "at_0.5": label_metrics(predictions.gold, predictions.scores, at_half)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policytag.training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--backbone", type=Path, default=Path("models/backbone"))
    parser.add_argument("--out", type=Path, default=Path("models/classifier"))
    parser.add_argument("--crossval", type=Path, default=None,
                        help="take the thresholds from this crossval output's out-of-fold scores of the same recipe "
                             "(models/crossval); without it they are tuned on the validation split")
    parser.add_argument("--crossval-run", default="transformer", help="the crossval.models entry of this recipe")
    parser.add_argument("--metrics", type=Path, default=None,
                        help="also write the validation metrics here (a DVC metrics file outside --out)")
    args = parser.parse_args(argv)

    try:
        params = load_section(args.params, TrainParams)
    except ParamsError as error:
        return _fail(f"{args.params}: {error}")
    if not (args.backbone / "config.json").is_file():
        return _fail(f"{args.backbone} holds no backbone checkpoint; build it with `dvc repro backbone`")
    layers = json.loads((args.backbone / "config.json").read_text(encoding="utf-8")).get("num_hidden_layers", 0)
    if params.int8_float_layers > layers:
        return _fail(f"train.int8_float_layers {params.int8_float_layers} is more than the {layers} layers of "
                     f"{args.backbone}; set it to {layers} or fewer in params.yaml")
    try:
        dataset = load_dataset_dict(args.dataset)
        train, validation = dataset["train"], dataset["validation"]
    except DatasetError as error:
        return _fail(str(error))
    except (FileNotFoundError, KeyError, ValueError) as error:
        return _fail(f"{args.dataset} is not a dataset with train and validation splits ({error}); "
                     "build it with `dvc repro dataset`")
    if not len(training_rows(train, params)):
        return _fail(f"train.sources={params.sources!r} leaves no training sentences; sources in "
                     f"{args.dataset}: {sorted(set(dataset['train']['source']))}")

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    _stderr(f"train: {len(train)} train / {len(validation)} validation sentences, backbone {args.backbone}")
    if params.final_model == "fold_average":
        if not args.crossval:
            return _fail("train.final_model: fold_average averages the crossval stage's fold models: pass --crossval "
                         "models/crossval, or set train.final_model: refit")
        from policytag.training.fold_average import FoldWeightsError, fold_average_model

        try:
            model, made_of = fold_average_model(args.backbone, params, args.crossval, args.crossval_run)
            history = fold_average_history(args.crossval / f"{args.crossval_run}.jsonl", made_of,
                                           len(crossval_rows(dataset)))
        except (FoldWeightsError, OutOfFoldError) as error:
            return _fail(str(error))
    else:
        model, thresholds, history = fit(train, validation, params, args.backbone)
        history["thresholds_from"] = "validation split"
    if args.crossval:
        from policytag.training.classifier_thresholds import ThresholdSourceError, thresholds_from_crossval

        try:
            thresholds, stability = thresholds_from_crossval(args.crossval, args.crossval_run, asdict(params),
                                                             params.threshold_step)
        except ThresholdSourceError as error:
            return _fail(str(error))
        history["thresholds_from"] = f"out-of-fold scores of {args.crossval / args.crossval_run}.jsonl"
        history["threshold_stability"] = stability
        if len(validation) and params.final_model == "refit":
            val_texts, val_labels = split_arrays(validation)
            scores = Classifier(model, tokenizer_for(args.backbone), list(LABEL_NAMES), thresholds, "validation",
                                next(model.parameters()).device).predict_proba(val_texts)
            history["validation"] = {"tuned": label_metrics(val_labels, scores, thresholds),
                                     "at_0.5": label_metrics(val_labels, scores, np.full(len(LABEL_NAMES), 0.5))}
    model.config.int8_float_layers = params.int8_float_layers
    provenance_file = args.backbone / "backbone.json"
    provenance = json.loads(provenance_file.read_text(encoding="utf-8")) if provenance_file.is_file() else {}
    learnt = crossval_rows(dataset) if params.final_model == "fold_average" else train  # what the weights saw
    _, train_labels = split_arrays(training_rows(learnt, params))
    training = {
        "params": asdict(params),
        "labels": list(LABEL_NAMES),
        "dataset": {
            "path": args.dataset.as_posix(),
            "version": directory_hash(args.dataset),
            "splits": {name: len(split) for name, split in dataset.items()},
            "languages": _language_counts(dataset),
            "train_positives": {name: int(train_labels[:, k].sum()) for k, name in enumerate(LABEL_NAMES)},
        },
        "backbone": {"path": args.backbone.as_posix(),
                     **{key: provenance[key] for key in ("source", "model") if key in provenance}},
        "packages": package_versions(["torch", "transformers", "tokenizers", "datasets", "numpy"]),
    }
    tokenizer = AutoTokenizer.from_pretrained(str(args.backbone))
    from policytag.training.int8_thresholds import sample_texts

    calibration = sample_texts(learnt["text"], params.int8_calibration_sentences, params.seed)
    out = write_classifier(args.out, model, tokenizer, thresholds, training,
                           card=lambda facts: classifier_card(facts, history, thresholds),
                           facts={"history": history, "metrics": _stage_metrics(history)},
                           calibration_texts=calibration)
    if args.metrics:
        write_json(args.metrics, _stage_metrics(history))
    tuned = (history["validation"] or {}).get("tuned", {})
    if params.final_model == "fold_average":
        _stderr(f"train: the average of {len(history['fold_files'])} fold models, whose out-of-fold macro-F1 is "
                f"{format_score(tuned.get('macro_f1'))} -> {out}")
    else:
        _stderr(f"train: best epoch {history['best_epoch']}, validation macro-F1 "
                f"{format_score(tuned.get('macro_f1'))} (tuned thresholds) -> {out}")
    return 0


def tokenizer_for(backbone: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(backbone))


def _fail(message: str) -> int:
    print(f"train: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
