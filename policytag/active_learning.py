"""Which unlabelled sentences an annotator should see first.

Informativeness of a sentence = the label-weighted mean of its per-label uncertainty, where a label's uncertainty
is 1 when the score sits on that label's decision threshold and 0 at either extreme (0 or 1). Rare labels weigh
more (1/sqrt(positives + 1)), since one more positive of a label with four examples is worth more than one more
censorship_demand. Diversity: the queue is built greedily (maximal marginal relevance), each pick's value reduced
by `diversity` x its highest cosine similarity to a sentence already queued, so near-duplicates (statute clauses,
repeated boilerplate) do not crowd the top of the queue.
"""

from __future__ import annotations

import numpy as np


def label_uncertainty(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """[n, labels] in [0, 1]: 1 on the threshold, falling linearly to 0 at a score of 0 or 1."""
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-6, 1 - 1e-6)
    distance = np.where(p >= t, (p - t) / (1 - t), (t - p) / t)
    return 1.0 - np.clip(distance, 0.0, 1.0)


def rarity_weights(positives_per_label: np.ndarray) -> np.ndarray:
    weights = 1.0 / np.sqrt(np.asarray(positives_per_label, dtype=np.float64) + 1.0)
    return weights / weights.sum()


def informativeness(probabilities: np.ndarray, thresholds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return label_uncertainty(probabilities, thresholds) @ np.asarray(weights, dtype=np.float64)


def rank(scores: np.ndarray, embeddings: np.ndarray | None = None, diversity: float = 0.5,
         limit: int | None = None) -> list[int]:
    """Row indices in queue order: highest score first, discounted by similarity to what is already queued."""
    scores = np.asarray(scores, dtype=np.float64)
    count = len(scores) if limit is None else min(limit, len(scores))
    if embeddings is None or diversity <= 0:
        return [int(i) for i in np.argsort(-scores, kind="stable")[:count]]
    vectors = np.asarray(embeddings, dtype=np.float64)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    closest = np.zeros(len(scores))
    taken = np.zeros(len(scores), dtype=bool)
    order = []
    for _ in range(count):
        value = np.where(taken, -np.inf, scores - diversity * closest)
        pick = int(np.argmax(value))
        order.append(pick)
        taken[pick] = True
        closest = np.maximum(closest, vectors @ vectors[pick])
    return order
