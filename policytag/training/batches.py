"""Sentences in tokenised batches: the loop every encoder pass of policytag/training/ runs (the head's description
prior, the
zero-shot encoder, the frozen layers' cache)."""

from __future__ import annotations

from typing import Iterator, Sequence

from policytag.model import tokenize


def tokenized_batches(tokenizer, texts: Sequence[str], batch_size: int, max_length: int, prefix: str, *,
                      by_length: bool = False) -> Iterator[tuple[list[int], dict]]:
    """(positions, batch) per batch of `texts`: the positions (into `texts`) it holds and their tokenisation
    (policytag.model.tokenize: NFC, prefix, truncation). In input order, or with `by_length` sorted (stably) by
    character length, so that texts of similar length share a batch and little of it is padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if by_length else list(range(len(texts)))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        yield rows, tokenize(tokenizer, [texts[i] for i in rows], max_length, prefix)
