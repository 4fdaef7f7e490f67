"""The `train` stage: fine-tune the sentence classifier, then tune one decision threshold per label.

`fit` does the work in memory (cross-validation calls it once per fold); `main` is the stage: params.yaml
`train:`, data/dataset and models/backbone in, models/classifier/ out (checkpoint, tokenizer, thresholds.json,
training_params.json, history.json, metrics.json and a model card), written to a temporary directory and renamed
into place.

How: sigmoid outputs with BCE, positives of rare labels weighted by neg/pos (capped); AdamW, one learning rate for
the encoder and a higher one for the new head, linear decay after a warm-up; the word embeddings frozen by default
(they are most of e5-small's weights and get few useful updates from a few hundred sentences); early stopping on
validation macro-F1, keeping the best epoch's weights; thresholds that maximise each label's F1 on the validation
predictions, never the test split (training/thresholds.py, shared with the baselines).

The head's prior (`head_init: descriptions`): e5 embeds a "query: ..." so that related texts lie close, so each
label's weight row starts as the normalised embedding of "query: <label description>", scaled so that a logit is
`head_init_scale` times the cosine between sentence and description, and its bias centres the training sentences'
initial probabilities on `initial_probability`. `head_init: random` keeps the usual random rows (same bias), to
measure whether the prior helps.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import sys
import textwrap
import time
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import yaml

from policytag.labels import LABEL_NAMES, LABELS
from policytag.model import (
    QUERY_PREFIX,
    Classifier,
    SentenceTagger,
    save_classifier,
    tokenize,
    weights_version,
    write_thresholds,
)
from policytag.records import atomic_directory, atomic_writer
from training import frozen_layers
from training.thresholds import FALLBACK, f1_at_thresholds, tune_thresholds

DESCRIPTION_MAX_LENGTH = 256
HEAD_STATISTICS_SENTENCES = 256


@dataclass(frozen=True)
class TrainParams:
    """The knobs of the train stage (params.yaml `train:`); every field has a default."""

    epochs: int = 15
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
    trainable_layers: int = 0
    """Train only the top N encoder layers (the bottom runs once per sentence; see training/frozen_layers.py);
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
    """Training sentences on which the int8 export's thresholds are matched to fp32's decisions (0: none; the int8
    path then uses the fp32 thresholds)."""

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainParams":
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown train parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
        converted = {}
        for name, value in values.items():
            kind = {"int": int, "float": float, "bool": bool, "str": str}[known[name].type]
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"train.{name} must be true or false, got {value!r}")
            converted[name] = kind(value)
        params = cls(**converted)
        params.check()
        return params

    def check(self) -> None:
        if self.head_init not in ("descriptions", "random"):
            raise ValueError(f"train.head_init must be 'descriptions' or 'random', got {self.head_init!r}")
        if not 0 < self.initial_probability < 1:
            raise ValueError("train.initial_probability must lie strictly between 0 and 1")
        if not 0 < self.threshold_step < 0.5:
            raise ValueError("train.threshold_step must lie in (0, 0.5)")
        if self.trainable_layers < 0:
            raise ValueError("train.trainable_layers must be 0 (all) or a positive number of top layers")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("train.epochs, train.batch_size and train.patience must be at least 1")


# ---------------------------------------------------------------------------------------------- pure helpers


def positive_weights(labels: np.ndarray, cap: float) -> np.ndarray:
    """Per label neg/pos from a multi-hot matrix, clipped to [1, cap]; 1 for a label with no positive."""
    labels = np.asarray(labels, dtype=np.float64)
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    ratio = np.divide(negatives, positives, out=np.ones_like(positives), where=positives > 0)
    return np.clip(ratio, 1.0, cap).astype(np.float32)


def batches_by_length(rng: np.random.Generator, rows: int, batch_size: int,
                      lengths: Sequence[int] | None = None) -> list[np.ndarray]:
    """A shuffled epoch in batches; with `lengths`, rows of similar length share a batch (sorted within windows of
    50 batches, then the batches shuffled), so that little of each batch is padding."""
    order = rng.permutation(rows)
    if lengths is None:
        return [order[start:start + batch_size] for start in range(0, rows, batch_size)]
    window = batch_size * 50
    batches = []
    for start in range(0, rows, window):
        chunk = sorted(order[start:start + window], key=lambda row: lengths[row])
        batches.extend(np.array(chunk[i:i + batch_size]) for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def macro_f1(y_true: np.ndarray, predicted: np.ndarray) -> float:
    """Mean F1 over the labels that have at least one positive in y_true (0.0 if none has)."""
    y_true, predicted = np.asarray(y_true) > 0.5, np.asarray(predicted).astype(bool)
    present = [k for k in range(y_true.shape[1]) if y_true[:, k].any()]
    if not present:
        return 0.0
    return float(np.mean([f1_at_thresholds(y_true[:, k], predicted[:, k].astype(float), [0.5])[0] for k in present]))


def label_metrics(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
                  labels: Sequence[str] = LABEL_NAMES) -> dict:
    """Per-label precision, recall, F1 and support at the given thresholds, plus their macro-F1."""
    y_true = np.asarray(y_true) > 0.5
    predicted = np.asarray(scores) >= np.asarray(thresholds)
    per_label = {}
    for k, name in enumerate(labels):
        tp = int((predicted[:, k] & y_true[:, k]).sum())
        fp = int((predicted[:, k] & ~y_true[:, k]).sum())
        fn = int((~predicted[:, k] & y_true[:, k]).sum())
        support = int(y_true[:, k].sum())
        per_label[name] = {
            "threshold": round(float(thresholds[k]), 4),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / support, 4) if support else None,
            "f1": round(2 * tp / (2 * tp + fp + fn), 4) if support else None,
            "support": support,
        }
    return {"labels": per_label, "macro_f1": round(macro_f1(y_true, predicted), 4), "sentences": int(len(y_true))}


# ---------------------------------------------------------------------------------------------- the model


def _texts_and_labels(split) -> tuple[list[str], np.ndarray]:
    texts = list(split["text"]) if len(split) else []
    labels = np.asarray(split["labels"], dtype=np.float32).reshape(-1, len(LABEL_NAMES))
    return texts, labels


def _sentence_vectors(model: SentenceTagger, tokenizer, texts: Sequence[str], max_length: int, prefix: str,
                      batch_size: int, device) -> torch.Tensor:
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenize(tokenizer, texts[start : start + batch_size], max_length, prefix)
        vectors.append(model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device)))
    return torch.cat(vectors)


def init_head(model: SentenceTagger, tokenizer, params: TrainParams, train_texts: Sequence[str]) -> None:
    """Set the head as `params.head_init` says (see the module docstring); the bias makes initial probabilities low."""
    device = next(model.parameters()).device
    prior = math.log(params.initial_probability / (1 - params.initial_probability))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        if params.head_init == "descriptions":
            if list(model.config.label_names) != list(LABEL_NAMES):
                raise ValueError("head_init 'descriptions' needs the schema's labels, in schema order")
            descriptions = [label.description for label in LABELS]
            rows = _sentence_vectors(model, tokenizer, descriptions, DESCRIPTION_MAX_LENGTH, QUERY_PREFIX,
                                     params.eval_batch_size, device)
            rows = torch.nn.functional.normalize(rows, dim=-1)
            # Statistics of the training sentences: their mean norm turns w·h into scale * cosine, and their
            # mean score per label centres the bias.
            rng = np.random.default_rng(params.seed)
            sample = [train_texts[i] for i in sorted(rng.permutation(len(train_texts))[:HEAD_STATISTICS_SENTENCES])]
            vectors = _sentence_vectors(model, tokenizer, sample, params.max_length, model.config.input_prefix,
                                        params.eval_batch_size, device)
            weight = params.head_init_scale * rows / vectors.norm(dim=-1).mean()
            model.head.weight.copy_(weight)
            model.head.bias.copy_(prior - (vectors @ weight.T).mean(dim=0))
        else:
            std = getattr(model.config.encoder_config, "initializer_range", 0.02)
            model.head.weight.normal_(mean=0.0, std=std)
            model.head.bias.fill_(prior)
    model.train(was_training)


def initial_model(backbone_dir: str | os.PathLike, params: TrainParams, train_texts: Sequence[str], tokenizer=None,
                  device: str | torch.device = "cpu") -> SentenceTagger:
    """The model before training: pretrained encoder (word embeddings frozen if asked) and an initialised head."""
    from transformers import AutoTokenizer

    tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(backbone_dir))
    model = SentenceTagger.from_backbone(backbone_dir, LABEL_NAMES, classifier_dropout=params.dropout,
                                         max_length=params.max_length).to(device)
    if params.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    init_head(model, tokenizer, params, train_texts)
    return model


def _optimizer(model: SentenceTagger, params: TrainParams) -> torch.optim.Optimizer:
    """AdamW: the encoder at encoder_lr, the head at head_lr; no weight decay on biases and LayerNorms."""
    groups = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        lr = params.head_lr if name.startswith("head.") else params.encoder_lr
        decay = 0.0 if name.endswith("bias") or "LayerNorm" in name else params.weight_decay
        groups.setdefault((lr, decay), []).append(parameter)
    return torch.optim.AdamW([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])


def _linear_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextlib.contextmanager
def seeded(seed: int):
    """Fix python, numpy and torch seeds and ask torch for deterministic kernels (warning where it has none);
    the previous deterministic setting comes back afterwards."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS determinism, read at its first use
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def training_rows(train, params: TrainParams):
    """The rows a recipe learns from: without translations if `translations` is off, only the `sources` named
    (filtered in memory, so no cache file lands in a DVC output)."""
    columns = getattr(train, "column_names", ())
    if not params.translations and "translation" in columns:
        train = train.filter(lambda translation: not translation, input_columns="translation", keep_in_memory=True)
    if params.sources != "all" and "source" in columns:
        wanted = {source.strip() for source in params.sources.split(",")}
        train = train.filter(lambda source: source in wanted, input_columns="source", keep_in_memory=True)
    return train


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fit(train, validation, params: TrainParams | dict, backbone_dir: str | os.PathLike, *,
        device: str | torch.device | None = None, log: Callable[[str], None] | None = _stderr,
        state_cache: dict | None = None) -> tuple[SentenceTagger, np.ndarray, dict]:
    """Fine-tune on `train`, early-stop and tune thresholds on `validation`; write nothing.

    `train` and `validation` are datasets (or anything indexable by column) with `text` and multi-hot `labels`
    in schema order. Returns the model (best epoch's weights, in eval mode), the per-label thresholds
    (np.float32, schema order) and a history: per-epoch train loss and validation macro-F1 at 0.5, the best
    epoch, whether it stopped early, and validation metrics at the tuned thresholds.
    """
    from transformers import AutoTokenizer

    params = params if isinstance(params, TrainParams) else TrainParams.from_dict(params)
    log = log or (lambda line: None)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train = training_rows(train, params)
    train_texts, train_labels = _texts_and_labels(train)
    val_texts, val_labels = _texts_and_labels(validation)
    if not train_texts:
        raise ValueError("the train split is empty: nothing to train on")

    with seeded(params.seed):
        tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
        model = initial_model(backbone_dir, params, train_texts, tokenizer, device)
        scorer = Classifier(model, tokenizer, list(LABEL_NAMES), np.full(len(LABEL_NAMES), 0.5, np.float32),
                            "in-training", device)
        frozen, cached, cached_val = 0, None, None
        if 0 < params.trainable_layers < len(frozen_layers.layers(model)):
            frozen = frozen_layers.freeze_bottom(model, params.trainable_layers)
            cached = frozen_layers.FrozenStates(model, tokenizer, train_texts, frozen, params.max_length,
                                                params.eval_batch_size, state_cache)
            cached_val = frozen_layers.FrozenStates(model, tokenizer, val_texts, frozen, params.max_length,
                                                    params.eval_batch_size, state_cache)
        pos_weight = torch.from_numpy(positive_weights(train_labels, params.pos_weight_cap)).to(device)
        optimizer = _optimizer(model, params)
        steps = math.ceil(len(train_texts) / params.batch_size) * params.epochs
        scheduler = _linear_warmup(optimizer, int(params.warmup_ratio * steps), steps)
        order_rng = np.random.default_rng(params.seed)
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}

        epochs, best_f1, best_epoch, best_state, stopped_early = [], -1.0, 0, None, False
        for epoch in range(1, params.epochs + 1):
            started = time.perf_counter()
            model.train()
            total_loss = 0.0
            lengths = [state.shape[0] for state in cached.states] if frozen else None
            for batch_rows in batches_by_length(order_rng, len(train_texts), params.batch_size, lengths):
                targets = torch.from_numpy(train_labels[batch_rows]).to(device)
                if frozen:
                    logits = frozen_layers.top_logits(model, *cached.batch(batch_rows), frozen)
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
                else:
                    batch = tokenize(tokenizer, [train_texts[i] for i in batch_rows], params.max_length,
                                     model.config.input_prefix)
                    loss = model(input_ids=batch["input_ids"].to(device),
                                 attention_mask=batch["attention_mask"].to(device),
                                 labels=targets, pos_weight=pos_weight).loss
                loss.backward()
                if params.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                total_loss += loss.item() * len(batch_rows)
            train_loss = total_loss / len(train_texts)

            model.eval()
            val_f1 = None
            if val_texts and frozen:
                with torch.inference_mode():
                    scores = torch.cat([
                        torch.sigmoid(frozen_layers.top_logits(model, *cached_val.batch(range(i, min(
                            i + params.eval_batch_size, len(val_texts)))), frozen))
                        for i in range(0, len(val_texts), params.eval_batch_size)]).cpu().numpy()
                val_f1 = macro_f1(val_labels, scores >= 0.5)
            elif val_texts:
                scores = scorer.predict_proba(val_texts, batch_size=params.eval_batch_size)
                val_f1 = macro_f1(val_labels, scores >= 0.5)
            epochs.append({"epoch": epoch, "train_loss": round(train_loss, 6),
                           "val_macro_f1": None if val_f1 is None else round(val_f1, 6)})
            improved = val_f1 is None or val_f1 > best_f1
            log(f"epoch {epoch}/{params.epochs}: train loss {train_loss:.4f}"
                + ("" if val_f1 is None else f", val macro-F1 {val_f1:.3f}")
                + (" (best)" if improved and val_f1 is not None else "")
                + f", {time.perf_counter() - started:.1f} s")
            if improved:
                best_f1, best_epoch = (val_f1 if val_f1 is not None else best_f1), epoch
                if val_f1 is not None:
                    best_state = {name: p.detach().clone() for name, p in model.named_parameters()
                                  if name in trainable}
            elif params.early_stopping and epoch - best_epoch >= params.patience:
                stopped_early = True
                log(f"early stop: no better validation macro-F1 for {params.patience} epochs; "
                    f"keeping epoch {best_epoch}")
                break

        if params.early_stopping and best_state is not None and best_epoch != epochs[-1]["epoch"]:
            model.load_state_dict(best_state, strict=False)
        model.eval()
        if val_texts:
            scores = scorer.predict_proba(val_texts, batch_size=params.eval_batch_size)
            thresholds = tune_thresholds(val_labels, scores, params.threshold_step)
            validation_metrics = {"tuned": label_metrics(val_labels, scores, thresholds),
                                  "at_0.5": label_metrics(val_labels, scores, np.full(len(LABEL_NAMES), 0.5))}
        else:
            thresholds = np.full(len(LABEL_NAMES), FALLBACK, dtype=np.float32)
            validation_metrics = None

    history = {
        "epochs": epochs,
        "best_epoch": best_epoch,
        "best_val_macro_f1": None if not val_texts else round(best_f1, 6),
        "stopped_early": stopped_early,
        "train_sentences": len(train_texts),
        "validation_sentences": len(val_texts),
        "pos_weight": dict(zip(LABEL_NAMES, (round(float(w), 4) for w in pos_weight.cpu()))),
        "validation": validation_metrics,
    }
    return model, thresholds, history


# ---------------------------------------------------------------------------------------------- the stage


def directory_hash(path: str | os.PathLike) -> str:
    """sha256 over the relative paths and contents of every file under `path`: the data version."""
    root, digest = Path(path), hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _versions(names: Sequence[str]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _language_counts(dataset) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split in dataset.values():
        if "lang" in split.column_names:
            for lang in split["lang"]:
                counts[lang] = counts.get(lang, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def model_card(training: dict, history: dict, thresholds: np.ndarray) -> str:
    """README.md of the classifier directory (a Hugging Face model card)."""
    params, languages = training["params"], training["dataset"]["languages"]
    codes = [code for code in languages if len(code) in (2, 3) and code.isalpha()]
    validation = history["validation"]
    rows = []
    for k, name in enumerate(LABEL_NAMES):
        metrics = validation["tuned"]["labels"][name] if validation else {}
        rows.append(f"| {name} | {thresholds[k]:.2f} | {_fmt(metrics.get('precision'))} | "
                    f"{_fmt(metrics.get('recall'))} | {_fmt(metrics.get('f1'))} | {metrics.get('support', 0)} | "
                    f"{training['dataset']['train_positives'][name]} |")
    definitions = "\n".join(f"- `{label.name}`: {label.description}" for label in LABELS)
    epochs = "\n".join(f"| {e['epoch']} | {e['train_loss']:.4f} | {_fmt(e['val_macro_f1'])} |"
                       for e in history["epochs"])
    macro = _fmt(validation["tuned"]["macro_f1"]) if validation else "n/a"
    macro_half = _fmt(validation["at_0.5"]["macro_f1"]) if validation else "n/a"
    language_list = ", ".join(f"{code} ({count})" for code, count in languages.items()) or "unknown"
    backbone = training["backbone"]
    embeddings = "frozen" if params["freeze_embeddings"] else "trained"
    head = ("the label descriptions (e5 query embeddings of \"query: <description>\", scale "
            f"{params['head_init_scale']})" if params["head_init"] == "descriptions" else "random weights")
    stopped = " (stopped early)" if history["stopped_early"] else ""
    kept = (f"best epoch {history['best_epoch']} of {len(history['epochs'])}{stopped} kept (early stopping on "
            f"validation macro-F1 at 0.5, patience {params['patience']})" if params.get("early_stopping")
            else f"{len(history['epochs'])} epochs, the last kept")
    source = history.get("thresholds_from", "validation split")
    threshold_text = (f"Per-label thresholds maximise F1 on the pooled out-of-fold scores of the same recipe's grouped "
                      f"cross-validation ({source}; documents never seen by the model that scored them), over a grid "
                      f"of step {params['threshold_step']}" if "out-of-fold" in source else
                      f"Per-label thresholds maximise F1 on the validation predictions over a grid of step "
                      f"{params['threshold_step']}")
    training_text = textwrap.fill(
        f"Fine-tuned with BCE on sigmoid outputs, positives of rare labels weighted by neg/pos (capped at "
        f"{params['pos_weight_cap']}); AdamW (encoder lr {params['encoder_lr']}, head lr {params['head_lr']}, weight "
        f"decay {params['weight_decay']}, batch {params['batch_size']}), linear schedule with "
        f"{params['warmup_ratio']:.0%} warm-up; the top {params['trainable_layers'] or 'all'} encoder layers "
        f"trained, word embeddings {embeddings}; translations {'used' if params.get('translations', True) else 'not used'}; "
        f"head initialised from {head}, bias for an initial probability of about {params['initial_probability']}; "
        f"{kept}; seed {params['seed']}. {threshold_text}. The int8 export (the default CPU path) has its own "
        f"thresholds (`int8_thresholds` in thresholds.json), under which it predicts each label as often as fp32 on "
        f"{params.get('int8_calibration_sentences', 0)} training sentences.",
        width=115)
    params_yaml = "\n".join(f"  {key}: {json.dumps(value)}" for key, value in params.items())
    return f"""---
library_name: transformers
pipeline_tag: text-classification
language: [{", ".join(codes)}]
tags: [policytag, multi-label-classification, sentence-classification]
---
# policytag sentence classifier

Tags a sentence of a news article about governments' demands on social media platforms with any of
{len(LABEL_NAMES)} labels (multi-label; a sentence may carry none). Model version (weights hash):
`{training['model_version']}`.

- Architecture: `SentenceTagger` (policytag/model.py): the backbone's BERT encoder, mean pooling over the attention
  mask, dropout {params['dropout']}, a linear layer with one sigmoid output per label. Inputs are NFC-normalised and
  prefixed with `{QUERY_PREFIX.strip()}` as e5 expects, truncated to {params['max_length']} tokens.
- Backbone: {backbone.get('source', 'unknown')}{' (' + backbone['model'] + ')' if backbone.get('model') else ''}.
- Data: the `train` split of the policytag dataset (split by document), version
  `{training['dataset']['version'][:16]}` (sha256 of its files), {history['train_sentences']} sentences
  (translations included); the `validation` documents ({history['validation_sentences']} sentences) are scored
  below; the `test` documents are not used here. Thresholds: {history.get('thresholds_from', 'validation split')}.
- Languages seen in the dataset: {language_list}.

## Use
```python
from policytag.model import Classifier
classifier = Classifier.load("models/classifier")
classifier.predict(["The ministry ordered the platform to remove the posts."])
```
`predict` applies the thresholds below; `predict_proba` gives the scores. `thresholds.json` holds labels and
thresholds, `training_params.json` the parameters and data version, `history.json` the training curve.

## Labels
{definitions}

## Validation metrics (validation documents, at the thresholds above)
Macro-F1 over labels with a positive in validation: {macro} at the tuned thresholds, {macro_half} at 0.5.

| label | threshold | precision | recall | F1 | validation positives | train positives |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

A label with no positive in validation keeps the threshold {FALLBACK} and has no metrics. See the
`evaluate` stage for test-split metrics.

## Training
{training_text}

| epoch | train loss | validation macro-F1 at 0.5 |
|---|---|---|
{epochs}

Parameters (params.yaml `train:`):
```yaml
train:
{params_yaml}
```

## Limits
- Trained on a few thousand hand-labelled sentences of some 150 documents: a register or publisher unlike them (for
  Vietnamese: anything but legal text, which it saw only as translations of English news) may fare worse than the
  grouped cross-validation figures say. See reports/evaluation.md for figures per language, register and source.
- Sentence-level: each sentence is read alone, without its article (pronouns are not resolved).
- Languages other than those listed were not seen in training; the multilingual encoder may transfer, unmeasured.
- Text beyond {params['max_length']} tokens is cut off.
- Labels follow the policytag annotation guidelines; they are topics and claims, not judgements.
"""


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_classifier(out_dir: str | os.PathLike, model: SentenceTagger, tokenizer, thresholds: np.ndarray,
                     history: dict, training: dict, calibration_texts: Sequence[str] = ()) -> Path:
    """Write the classifier directory atomically: built beside `out_dir`, then renamed into place."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        save_classifier(tmp, model, tokenizer, thresholds)
        if calibration_texts:
            from training.int8_thresholds import int8_thresholds

            scores = Classifier(model, tokenizer, list(LABEL_NAMES), thresholds, "calibration",
                                next(model.parameters()).device).predict_proba(calibration_texts)
            write_thresholds(tmp, LABEL_NAMES, thresholds, int8_thresholds(tmp, scores, calibration_texts, thresholds))
        training = {**training, "model_version": weights_version(tmp)}
        _write_json(tmp / "training_params.json", training)
        _write_json(tmp / "history.json", history)
        _write_json(tmp / "metrics.json", _stage_metrics(history))
        (tmp / "README.md").write_text(model_card(training, history, thresholds), encoding="utf-8")
    return out_dir


def _stage_metrics(history: dict) -> dict:
    """Validation metrics for `dvc metrics` (no timings: a rerun gives the same file)."""
    validation = history["validation"] or {}
    tuned = validation.get("tuned", {})
    return {
        "best_epoch": history["best_epoch"],
        "epochs_run": len(history["epochs"]),
        "validation": {
            "macro_f1": tuned.get("macro_f1"),
            "macro_f1_at_0.5": validation.get("at_0.5", {}).get("macro_f1"),
            "f1": {name: m["f1"] for name, m in tuned.get("labels", {}).items()},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
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
        params = TrainParams.from_dict((yaml.safe_load(args.params.read_text(encoding="utf-8")) or {}).get("train"))
    except FileNotFoundError:
        return _fail(f"{args.params} not found; pass --params params.yaml")
    except (ValueError, yaml.YAMLError) as error:
        return _fail(f"{args.params}: {error}")
    if not (args.backbone / "config.json").is_file():
        return _fail(f"{args.backbone} holds no backbone checkpoint; build it with `dvc repro backbone`")
    try:
        from datasets import load_from_disk

        dataset = load_from_disk(str(args.dataset))
        train, validation = dataset["train"], dataset["validation"]
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
    model, thresholds, history = fit(train, validation, params, args.backbone)
    history["thresholds_from"] = "validation split"
    if args.crossval:
        from training.classifier_thresholds import ThresholdSourceError, thresholds_from_crossval

        try:
            thresholds, stability = thresholds_from_crossval(args.crossval, args.crossval_run, asdict(params),
                                                             params.threshold_step)
        except ThresholdSourceError as error:
            return _fail(str(error))
        history["thresholds_from"] = f"out-of-fold scores of {args.crossval / args.crossval_run}.jsonl"
        history["threshold_stability"] = stability
        if len(validation):
            val_texts, val_labels = _texts_and_labels(validation)
            scores = Classifier(model, tokenizer_for(args.backbone), list(LABEL_NAMES), thresholds, "validation",
                                next(model.parameters()).device).predict_proba(val_texts)
            history["validation"] = {"tuned": label_metrics(val_labels, scores, thresholds),
                                     "at_0.5": label_metrics(val_labels, scores, np.full(len(LABEL_NAMES), 0.5))}
    provenance_file = args.backbone / "backbone.json"
    provenance = json.loads(provenance_file.read_text(encoding="utf-8")) if provenance_file.is_file() else {}
    train_labels = np.asarray(training_rows(train, params)["labels"], dtype=np.float32).reshape(-1, len(LABEL_NAMES))
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
        "packages": _versions(["torch", "transformers", "tokenizers", "datasets", "numpy"]),
    }
    tokenizer = AutoTokenizer.from_pretrained(str(args.backbone))
    from training.int8_thresholds import sample_texts

    calibration = sample_texts(train["text"], params.int8_calibration_sentences, params.seed)
    out = write_classifier(args.out, model, tokenizer, thresholds, history, training, calibration)
    if args.metrics:
        with atomic_writer(args.metrics) as handle:
            handle.write(json.dumps(_stage_metrics(history), indent=1) + "\n")
    tuned = (history["validation"] or {}).get("tuned", {})
    _stderr(f"train: best epoch {history['best_epoch']}, validation macro-F1 {_fmt(tuned.get('macro_f1'))} "
            f"(tuned thresholds) -> {out}")
    return 0


def tokenizer_for(backbone: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(backbone))


def _fail(message: str) -> int:
    print(f"train: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
