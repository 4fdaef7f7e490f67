"""The model before training: the pretrained encoder (word embeddings frozen if asked) and an initialised head.

The head's prior (`head_init: descriptions`): e5 embeds a "query: ..." so that related texts lie close, so each
label's weight row starts as the normalised embedding of "query: <label description>", scaled so that a logit is
`head_init_scale` times the cosine between sentence and description, and its bias centres the training sentences'
initial probabilities on `initial_probability`. `head_init: random` keeps the usual random rows (same bias), to
measure whether the prior helps.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import torch

from policytag.labels import LABEL_NAMES, LABELS
from policytag.model import QUERY_PREFIX, SentenceTagger
from policytag.training.batches import tokenized_batches
from policytag.training.params import TrainParams

DESCRIPTION_MAX_LENGTH = 256
HEAD_STATISTICS_SENTENCES = 256


def _sentence_vectors(model: SentenceTagger, tokenizer, texts: Sequence[str], max_length: int, prefix: str,
                      batch_size: int, device, by_length: bool = False) -> torch.Tensor:
    """Pooled vectors of `texts`: in input order, or with `by_length` in length order (batches of similar length,
    little padding: for statistics that do not depend on the order)."""
    vectors = [model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device))
               for _, batch in tokenized_batches(tokenizer, texts, batch_size, max_length, prefix,
                                                 by_length=by_length)]
    return torch.cat(vectors).float()


def init_head(model: SentenceTagger, tokenizer, params: TrainParams, train_texts: Sequence[str]) -> None:
    """Set the head as `params.head_init` says (see the module docstring); the bias makes initial probabilities low."""
    from policytag.training import precision

    device = next(model.parameters()).device
    prior = math.log(params.initial_probability / (1 - params.initial_probability))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        if params.head_init == "descriptions":
            if list(model.config.label_names) != list(LABEL_NAMES):
                raise ValueError("head_init 'descriptions' needs the schema's labels, in schema order")
            descriptions = [label.description for label in LABELS]
            # Statistics of the training sentences: their mean norm turns w·h into scale * cosine, and their
            # mean score per label centres the bias. The encoder passes run in the training passes' precision
            # (bf16 where native); the vectors and the head are float32.
            rng = np.random.default_rng(params.seed)
            sample = [train_texts[i] for i in sorted(rng.permutation(len(train_texts))[:HEAD_STATISTICS_SENTENCES])]
            with precision.autocast(device, precision.resolve(params.mixed_precision, device)):
                rows = _sentence_vectors(model, tokenizer, descriptions, DESCRIPTION_MAX_LENGTH, QUERY_PREFIX,
                                         params.eval_batch_size, device)
                vectors = _sentence_vectors(model, tokenizer, sample, params.max_length, model.config.input_prefix,
                                            params.eval_batch_size, device, by_length=True)
            rows = torch.nn.functional.normalize(rows, dim=-1)
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
