"""The `baseline` stage: two reference models the fine-tuned transformer has to beat.

- `tfidf`: TF-IDF over character n-grams within word boundaries (char_wb, so Vietnamese syllables and their tone
  marks count as much as English words; NFC-normalised first) and one logistic regression per label
  (one-vs-rest, class_weight="balanced", fixed random_state).
- `zeroshot`: the backbone alone, no training: the cosine similarity between a sentence's e5 embedding and the
  embedding of each label's description (policytag.labels), mean-pooled over the attention mask as e5 was
  trained. Similarities are standardised per label against the training sentences and squashed with a sigmoid,
  so its scores lie in (0, 1) like the others' (a ranking score, not a calibrated probability). Nothing in it
  is fitted on labels, so its thresholds are tuned on train and validation together by default
  (`tune_on: train_and_validation`): the validation split alone often has no positive of a rare label, and the
  0.5 fallback means nothing on this score's scale. `tune_on: validation` tunes on validation alone.

Every model kind is fitted by `fit_<kind>(train, validation, params, **kw)` (policytag/training/tfidf.py,
policytag/training/zeroshot.py; the transformer's, fit_transformer in policytag/training/crossval.py, wraps
policytag.training.fit.fit) and returns a predictor with `.labels`, `.thresholds` and `predict_proba(texts) -> [n,
labels]`; thresholds are tuned with policytag/training/thresholds.py, never on test. Predictors are saved without
pickle (policytag/training/predictors.py): the vectorizer's vocabulary as JSON, arrays as safetensors, thresholds as
thresholds.json (the format of policytag.model), and a model card (policytag/training/model_cards.py). `python -m
policytag.training.baseline --dataset data/dataset --out models/baseline`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from policytag.records import atomic_directory
from policytag.training.data import DatasetError, load_dataset_dict
from policytag.training.encoder import add_embeddings_option, use_embeddings
from policytag.training.params import BaselineParams, ParamsError, load_section
from policytag.training.predictors import (
    CONFIG_FILE,
    DEFAULT_BACKBONE,
    BaselineError,
    Predictor,
    read_config,
)
from policytag.training.tfidf import TfidfPredictor, fit_tfidf
from policytag.training.zeroshot import ZeroShotPredictor, fit_zeroshot

__all__ = ["BaselineError", "Predictor", "TfidfPredictor", "ZeroShotPredictor", "fit_tfidf", "fit_zeroshot",
           "load_predictor", "main"]

PREDICTORS = {"tfidf": TfidfPredictor, "zeroshot": ZeroShotPredictor}
FITTERS = {"tfidf": fit_tfidf, "zeroshot": fit_zeroshot}


def load_predictor(directory: str | os.PathLike, **kw) -> Predictor:
    """A saved baseline of any kind (its config.json says which)."""
    kind = read_config(Path(directory), None)["kind"]
    if kind not in PREDICTORS:
        raise BaselineError(f"{Path(directory) / CONFIG_FILE}: unknown model kind {kind!r}")
    return PREDICTORS[kind].load(directory, **kw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, default=Path(DEFAULT_BACKBONE), help="for the zero-shot model")
    parser.add_argument("--out", type=Path, default=Path("models/baseline"))
    add_embeddings_option(parser)
    args = parser.parse_args(argv)
    try:
        if args.embeddings:
            use_embeddings(args.embeddings)
        params = load_section(args.params, BaselineParams)
        kinds = params.models
        dataset = load_dataset_dict(args.dataset)
        with atomic_directory(args.out) as build:
            for kind in kinds:
                print(f"baseline: fitting {kind} on {len(dataset['train'])} sentences", file=sys.stderr)
                predictor = FITTERS[kind](dataset["train"], dataset["validation"], params.kind(kind),
                                          backbone_dir=args.backbone)
                predictor.save(build / kind)
                print(f"baseline: {kind} thresholds " + " ".join(
                    f"{label}={t:.2f}" for label, t in zip(predictor.labels, predictor.thresholds)), file=sys.stderr)
    except (BaselineError, DatasetError, ParamsError, OSError) as error:
        print(f"baseline: error: {error}", file=sys.stderr)
        return 1
    print(f"baseline: {', '.join(kinds)} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
