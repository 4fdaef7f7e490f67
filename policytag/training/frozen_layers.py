"""Training only the top encoder layers, with the frozen bottom's output computed once.

With `train.trainable_layers: K` (fewer than the encoder's layers), the word embeddings and the bottom layers are
frozen and run once per sentence, in eval mode; every epoch then runs only the top K layers, the pooling and the
head. On a CPU this makes an epoch several times cheaper than a full forward and backward pass, which is what
lets cross-validation of the transformer fit in the pipeline's time budget.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from policytag.model import SentenceTagger, mean_pool
from policytag.training import precision
from policytag.training.batches import tokenized_batches


def layers(model: SentenceTagger):
    return model.encoder.encoder.layer


def freeze_bottom(model: SentenceTagger, trainable_layers: int) -> int:
    """Freeze embeddings and all but the top `trainable_layers` layers; return how many layers are frozen."""
    frozen = max(0, len(layers(model)) - trainable_layers)
    for parameter in model.encoder.embeddings.parameters():
        parameter.requires_grad_(False)
    for layer in layers(model)[:frozen]:
        for parameter in layer.parameters():
            parameter.requires_grad_(False)
    return frozen


class FrozenStates:
    """The hidden states after the frozen layers, per sentence (unpadded), in input order.

    The frozen layers are the pretrained ones, the same in every fold of a cross-validation: `cache` (a dict the
    caller keeps, keyed by frozen layers, length limit, precision and text) lets the folds compute each sentence
    once. Sentences run in batches of similar length, so little of the work is padding. `mixed_precision` ("bf16" or
    "fp32", policytag/training/precision.py) is what the pass runs in; the states are kept in float32."""

    def __init__(self, model: SentenceTagger, tokenizer, texts: Sequence[str], frozen: int, max_length: int,
                 batch_size: int = 64, cache: dict | None = None, mixed_precision: str = "fp32"):
        cache = {} if cache is None else cache
        keys = [(frozen, max_length, mixed_precision, text) for text in texts]
        missing = list(dict.fromkeys(key for key in keys if key not in cache))
        if missing:
            device = next(model.parameters()).device
            was_training = model.training
            model.eval()
            with torch.no_grad(), precision.autocast(device, mixed_precision):
                for rows, batch in tokenized_batches(tokenizer, [key[3] for key in missing], batch_size, max_length,
                                                     model.config.input_prefix, by_length=True):
                    chunk = [missing[i] for i in rows]
                    mask = batch["attention_mask"].to(device)
                    output = model.encoder(input_ids=batch["input_ids"].to(device), attention_mask=mask,
                                           output_hidden_states=True)
                    hidden = output.hidden_states[frozen]
                    for row, key in enumerate(chunk):
                        cache[key] = hidden[row, : int(mask[row].sum())].float().clone()
            model.train(was_training)
        self.states: list[torch.Tensor] = [cache[key] for key in keys]

    @classmethod
    def of(cls, states: Sequence[torch.Tensor]) -> "FrozenStates":
        """States computed elsewhere (unpadded [tokens, hidden] per sentence), batched the same way."""
        made = cls.__new__(cls)
        made.states = list(states)
        return made

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded hidden states [batch, length, hidden] and their attention mask [batch, length]."""
        picked = [self.states[i] for i in rows]
        length = max(state.shape[0] for state in picked)
        hidden = picked[0].new_zeros((len(picked), length, picked[0].shape[1]))
        mask = torch.zeros((len(picked), length), dtype=torch.long, device=hidden.device)
        for i, state in enumerate(picked):
            hidden[i, : state.shape[0]] = state
            mask[i, : state.shape[0]] = 1
        return hidden, mask


def top_outputs(model: SentenceTagger, hidden: torch.Tensor, mask: torch.Tensor, frozen: int) -> list[torch.Tensor]:
    """Run the layers above the `frozen` bottom ones on cached states: each one's output [batch, length, hidden]."""
    additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
    outputs = []
    for layer in layers(model)[frozen:]:
        output = layer(hidden, attention_mask=additive)
        hidden = output[0] if isinstance(output, tuple) else output
        outputs.append(hidden)
    return outputs


def pooled_logits(model: SentenceTagger, last_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean pooling, dropout and head on the encoder's last output: the logits."""
    return model.head(model.dropout(mean_pool(last_hidden, mask)))


def top_logits(model: SentenceTagger, hidden: torch.Tensor, mask: torch.Tensor, frozen: int) -> torch.Tensor:
    """Run the top layers, mean pooling, dropout and head on cached states: the same logits as model(...)."""
    return pooled_logits(model, top_outputs(model, hidden, mask, frozen)[-1], mask)


def frozen_count(model: SentenceTagger, trainable_layers: int) -> int:
    """How many bottom layers `trainable_layers` leaves frozen (0: the whole encoder trains)."""
    total = len(layers(model))
    return total - trainable_layers if 0 < trainable_layers < total else 0


def cached_scores(model: SentenceTagger, states: FrozenStates, frozen: int, batch_size: int) -> np.ndarray:
    """Sigmoid scores [sentences, labels] of `states`' sentences, in their order, through the top layers only (eval
    mode: no dropout); batches of similar length, so that little of each is padding."""
    order = sorted(range(len(states.states)), key=lambda row: states.states[row].shape[0])
    scores = torch.zeros((len(order), model.head.out_features))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            scores[rows] = torch.sigmoid(top_logits(model, *states.batch(rows), frozen)).float().cpu()
    model.train(was_training)
    return scores.numpy()
