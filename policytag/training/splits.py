"""Splits and folds by document: no document contributes sentences to two splits or two folds.

Sentences of one document share its wording, its topic and often its very phrases; a model scored on sentences
whose neighbours it was trained on is scored on memory. So whole document groups (a document with its
translations) are assigned, by a grouped form of iterative stratification (Sechidis et al. 2011): each group is a
bag of stratum counts, one stratum per (label or "none", language) and per (label or "none", register) of its
original sentences; the rarest stratum still unassigned is handled first, its groups (largest first) each going to
the bucket that still lacks most of it (ties: the bucket furthest below its size, then a seeded random order). So
rare labels, both languages and every register reach every split and fold as far as the documents allow.

Translations are training material only: they follow their group into training and are never held out; a split or
fold that holds a group out drops that group's translations altogether.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RowFacts:
    """What the splitter needs to know of each row (sentence), in row order."""

    groups: Sequence[str]
    """The document group of each row (a translation carries its source document's group)."""
    strata: Sequence[Sequence[str]]
    """Each row's stratum keys, e.g. ["privacy|vi", "privacy|statute"]; translations' strata are ignored."""
    translation: Sequence[bool]

    def __post_init__(self):
        if not len(self.groups) == len(self.strata) == len(self.translation):
            raise ValueError("groups, strata and translation must have one entry per row")


def row_strata(labels: Sequence[str], lang: str, register: str) -> list[str]:
    """Stratum keys of one sentence: each of its labels (or "none") crossed with its language and its register."""
    names = list(labels) or ["none"]
    return [f"{name}|lang={lang}" for name in names] + [f"{name}|register={register}" for name in names]


def assign_groups(counts: np.ndarray, sizes: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Bucket index of each group, from its stratum counts [groups, strata] and sizes [groups] (sentences)."""
    counts, sizes = np.asarray(counts, dtype=np.float64), np.asarray(sizes, dtype=np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    if (fractions <= 0).any():
        raise ValueError(f"every split fraction must be positive, got {list(fractions)}")
    fractions = fractions / fractions.sum()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts))  # seeded order among equals
    bucket_rank = rng.permutation(len(fractions))  # seeded tie-break among equally needy buckets
    wanted = fractions[:, None] * counts.sum(axis=0)[None, :]
    wanted_size = fractions * sizes.sum()
    assigned = np.full(len(counts), -1)

    def place(group: int, stratum: int | None) -> None:
        need = wanted[:, stratum] if stratum is not None else np.zeros(len(fractions))
        bucket = max(range(len(fractions)), key=lambda b: (need[b], wanted_size[b], -bucket_rank[b]))
        assigned[group] = bucket
        wanted[bucket] -= counts[group]
        wanted_size[bucket] -= sizes[group]

    while (assigned < 0).any():
        open_groups = order[assigned[order] < 0]
        left = counts[open_groups].sum(axis=0)
        present = np.flatnonzero(left > 0)
        if not len(present):  # groups with no stratum at all: by size alone
            for group in open_groups:
                place(int(group), None)
            break
        stratum = int(present[np.argmin(left[present])])
        holders = [int(g) for g in open_groups if counts[g, stratum] > 0]
        for group in sorted(holders, key=lambda g: -counts[g, stratum]):  # stable: seeded order among equals
            place(group, stratum)
    _fill_empty_buckets(assigned, sizes, fractions)
    return assigned


def _fill_empty_buckets(assigned: np.ndarray, sizes: np.ndarray, fractions: np.ndarray) -> None:
    """With few groups a bucket can stay empty: give it the smallest group of the bucket most over its size."""
    for bucket in range(len(fractions)):
        while not (assigned == bucket).any():
            totals = np.array([sizes[assigned == b].sum() for b in range(len(fractions))])
            donors = [b for b in range(len(fractions)) if (assigned == b).sum() > 1]
            if not donors:
                return
            donor = max(donors, key=lambda b: totals[b] - fractions[b] * sizes.sum())
            members = np.flatnonzero(assigned == donor)
            assigned[members[np.argmin(sizes[members])]] = bucket


def _group_table(facts: RowFacts) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Group names (first-seen order), stratum counts [groups, strata] and sizes, from original rows only."""
    names = list(dict.fromkeys(facts.groups))
    index = {name: i for i, name in enumerate(names)}
    strata = sorted({key for row, keys in enumerate(facts.strata) if not facts.translation[row] for key in keys})
    column = {key: j for j, key in enumerate(strata)}
    counts = np.zeros((len(names), max(1, len(strata))))
    sizes = np.zeros(len(names))
    for row, keys in enumerate(facts.strata):
        if facts.translation[row]:
            continue
        g = index[facts.groups[row]]
        sizes[g] += 1
        for key, n in Counter(keys).items():
            counts[g, column[key]] += n
    return names, counts, sizes


def group_buckets(facts: RowFacts, fractions: Sequence[float], seed: int) -> np.ndarray:
    """The bucket of each row (its group's bucket)."""
    names, counts, sizes = _group_table(facts)
    if len(names) < len(fractions):
        raise ValueError(f"{len(names)} document group(s) cannot fill {len(fractions)} splits or folds; "
                         "add documents or ask for fewer folds")
    bucket_of = dict(zip(names, assign_groups(counts, sizes, fractions, seed)))
    return np.array([bucket_of[group] for group in facts.groups], dtype=np.int64)


def train_validation_test(facts: RowFacts, validation: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split, plus `held_out_translations`: translations of validation and test documents,
    which no split may use (they are kept so that cross-validation folds can train on them)."""
    if not (0 < validation and 0 < test and validation + test < 1):
        raise ValueError(f"validation ({validation}) and test ({test}) fractions must be positive and sum below 1")
    buckets = group_buckets(facts, [1 - validation - test, validation, test], seed)
    translation = np.asarray(facts.translation, dtype=bool)
    rows = np.arange(len(buckets))
    return {
        "train": rows[buckets == 0],
        "validation": rows[(buckets == 1) & ~translation],
        "test": rows[(buckets == 2) & ~translation],
        "held_out_translations": rows[(buckets > 0) & translation],
    }


def k_folds(facts: RowFacts, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, held-out rows) of each of `folds` grouped folds: held-out rows are the fold's original
    sentences; training rows are the other folds' sentences and translations."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {folds}")
    buckets = group_buckets(facts, [1.0] * folds, seed)
    translation = np.asarray(facts.translation, dtype=bool)
    rows = np.arange(len(buckets))
    return [(rows[buckets != k], rows[(buckets == k) & ~translation]) for k in range(folds)]
