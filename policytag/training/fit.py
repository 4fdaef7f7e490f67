"""Fine-tuning in memory: `fit` trains the sentence classifier on a train split and tunes one decision threshold
per label on a validation split, writing nothing (the train stage, policytag/training/train.py, writes the result; the
crossval stage calls `fit` once per fold).

How: sigmoid outputs with BCE, positives of rare labels weighted by neg/pos (capped); AdamW, one learning rate for
the encoder and a higher one for the new head, linear decay after a warm-up; the word embeddings frozen by default
(they are most of e5-small's weights and get few useful updates from a few hundred sentences); optional early
stopping on validation macro-F1, keeping the best epoch's weights; thresholds that maximise each label's F1 on the
validation predictions, never the test split (policytag/training/thresholds.py, shared with the baselines). The head
starts from the label descriptions (policytag/training/head_init.py). The forward passes of training run in bf16
where the hardware has it (`train.mixed_precision`, policytag/training/precision.py); scores stay float32.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch

from policytag.labels import LABEL_NAMES
from policytag.model import Classifier, SentenceTagger, tokenize
from policytag.training import frozen_layers, precision
from policytag.training.data import split_arrays
from policytag.training.head_init import initial_model
from policytag.training.metrics import label_metrics, macro_f1
from policytag.training.params import TrainParams
from policytag.training.thresholds import FALLBACK, tune_thresholds


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


def adamw(model: SentenceTagger, encoder_lr: float, head_lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters: the encoder at encoder_lr, the head at head_lr; no weight decay on
    biases and LayerNorms."""
    groups = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        lr = head_lr if name.startswith("head.") else encoder_lr
        decay = 0.0 if name.endswith("bias") or "LayerNorm" in name else weight_decay
        groups.setdefault((lr, decay), []).append(parameter)
    param_groups = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
    # The fused kernel updates all tensors in a few large kernels instead of the default per-tensor loop (on 2 CPU
    # cores, a top-3-layer training step about 12% faster); it needs float32 tensors on a CPU or GPU.
    tensors = [parameter for group in param_groups for parameter in group["params"]]
    fused = all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in tensors)
    return torch.optim.AdamW(param_groups, fused=fused or None)


def linear_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def optimizer_step(model: torch.nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler,
                   max_grad_norm: float) -> None:
    """Backpropagate `loss`, clip the gradients' norm (when max_grad_norm > 0), step optimizer and schedule."""
    loss.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], max_grad_norm,
                                       foreach=True)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


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


def _train_epoch(model: SentenceTagger, tokenizer, params: TrainParams, texts: Sequence[str], labels: np.ndarray,
                 batches: list[np.ndarray], pos_weight: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler,
                 cached: frozen_layers.FrozenStates | None, frozen: int, mixed_precision: str = "fp32") -> float:
    """One pass over `batches` (rows of `texts`); the mean training loss per sentence. With `frozen` bottom
    layers, their cached output is the input of the trainable top. The forward runs in `mixed_precision`, the
    loss in float32."""
    device = pos_weight.device
    model.train()
    total_loss = 0.0
    for batch_rows in batches:
        targets = torch.from_numpy(labels[batch_rows]).to(device)
        with precision.autocast(device, mixed_precision):
            if frozen:
                hidden, mask = cached.batch(batch_rows)
                logits = frozen_layers.top_logits(model, hidden.to(device), mask.to(device), frozen)
            else:
                batch = tokenize(tokenizer, [texts[i] for i in batch_rows], params.max_length,
                                 model.config.input_prefix)
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=pos_weight)
        optimizer_step(model, loss, optimizer, scheduler, params.max_grad_norm)
        total_loss += loss.item() * len(batch_rows)
    return total_loss / len(texts)


def _validation_scores(model: SentenceTagger, scorer: Classifier, texts: Sequence[str], batch_size: int,
                       cached: frozen_layers.FrozenStates | None, frozen: int) -> np.ndarray:
    """Scores [texts, labels] of the model in eval mode (through the cached bottom layers when frozen)."""
    if not frozen:
        return scorer.predict_proba(texts, batch_size=batch_size)
    return frozen_layers.cached_scores(model, cached, frozen, batch_size)


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
    train_texts, train_labels = split_arrays(train)
    val_texts, val_labels = split_arrays(validation)
    if not train_texts:
        raise ValueError("the train split is empty: nothing to train on")

    with seeded(params.seed):
        tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
        model = initial_model(backbone_dir, params, train_texts, tokenizer, device)
        scorer = Classifier(model, tokenizer, list(LABEL_NAMES), np.full(len(LABEL_NAMES), 0.5, np.float32),
                            "in-training", device)
        mixed_precision = precision.resolve(params.mixed_precision, device)
        frozen, cached, cached_val = 0, None, None
        if 0 < params.trainable_layers < len(frozen_layers.layers(model)):
            frozen = frozen_layers.freeze_bottom(model, params.trainable_layers)
            cached = frozen_layers.FrozenStates(model, tokenizer, train_texts, frozen, params.max_length,
                                                params.eval_batch_size, state_cache, mixed_precision)
            cached_val = frozen_layers.FrozenStates(model, tokenizer, val_texts, frozen, params.max_length,
                                                    params.eval_batch_size, state_cache, mixed_precision)
        pos_weight = torch.from_numpy(positive_weights(train_labels, params.pos_weight_cap)).to(device)
        optimizer = adamw(model, params.encoder_lr, params.head_lr, params.weight_decay)
        steps = math.ceil(len(train_texts) / params.batch_size) * params.epochs
        scheduler = linear_warmup(optimizer, int(params.warmup_ratio * steps), steps)
        order_rng = np.random.default_rng(params.seed)
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}

        epochs, best_f1, best_epoch, best_state, stopped_early = [], -1.0, 0, None, False
        for epoch in range(1, params.epochs + 1):
            started = time.perf_counter()
            lengths = [state.shape[0] for state in cached.states] if frozen else None
            batches = batches_by_length(order_rng, len(train_texts), params.batch_size, lengths)
            train_loss = _train_epoch(model, tokenizer, params, train_texts, train_labels, batches, pos_weight,
                                      optimizer, scheduler, cached, frozen, mixed_precision)
            model.eval()
            val_f1 = None
            if val_texts:
                scores = _validation_scores(model, scorer, val_texts, params.eval_batch_size, cached_val, frozen)
                val_f1 = macro_f1(val_labels, scores >= 0.5, present_only=True)
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
            scores = _validation_scores(model, scorer, val_texts, params.eval_batch_size, cached_val, frozen)
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
        "mixed_precision": mixed_precision,
        "train_sentences": len(train_texts),
        "validation_sentences": len(val_texts),
        "pos_weight": dict(zip(LABEL_NAMES, (round(float(w), 4) for w in pos_weight.cpu()))),
        "validation": validation_metrics,
    }
    return model, thresholds, history
