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

Every model kind is fitted by `fit_<kind>(train, validation, params, **kw)` (the transformer's, fit_transformer in
training/crossval.py, wraps training.train.fit) and returns a predictor with `.labels`, `.thresholds` and
`predict_proba(texts) -> [n, labels]`; thresholds are tuned with training/thresholds.py, never on test. Predictors are saved without pickle: the vectorizer's
vocabulary as JSON, arrays as safetensors, thresholds as thresholds.json (the format of policytag.model), and a
model card. `python -m training.baseline --dataset data/dataset --out models/baseline`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import yaml

from policytag.labels import LABEL_NAMES, LABELS
from policytag.records import atomic_directory
from policytag.text import normalise_text
from training.thresholds import FALLBACK, apply_thresholds, f1_at_thresholds, tune_thresholds

CONFIG_FILE, THRESHOLDS_FILE, CARD_FILE = "config.json", "thresholds.json", "README.md"
TFIDF_WEIGHTS, TFIDF_VOCABULARY = "weights.safetensors", "vocabulary.json"
ZEROSHOT_WEIGHTS = "label_embeddings.safetensors"

TFIDF_DEFAULTS = {"analyzer": "char_wb", "ngram_range": [2, 5], "sublinear_tf": True, "min_df": 1, "max_df": 1.0,
                  "max_features": None, "C": 10.0, "solver": "liblinear", "max_iter": 1000, "seed": 13}
ZEROSHOT_DEFAULTS = {"sentence_prefix": "query: ", "label_prefix": "query: ", "max_length": 128, "batch_size": 32,
                     "tune_on": "train_and_validation"}
DEFAULT_BACKBONE = "models/backbone"
_CONSTANT_LOGIT = 12.0  # a label that is always (or never) positive in training: p = sigmoid(+-12)


class BaselineError(RuntimeError):
    """A baseline model that cannot be fitted or loaded; the message names the file and what to do."""


class Predictor(Protocol):
    """What every model kind gives back: scores in schema order and one threshold per label."""

    labels: tuple[str, ...]
    thresholds: np.ndarray

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def split_arrays(split) -> tuple[list[str], np.ndarray]:
    """Texts and the multi-hot gold matrix [rows, labels] (schema order) of a dataset split."""
    texts = list(split["text"])
    gold = np.asarray(split["labels"], dtype=np.float32).reshape(len(texts), len(LABEL_NAMES))
    return texts, gold


def settings_from(params: dict | None, defaults: dict, section: str) -> dict:
    """`defaults` overridden by `params`; a key that is not a known setting is an error (a typo in -S ...)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise BaselineError(f"params.yaml {section}: unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(defaults)}")
    return {**defaults, **params}


def stored_thresholds(thresholds) -> np.ndarray:
    """Thresholds as thresholds.json holds them (6 decimals), so a loaded model decides exactly as the fitted one."""
    return np.round(np.asarray(thresholds, dtype=np.float64), 6)


def predict_labels(predictor: Predictor, texts: Sequence[str]) -> list[list[str]]:
    """Label names whose score reaches the label's threshold, per text."""
    chosen = apply_thresholds(predictor.predict_proba(texts), predictor.thresholds)
    return [[label for label, on in zip(predictor.labels, row) if on] for row in chosen]


# --- TF-IDF + logistic regression ---------------------------------------------------------------------------------


@dataclass
class TfidfPredictor:
    settings: dict
    vocabulary: list[str]
    idf: np.ndarray
    coef: np.ndarray  # [labels, features]
    intercept: np.ndarray  # [labels]
    thresholds: np.ndarray
    labels: tuple[str, ...] = LABEL_NAMES
    facts: dict = field(default_factory=dict)
    kind = "tfidf"

    def __post_init__(self):
        self.vectorizer = _vectorizer(self.settings, self.vocabulary)
        self.vectorizer.idf_ = self.idf

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import expit

        features = self.vectorizer.transform([normalise_text(t) for t in texts])
        return expit(features @ self.coef.T + self.intercept[None, :])

    def predict(self, texts: Sequence[str]) -> list[list[str]]:
        return predict_labels(self, texts)

    def save(self, directory: str | os.PathLike) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(directory / CONFIG_FILE, {"kind": self.kind, "labels": list(self.labels),
                                              "settings": self.settings, "facts": self.facts})
        _write_json(directory / TFIDF_VOCABULARY, self.vocabulary)
        save_file({"idf": self.idf, "coef": self.coef, "intercept": self.intercept},
                  str(directory / TFIDF_WEIGHTS))
        _write_thresholds(directory, self.labels, self.thresholds)
        (directory / CARD_FILE).write_text(tfidf_card(self), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TfidfPredictor":
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = _read_config(directory, cls.kind)
        vocabulary = _read_json(directory / TFIDF_VOCABULARY)
        arrays = _read_safetensors(directory / TFIDF_WEIGHTS, load_file)
        labels, thresholds = _read_thresholds(directory, config["labels"])
        return cls(config["settings"], vocabulary, arrays["idf"], arrays["coef"], arrays["intercept"], thresholds,
                   tuple(labels), config.get("facts", {}))


def _vectorizer(settings: dict, vocabulary: list[str] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=settings["analyzer"], ngram_range=tuple(settings["ngram_range"]),
                           sublinear_tf=settings["sublinear_tf"], min_df=settings["min_df"],
                           max_df=settings["max_df"], max_features=settings["max_features"], lowercase=True,
                           dtype=np.float64, vocabulary=vocabulary)


def fit_tfidf(train, validation, params: dict | None = None, **_) -> TfidfPredictor:
    """TF-IDF (char_wb n-grams) + one balanced logistic regression per label; thresholds tuned on `validation`."""
    from sklearn.linear_model import LogisticRegression

    settings = settings_from(params, TFIDF_DEFAULTS, "baseline.tfidf")
    texts, gold = split_arrays(train)
    if not texts:
        raise BaselineError("no training sentences: the dataset's train split is empty")
    vectorizer = _vectorizer(settings)
    features = vectorizer.fit_transform([normalise_text(t) for t in texts])
    coef = np.zeros((len(LABEL_NAMES), features.shape[1]))
    intercept = np.zeros(len(LABEL_NAMES))
    for j in range(len(LABEL_NAMES)):
        positives = int(gold[:, j].sum())
        if 0 < positives < len(texts):
            model = LogisticRegression(C=settings["C"], class_weight="balanced", solver=settings["solver"],
                                       max_iter=settings["max_iter"], random_state=settings["seed"])
            model.fit(features, gold[:, j].astype(int))
            coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
        else:
            intercept[j] = _CONSTANT_LOGIT if positives else -_CONSTANT_LOGIT
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    predictor = TfidfPredictor(settings, vocabulary, vectorizer.idf_.astype(np.float64), coef, intercept,
                               np.full(len(LABEL_NAMES), FALLBACK))
    val_texts, val_gold = split_arrays(validation)
    val_scores = predictor.predict_proba(val_texts) if val_texts else np.zeros((0, len(LABEL_NAMES)))
    predictor.thresholds = stored_thresholds(tune_thresholds(val_gold, val_scores))
    predictor.facts = _facts(gold, val_gold, val_scores, predictor.thresholds)
    return predictor


# --- zero-shot: label descriptions against sentences in the backbone's embedding space ----------------------------


class Encoder:
    """e5 sentence embeddings from a backbone checkpoint (models/backbone/): NFC, prefix, mean pooling, L2 norm."""

    def __init__(self, backbone_dir: str | os.PathLike, max_length: int = 128, batch_size: int = 32):
        from transformers import AutoModel, AutoTokenizer

        backbone_dir = Path(backbone_dir)
        if not (backbone_dir / "config.json").is_file():
            raise BaselineError(f"{backbone_dir} holds no backbone checkpoint (config.json expected); build it "
                                "with `dvc repro backbone` (python -m training.backbone) or pass the right directory")
        self.tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
        self.model = AutoModel.from_pretrained(str(backbone_dir), add_pooling_layer=False).eval()
        self.max_length, self.batch_size = max_length, batch_size
        self._cache: dict[tuple[str, str], np.ndarray] = {}  # (prefix, text) -> embedding: folds share sentences

    def encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        import torch

        from policytag.model import mean_pool, tokenize

        texts = list(texts)
        todo = list(dict.fromkeys(t for t in texts if (prefix, t) not in self._cache))
        with torch.inference_mode():
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                batch = tokenize(self.tokenizer, chunk, self.max_length, prefix)
                hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                pooled = torch.nn.functional.normalize(mean_pool(hidden.last_hidden_state, batch["attention_mask"]),
                                                       dim=-1).numpy()
                self._cache.update(((prefix, text), vector) for text, vector in zip(chunk, pooled))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._cache[(prefix, text)]
        return out


@lru_cache(maxsize=2)
def load_encoder(backbone_dir: str, max_length: int, batch_size: int) -> Encoder:
    """One encoder per backbone and settings, shared by the folds of a cross-validation."""
    return Encoder(backbone_dir, max_length, batch_size)


@dataclass
class ZeroShotPredictor:
    settings: dict
    label_embeddings: np.ndarray  # [labels, hidden], L2-normalised
    center: np.ndarray  # [labels]: mean similarity of the training sentences to each label
    scale: np.ndarray  # [labels]: their standard deviation
    thresholds: np.ndarray
    labels: tuple[str, ...] = LABEL_NAMES
    facts: dict = field(default_factory=dict)
    kind = "zeroshot"

    @property
    def encoder(self) -> Encoder:
        return load_encoder(str(self.settings["backbone"]), self.settings["max_length"], self.settings["batch_size"])

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity [texts, labels] between each sentence and each label description."""
        return self.encoder.encode(texts, self.settings["sentence_prefix"]) @ self.label_embeddings.T

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import expit

        return expit((self.similarities(texts) - self.center[None, :]) / self.scale[None, :])

    def predict(self, texts: Sequence[str]) -> list[list[str]]:
        return predict_labels(self, texts)

    def save(self, directory: str | os.PathLike) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        descriptions = {label.name: label.description for label in LABELS if label.name in self.labels}
        _write_json(directory / CONFIG_FILE, {"kind": self.kind, "labels": list(self.labels),
                                              "settings": self.settings, "descriptions": descriptions,
                                              "facts": self.facts})
        save_file({"label_embeddings": self.label_embeddings, "center": self.center, "scale": self.scale},
                  str(directory / ZEROSHOT_WEIGHTS))
        _write_thresholds(directory, self.labels, self.thresholds)
        (directory / CARD_FILE).write_text(zeroshot_card(self), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, backbone: str | os.PathLike | None = None) -> "ZeroShotPredictor":
        """`backbone` overrides the checkpoint directory recorded at fit time (relative to the working directory)."""
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = _read_config(directory, cls.kind)
        arrays = _read_safetensors(directory / ZEROSHOT_WEIGHTS, load_file)
        labels, thresholds = _read_thresholds(directory, config["labels"])
        settings = dict(config["settings"])
        if backbone is not None:
            settings["backbone"] = str(backbone)
        return cls(settings, arrays["label_embeddings"], arrays["center"], arrays["scale"], thresholds,
                   tuple(labels), config.get("facts", {}))


def fit_zeroshot(train, validation, params: dict | None = None, backbone_dir: str | os.PathLike = DEFAULT_BACKBONE,
                 **_) -> ZeroShotPredictor:
    """Label-description embeddings from the backbone; per-label thresholds tuned on `validation` (or on train and
    validation together with tune_on: train_and_validation: nothing else is fitted on their labels)."""
    settings = {**settings_from(params, ZEROSHOT_DEFAULTS, "baseline.zeroshot"), "backbone": str(backbone_dir)}
    if settings["tune_on"] not in ("validation", "train_and_validation"):
        raise BaselineError(f"params.yaml baseline.zeroshot.tune_on: {settings['tune_on']!r}; "
                            "use validation or train_and_validation")
    encoder = load_encoder(str(settings["backbone"]), settings["max_length"], settings["batch_size"])
    label_embeddings = encoder.encode([label.description for label in LABELS], settings["label_prefix"])
    texts, gold = split_arrays(train)
    if not texts:
        raise BaselineError("no training sentences: the dataset's train split is empty")
    train_sims = encoder.encode(texts, settings["sentence_prefix"]) @ label_embeddings.T
    center, scale = train_sims.mean(axis=0), np.maximum(train_sims.std(axis=0), 1e-6)
    predictor = ZeroShotPredictor(settings, label_embeddings, center.astype(np.float32), scale.astype(np.float32),
                                  np.full(len(LABEL_NAMES), FALLBACK))
    val_texts, val_gold = split_arrays(validation)
    val_scores = predictor.predict_proba(val_texts) if val_texts else np.zeros((0, len(LABEL_NAMES)))
    if settings["tune_on"] == "train_and_validation":
        from scipy.special import expit

        train_scores = expit((train_sims - center) / scale)
        predictor.thresholds = stored_thresholds(tune_thresholds(np.vstack([gold, val_gold]),
                                                                 np.vstack([train_scores, val_scores])))
    else:
        predictor.thresholds = stored_thresholds(tune_thresholds(val_gold, val_scores))
    predictor.facts = _facts(gold, val_gold, val_scores, predictor.thresholds)
    return predictor


# --- saving, loading, cards ---------------------------------------------------------------------------------------

PREDICTORS = {"tfidf": TfidfPredictor, "zeroshot": ZeroShotPredictor}
FITTERS = {"tfidf": fit_tfidf, "zeroshot": fit_zeroshot}


def load_predictor(directory: str | os.PathLike, **kw) -> Predictor:
    """A saved baseline of any kind (its config.json says which)."""
    kind = _read_config(Path(directory), None)["kind"]
    if kind not in PREDICTORS:
        raise BaselineError(f"{Path(directory) / CONFIG_FILE}: unknown model kind {kind!r}")
    return PREDICTORS[kind].load(directory, **kw)


def _facts(gold: np.ndarray, val_gold: np.ndarray, val_scores: np.ndarray, thresholds: np.ndarray) -> dict:
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


def _card_table(facts: dict) -> str:
    rows = ["| label | train positives | validation positives | threshold | validation F1 |",
            "|---|---:|---:|---:|---:|"]
    for label, f in facts.get("labels", {}).items():
        f1 = "n/a" if f["validation_f1"] is None else f"{f['validation_f1']:.3f}"
        rows.append(f"| {label} | {f['train_positives']} | {f['validation_positives']} | {f['threshold']:.2f} | {f1} |")
    return "\n".join(rows)


_CARD_NOTE = ("Validation F1 is measured on the rows the thresholds were tuned on, so it is optimistic; "
              "honest figures are in metrics/test.json and metrics/crossval.json (the `evaluate` stage). "
              "A threshold of 0.50 on a label with no validation positive is the fallback, not a tuned value.")


def tfidf_card(predictor: TfidfPredictor) -> str:
    s, facts = predictor.settings, predictor.facts
    return f"""---
library_name: scikit-learn
language: [en, vi]
tags: [text-classification, multi-label, policytag, baseline]
---
# policytag baseline: TF-IDF character n-grams + logistic regression

Sentence tagger for the six policytag labels ({', '.join(predictor.labels)}), multi-label. Text is
NFC-normalised and lower-cased; features are TF-IDF over `{s['analyzer']}` character n-grams of length
{s['ngram_range'][0]}-{s['ngram_range'][1]} (sublinear tf, min_df {s['min_df']}; {len(predictor.vocabulary)} features);
one logistic regression per label (C={s['C']}, {s['solver']}, class_weight=balanced, random_state={s['seed']}).
A label is predicted when its score reaches its threshold (thresholds.json, tuned per label for F1 on the
validation split). Trained on {facts.get('train_sentences', '?')} sentences, tuned on
{facts.get('validation_sentences', '?')}.

Files: `vocabulary.json` (the n-grams, in feature order), `weights.safetensors` (`idf`, `coef` [labels, features],
`intercept`), `thresholds.json`, `config.json`. Load with `training.baseline.load_predictor(dir)`; no pickle.

{_card_table(facts)}

{_CARD_NOTE}
"""


def zeroshot_card(predictor: ZeroShotPredictor) -> str:
    s, facts = predictor.settings, predictor.facts
    return f"""---
language: [en, vi]
tags: [text-classification, multi-label, zero-shot, policytag, baseline]
---
# policytag baseline: zero-shot label descriptions

No training: each sentence (`"{s['sentence_prefix']}<sentence>"`) and each label's description from
policytag.labels (`"{s['label_prefix']}<description>"`) are embedded by the backbone `{s['backbone']}`
(mean pooling over the attention mask, L2-normalised, NFC input, max {s['max_length']} tokens); the score of a label is
the sigmoid of the sentence's cosine similarity to its description, standardised by the mean and standard
deviation of that similarity over the {facts.get('train_sentences', '?')} training sentences. Thresholds
(thresholds.json) are tuned per label for F1 on the {s['tune_on'].replace('_', ' ')} split(s).

Files: `label_embeddings.safetensors` (`label_embeddings` [labels, hidden], `center`, `scale`), `thresholds.json`,
`config.json` (settings and the descriptions embedded). The backbone is needed at prediction time. Load with
`training.baseline.load_predictor(dir)`.

{_card_table(facts)}

{_CARD_NOTE}
"""


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _write_thresholds(directory: Path, labels: Sequence[str], thresholds: np.ndarray) -> None:
    """The thresholds.json of policytag.model: {"labels": [...], "thresholds": [...]} in label order."""
    _write_json(directory / THRESHOLDS_FILE, {"labels": list(labels),
                                              "thresholds": [round(float(t), 6) for t in thresholds]})


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path} is missing: not a baseline model directory; build it with "
                            "`dvc repro baseline` (python -m training.baseline)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: malformed JSON ({error}); rebuild with `dvc repro baseline`") from None


def _read_config(directory: Path, kind: str | None) -> dict:
    config = _read_json(directory / CONFIG_FILE)
    if not isinstance(config, dict) or "kind" not in config or "labels" not in config:
        raise BaselineError(f"{directory / CONFIG_FILE}: not a baseline config (kind and labels expected)")
    if kind is not None and config["kind"] != kind:
        raise BaselineError(f"{directory} holds a {config['kind']!r} model, not {kind!r}")
    if list(config["labels"]) != list(LABEL_NAMES):
        raise BaselineError(f"{directory}: labels {config['labels']} differ from the schema's {list(LABEL_NAMES)}; "
                            "rebuild with `dvc repro baseline`")
    return config


def _read_safetensors(path: Path, load_file) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise BaselineError(f"{path} is missing; rebuild with `dvc repro baseline`")
    return load_file(str(path))


def _read_thresholds(directory: Path, labels: list[str]) -> tuple[list[str], np.ndarray]:
    payload = _read_json(directory / THRESHOLDS_FILE)
    try:
        names, values = list(payload["labels"]), np.asarray(payload["thresholds"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise BaselineError(f"{directory / THRESHOLDS_FILE}: malformed ({error})") from None
    if names != list(labels) or len(values) != len(names):
        raise BaselineError(f"{directory / THRESHOLDS_FILE}: labels do not match config.json")
    return names, values


def load_params(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise BaselineError(f"{path} is missing; run from the repository root or pass --params") from None


def load_dataset_dict(path: str | os.PathLike):
    from datasets import load_from_disk

    path = Path(path)
    if not (path / "dataset_dict.json").is_file():
        raise BaselineError(f"{path} holds no dataset (dataset_dict.json expected); build it with "
                            "`dvc repro dataset` (python -m training.dataset)")
    return load_from_disk(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, default=Path(DEFAULT_BACKBONE), help="for the zero-shot model")
    parser.add_argument("--out", type=Path, default=Path("models/baseline"))
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params).get("baseline") or {}
        kinds = params.get("models", list(FITTERS))
        unknown = sorted(set(kinds) - set(FITTERS))
        if unknown:
            raise BaselineError(f"params.yaml baseline.models: unknown kind(s) {', '.join(unknown)}; "
                                f"known: {', '.join(FITTERS)}")
        dataset = load_dataset_dict(args.dataset)
        with atomic_directory(args.out) as build:
            for kind in kinds:
                print(f"baseline: fitting {kind} on {len(dataset['train'])} sentences", file=sys.stderr)
                predictor = FITTERS[kind](dataset["train"], dataset["validation"], params.get(kind),
                                          backbone_dir=args.backbone)
                predictor.save(build / kind)
                print(f"baseline: {kind} thresholds " + " ".join(
                    f"{label}={t:.2f}" for label, t in zip(predictor.labels, predictor.thresholds)), file=sys.stderr)
    except (BaselineError, OSError) as error:
        print(f"baseline: error: {error}", file=sys.stderr)
        return 1
    print(f"baseline: {', '.join(kinds)} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
