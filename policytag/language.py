"""Language of a sentence, with its article's language as the prior for text too short to tell.

py3langid walks each text's bytes through a finite automaton one byte at a time in Python, which is most of the
time segmentation takes. detect_many walks many texts at once, one byte position at a time with numpy over all
the texts still going, and finishes the few longest in Python; the features, and so every probability, are
bit for bit py3langid's (tests/policytag/test_tag_pipeline.py compares them).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from typing import Sequence

import numpy as np

MIN_CONFIDENCE = 0.8
MIN_CHARACTERS = 20
VECTOR_TEXTS = 16
"""Below this many texts still walking, numpy's cost per step is more than Python's per byte: the rest go on in
Python."""


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _automaton() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """py3langid's automaton as arrays: next state (at row base + byte), row base, feature (or -1) per state."""
    identifier = _identifier()
    return (np.frombuffer(identifier.tk_nextmove, dtype=np.dtype(identifier.tk_nextmove.typecode)),
            np.asarray(identifier._rowbase, dtype=np.int64), np.asarray(identifier.tk_output, dtype=np.int32))


@lru_cache(maxsize=1)
def _weights() -> np.ndarray:
    """py3langid's feature weights (float16) as float32, made once: its matrix product with a text's counts
    (float32) casts the rows it takes to float32 anyway, and that cast, on every call, was half the time of
    scoring a sentence. The products are the same, bit for bit; it costs 57 MB."""
    return _identifier().nb_ptc.astype(np.float32)


def detect(text: str) -> tuple[str, float]:
    """ISO 639-1 code and its probability."""
    lang, probability = _identifier().classify(text)
    return lang, float(probability)


def _features(encoded: list[bytes]) -> list[list[int]]:
    """Each text's features in the order its walk meets them (py3langid.langid.visit_counts, before counting)."""
    identifier = _identifier()
    nextmove, rowbase, output = _automaton()
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    lengths = np.array([len(encoded[i]) for i in order], dtype=np.int64)
    steps = int(lengths[VECTOR_TEXTS - 1]) if len(order) >= VECTOR_TEXTS else 0  # numpy while that many go on
    columns = np.zeros((steps, len(order)), dtype=np.uint8)  # byte t of each text, longest texts first
    for column, i in enumerate(order):
        data = np.frombuffer(encoded[i], dtype=np.uint8)[:steps]
        columns[: len(data), column] = data
    walking = np.searchsorted(-lengths, -np.arange(steps), side="left")  # at step t: the texts longer than t
    state = np.zeros(len(order), dtype=np.int64)
    emitted = np.empty((steps, len(order)), dtype=np.int32)  # features of the walk so far (-1: none)
    for t in range(steps):
        k = walking[t]
        moved = nextmove[rowbase[state[:k]] + columns[t, :k]]
        state[:k] = moved
        emitted[t, :k] = output[moved]
    features: list[list[int]] = [[] for _ in encoded]
    python_nextmove, python_rowbase, python_output = identifier.tk_nextmove, identifier._rowbase, identifier.tk_output
    for column, i in enumerate(order):
        done = min(steps, len(encoded[i]))
        found = emitted[:done, column]
        features[i] = found[found >= 0].tolist()
        current, append = int(state[column]), features[i].append
        for letter in encoded[i][done:]:  # py3langid's loop, from where the walk above stopped
            current = python_nextmove[python_rowbase[current] + letter]
            feature = python_output[current]
            if feature >= 0:
                append(feature)
    return features


def detect_many(texts: Sequence[str]) -> list[tuple[str, float]]:
    """detect() of each text, the same results, several times faster on many texts (see the module docstring).
    After the walk, this is py3langid's LanguageIdentifier.classify (norm_probs, no minimum confidence), step
    by step."""
    identifier, weights = _identifier(), _weights()
    encoded = [identifier._encode(text) for text in texts]
    results = []
    for data, features in zip(encoded, _features(encoded)):
        if features:
            visits = Counter(features)
            indexes = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
            counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
            scores = np.log1p(counts) @ weights[indexes] + identifier.nb_pc
        else:
            scores = np.full(len(identifier.nb_classes), 0.0, dtype=np.float32)
        scores *= 1.0 / math.sqrt(len(data) or 1)
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        for first, alias in identifier._alias_pairs:
            scores[first] += scores[alias]
            scores[alias] = 0.0
        best = int(scores.argmax())
        results.append((identifier.nb_classes[best], float(scores[best])))
    return results


def detect_language(text: str, fallback: str) -> str:
    """The sentence's own language when it is long and clear enough, else `fallback` (the article's)."""
    if len(text) < MIN_CHARACTERS:
        return fallback
    lang, probability = detect(text)
    return lang if probability >= MIN_CONFIDENCE else fallback


def detect_languages(texts: Sequence[str], fallbacks: Sequence[str]) -> list[str]:
    """detect_language of each (text, fallback), with detect_many."""
    long = [i for i, text in enumerate(texts) if len(text) >= MIN_CHARACTERS]
    found = dict(zip(long, detect_many([texts[i] for i in long])))
    return [found[i][0] if i in found and found[i][1] >= MIN_CONFIDENCE else fallback
            for i, fallback in enumerate(fallbacks)]
