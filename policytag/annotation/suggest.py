"""`policytag annotate suggest`: score the sentences that have no annotation yet with the current classifier, put
them in order of informativeness (policytag/active_learning.py) and push them to Label Studio in that order, each
with the model's prediction attached, so annotators see the most useful sentences first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policytag.active_learning import informativeness, rank, rarity_weights
from policytag.annotations import read_annotation_dir, resolve
from policytag.labels import LABEL_NAMES
from policytag.records import Sentence, write_jsonl


@dataclass
class Suggestion:
    rank: int
    sentence_id: str
    article_id: str
    informativeness: float
    scores: dict[str, float]
    text: str


def score_and_embed(classifier, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-label probabilities and the pooled sentence vectors the classifier's head sees, in input order."""
    import torch

    from policytag.model import tokenize

    model, config = classifier.model, classifier.model.config
    probabilities = np.zeros((len(texts), len(classifier.labels)), dtype=np.float32)
    embeddings = np.zeros((len(texts), config.encoder_config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenize(classifier.tokenizer, [texts[i] for i in rows], config.max_length, config.input_prefix)
            pooled = model.embed(batch["input_ids"].to(classifier.device),
                                 batch["attention_mask"].to(classifier.device))
            probabilities[rows] = torch.sigmoid(model.head(pooled)).float().cpu().numpy()
            embeddings[rows] = pooled.float().cpu().numpy()
    return probabilities, embeddings


def positives_per_label(annotation_dir: Path) -> np.ndarray:
    resolved = resolve(read_annotation_dir(annotation_dir)) if annotation_dir.exists() else {}
    return np.array([sum(name in r.labels for r in resolved.values()) for name in LABEL_NAMES], dtype=float)


def suggest(sentences: list[Sentence], classifier, annotation_dir: Path, diversity: float = 0.5,
            limit: int | None = None) -> list[Suggestion]:
    """The unannotated sentences, most informative first."""
    annotated = {a.sentence_id for a in read_annotation_dir(annotation_dir)} if annotation_dir.exists() else set()
    candidates = [s for s in sentences if s.id not in annotated]
    if not candidates:
        return []
    probabilities, embeddings = score_and_embed(classifier, [s.text for s in candidates])
    counts = positives_per_label(annotation_dir)
    weights = rarity_weights(np.array([counts[LABEL_NAMES.index(label)] for label in classifier.labels]))
    value = informativeness(probabilities, classifier.thresholds, weights)
    order = rank(value, embeddings, diversity=diversity, limit=limit)
    return [Suggestion(position + 1, candidates[i].id, candidates[i].article_id, round(float(value[i]), 4),
                       {label: round(float(p), 4) for label, p in zip(classifier.labels, probabilities[i])},
                       candidates[i].text)
            for position, i in enumerate(order)]


def write_queue(path: Path, suggestions: list[Suggestion]) -> None:
    write_jsonl(path, suggestions)
