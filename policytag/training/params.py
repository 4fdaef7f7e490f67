"""The knobs of the stages: one typed, validated dataclass per params.yaml section that policytag/training/ and
policytag/evaluation/ read, and one way to load them.

The dataclasses are the one home of the defaults (the values params.yaml documents): a key missing from
params.yaml takes its field's default, and a key that is not a field is refused with an error naming params.yaml,
the section, the key and the known keys (a typo in `dvc exp run -S section.key=...` must not pass silently).
Fields annotated `int`, `float`, `bool` or `str` are converted (a bool must be written true or false); other
fields (lists, mappings, optional values) are taken as written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import yaml

PARAMS_FILE = "params.yaml"


class ParamsError(ValueError):
    """params.yaml, or a section of it, that the stages cannot use; the message names the section and the key."""


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}

P = TypeVar("P")


def read_params(path: str | os.PathLike = PARAMS_FILE) -> dict:
    """The whole params file as a mapping (sections unchecked: each stage checks the sections it reads)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path} is missing; run from the repository root or pass --params") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise ParamsError(f"{path}: a mapping of sections expected")
    return values


def section_params(cls: type[P], values: dict | None, section: str | None = None) -> P:
    """`cls` (a params dataclass) from one section's mapping: unknown keys refused, defaults for missing ones,
    scalars converted, then the class's own `check()` where it has one."""
    section = section or cls.SECTION
    if values is not None and not isinstance(values, dict):
        raise ParamsError(f"{PARAMS_FILE} {section}: a mapping of settings expected, got {values!r}")
    values = dict(values or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParamsError(f"{PARAMS_FILE} {section}: unknown {section} parameter(s) {', '.join(unknown)} (an unknown "
                          f"setting is refused, not ignored); known: {', '.join(known)}")
    converted = {}
    for name, value in values.items():
        kind = _SCALARS.get(known[name].type)
        if kind is bool and not isinstance(value, bool):
            raise ParamsError(f"{section}.{name} must be true or false, got {value!r}")
        try:
            converted[name] = value if kind is None else kind(value)
        except (TypeError, ValueError):
            raise ParamsError(f"{PARAMS_FILE} {section}.{name}: {known[name].type} expected, got {value!r}") from None
    params = cls(**converted)
    check = getattr(params, "check", None)
    if check is not None:
        check()
    return params


def load_section(path: str | os.PathLike, cls: type[P]) -> P:
    """One section of the params file at `path`, as `cls`."""
    return section_params(cls, read_params(path).get(cls.SECTION))


@dataclass(frozen=True)
class DatasetParams:
    """params.yaml `dataset:`: the fractions of documents held out for validation and test, and the seed."""

    SECTION = "dataset"
    validation_fraction: float = 0.15
    test_fraction: float = 0.2
    seed: int = 13

    @classmethod
    def from_dict(cls, values: dict | None) -> "DatasetParams":
        return section_params(cls, values)


@dataclass(frozen=True)
class TrainParams:
    """The knobs of the train stage (params.yaml `train:`); every field has a default."""

    SECTION = "train"
    epochs: int = 6
    batch_size: int = 16
    eval_batch_size: int = 64
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    dropout: float = 0.1
    seed: int = 13
    patience: int = 4
    early_stopping: bool = False
    """Stop when validation macro-F1 has not improved for `patience` epochs and keep the best epoch; off, every
    epoch runs (the recipe cross-validation measures, whose thresholds the classifier takes, has no validation)."""
    freeze_embeddings: bool = True
    trainable_layers: int = 2
    """Train only the top N encoder layers (the bottom runs once per sentence; see policytag/training/frozen_layers.py);
    0 trains them all."""
    pos_weight_cap: float = 10.0
    sources: str = "all"
    """Which collections to learn from: "all", or a comma-separated list of the dataset's `source` values ("seed",
    "pool", "ooni-asia", ...); evaluation stays whole, so `dvc exp run -S train.sources=seed` measures what the
    other collections add."""
    translations: bool = True
    """Learn from the translations too (translate-train); false: originals only."""
    head_init: str = "descriptions"
    head_init_scale: float = 20.0
    initial_probability: float = 0.1
    threshold_step: float = 0.01
    int8_calibration_sentences: int = 1000
    """Sentences the classifier learnt from on which the int8 export's thresholds are matched to fp32's decisions
    (0: none; the int8 path then uses the fp32 thresholds)."""
    int8_float_layers: int = 0
    """The top encoder layers the int8 export keeps in float (written to the classifier's config.json); the
    layers fine-tuning changed (`trainable_layers`) are the ones whose quantisation moves decisions most."""
    mixed_precision: str = "auto"
    """The training passes in bf16 where the hardware computes it natively ("auto"), always ("bf16") or never
    ("fp32"); see policytag/training/precision.py."""
    final_model: str = "refit"
    """What the train stage writes: "refit" fine-tunes the recipe once more on the train split; "fold_average"
    averages the weights of the crossval stage's fold models of this recipe, which learnt from every train and
    validation document (policytag/training/fold_average.py; the stage then needs --crossval)."""

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainParams":
        return section_params(cls, values)

    def check(self) -> None:
        if self.head_init not in ("descriptions", "random"):
            raise ParamsError(f"train.head_init must be 'descriptions' or 'random', got {self.head_init!r}")
        if not 0 < self.initial_probability < 1:
            raise ParamsError("train.initial_probability must lie strictly between 0 and 1")
        if not 0 < self.threshold_step < 0.5:
            raise ParamsError("train.threshold_step must lie in (0, 0.5)")
        if self.int8_float_layers < 0:
            raise ParamsError("train.int8_float_layers must be 0 (quantise every layer) or a number of top layers")
        if self.trainable_layers < 0:
            raise ParamsError("train.trainable_layers must be 0 (all) or a positive number of top layers")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ParamsError("train.epochs, train.batch_size and train.patience must be at least 1")
        check_mixed_precision(self.SECTION, self.mixed_precision)
        if self.final_model not in FINAL_MODELS:
            raise ParamsError(f"train.final_model must be one of {', '.join(FINAL_MODELS)}, got {self.final_model!r}")


FINAL_MODELS = ("refit", "fold_average")
MIXED_PRECISION_MODES = ("auto", "bf16", "fp32")  # policytag/training/precision.py says what each does


def check_mixed_precision(section: str, value: str) -> None:
    if value not in MIXED_PRECISION_MODES:
        raise ParamsError(f"{section}.mixed_precision must be one of {', '.join(MIXED_PRECISION_MODES)}, "
                          f"got {value!r}")


@dataclass(frozen=True)
class DistillParams:
    """params.yaml `distill:`: the student (policytag/training/distill.py): how many of the teacher's encoder layers it
    keeps, and how it learns the teacher's scores."""

    SECTION = "distill"
    layers: int = 6
    """K: the student keeps K of the teacher's encoder layers, evenly spaced from the first to the last."""
    epochs: int = 6
    batch_size: int = 32
    encoder_lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    gold_weight: float = 0.5
    """On a labelled sentence the target is gold_weight x the gold label + (1 - gold_weight) x the teacher's score;
    elsewhere the teacher's score alone."""
    hidden_weight: float = 0.0
    """Weight of the layer-wise loss: each student layer's output learns the output of the teacher layer it was
    copied from (mean squared error over the tokens), as well as the scores; 0 learns the scores alone."""
    frozen_layers: int = 0
    """The student's bottom layers that stay the teacher's, untrained: only where they are the teacher's bottom
    layers (with the layers spread from the first, 1 at most). Their output is computed once, in the teacher's pass,
    so that every epoch runs only the layers above (0: every kept layer trains)."""
    vocabulary_languages: list = field(default_factory=list)
    """Prune the student's vocabulary and embedding matrix to the tokens of these languages' most frequent words
    (wordfreq) and of its training sentences (policytag/training/vocabulary.py); [] keeps the teacher's whole
    vocabulary, for every language the encoder knows."""
    vocabulary_words: int = 100000
    """How many of each language's most frequent words the pruned vocabulary covers."""
    seed: int = 13
    int8_calibration_sentences: int = 1000
    curve: list = field(default_factory=lambda: [2, 3, 4, 6])
    """The K values `policytag distill --curve` trains and measures (by hand, not in `dvc repro`)."""
    mixed_precision: str = "auto"
    """The teacher's pass and the student's training steps in bf16 where native ("auto"), always ("bf16") or never
    ("fp32"); see policytag/training/precision.py."""

    def check(self) -> None:
        if self.layers < 1 or any(not isinstance(k, int) or k < 1 for k in self.curve):
            raise ParamsError("distill.layers and every distill.curve entry must be a whole number of layers, >= 1")
        if not 0 <= self.gold_weight <= 1:
            raise ParamsError("distill.gold_weight must lie in [0, 1]")
        if self.hidden_weight < 0:
            raise ParamsError("distill.hidden_weight must be 0 (scores only) or more")
        if self.epochs < 1 or self.batch_size < 1:
            raise ParamsError("distill.epochs and distill.batch_size must be at least 1")
        check_mixed_precision(self.SECTION, self.mixed_precision)
        if not 0 <= self.frozen_layers < self.layers:
            raise ParamsError("distill.frozen_layers must be 0 or more and leave at least one of distill.layers to "
                              "train")
        if not isinstance(self.vocabulary_languages, list) or \
                not all(isinstance(code, str) for code in self.vocabulary_languages):
            raise ParamsError("distill.vocabulary_languages must be a list of language codes, e.g. [en, vi] ([]: keep "
                              "the whole vocabulary)")
        if self.vocabulary_words < 1:
            raise ParamsError("distill.vocabulary_words must be at least 1")


@dataclass(frozen=True)
class TfidfParams:
    """params.yaml `baseline.tfidf:`: the TF-IDF vectorizer and the per-label logistic regressions."""

    SECTION = "baseline.tfidf"
    analyzer: str = "char_wb"
    ngram_range: list = field(default_factory=lambda: [2, 5])
    sublinear_tf: bool = True
    min_df: int | float = 1
    max_df: int | float = 1.0
    max_features: int | None = None
    C: float = 10.0
    solver: str = "liblinear"
    max_iter: int = 1000
    seed: int = 13


@dataclass(frozen=True)
class ZeroshotParams:
    """params.yaml `baseline.zeroshot:`: how sentences and label descriptions are embedded, where thresholds are
    tuned."""

    SECTION = "baseline.zeroshot"
    sentence_prefix: str = "query: "
    label_prefix: str = "query: "
    max_length: int = 128
    batch_size: int = 32
    tune_on: str = "train_and_validation"
    mixed_precision: str = "auto"
    """The embedding passes in bf16 where the hardware has it natively (see policytag/training/precision.py)."""

    def check(self) -> None:
        if self.tune_on not in ("validation", "train_and_validation"):
            raise ParamsError(f"{PARAMS_FILE} baseline.zeroshot.tune_on: {self.tune_on!r}; "
                              "use validation or train_and_validation")
        check_mixed_precision(self.SECTION, self.mixed_precision)


BASELINE_KINDS = ("tfidf", "zeroshot")


@dataclass(frozen=True)
class BaselineParams:
    """params.yaml `baseline:`: which baselines the stage fits, and each kind's settings (checked by TfidfParams
    and ZeroshotParams when it is fitted: cross-validation variants override them first)."""

    SECTION = "baseline"
    models: list = field(default_factory=lambda: list(BASELINE_KINDS))
    tfidf: dict | None = None
    zeroshot: dict | None = None

    def check(self) -> None:
        unknown = sorted(set(self.models) - set(BASELINE_KINDS))
        if unknown:
            raise ParamsError(f"{PARAMS_FILE} baseline.models: unknown kind(s) {', '.join(unknown)}; "
                              f"known: {', '.join(BASELINE_KINDS)}")

    def kind(self, name: str) -> dict:
        """The raw settings of one kind (validated when it is fitted)."""
        return dict(getattr(self, name) or {})


@dataclass(frozen=True)
class CrossvalParams:
    """params.yaml `crossval:`: grouped folds over the train and validation documents, and the runs; an entry of
    `models` is a kind or {name: ..., kind: ..., params: {...}} (checked by policytag.training.crossval.runs_from)."""

    SECTION = "crossval"
    folds: int = 5
    seed: int = 13
    models: list = field(default_factory=lambda: ["tfidf", "zeroshot", "transformer"])


@dataclass(frozen=True)
class RecipesParams:
    """params.yaml `recipes:`: variants of the train recipe compared by grouped cross-validation, and the weights
    of the transformer in its blends with the zero-shot prior."""

    SECTION = "recipes"
    variants: list = field(default_factory=list)
    blends: list = field(default_factory=list)


@dataclass(frozen=True)
class EvaluateParams:
    """params.yaml `evaluate:`: the models scored on the test split."""

    SECTION = "evaluate"
    models: list = field(default_factory=lambda: ["transformer", "transformer_int8", "tfidf", "zeroshot"])


@dataclass(frozen=True)
class SimulateParams:
    """params.yaml `simulate:`: the active-learning simulation (policytag/evaluation/simulate.py)."""

    SECTION = "simulate"
    initial: int = 20
    batch: int = 25
    budget: int | None = 600
    diversity: float = 0.5
    target_fraction: float = 0.9
    repetitions: int = 5
    seed: int = 13
