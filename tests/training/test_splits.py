"""Splits and folds by document: unit properties on synthetic groups, and the real corpus as the dataset stage
splits it (no document, and no translation of one, on two sides of a split or a fold)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from policytag.training.splits import RowFacts, assign_groups, k_folds, row_strata, train_validation_test


def synthetic_facts(groups: int = 60, seed: int = 0) -> RowFacts:
    """Documents of 3-30 sentences; a rare label in 6 documents; two languages; every fifth group translated."""
    rng = np.random.default_rng(seed)
    names, strata, translation = [], [], []
    for g in range(groups):
        lang = "vi" if g % 3 == 0 else "en"
        for _ in range(int(rng.integers(3, 30))):
            labels = ["common"] if rng.random() < 0.5 else []
            if g % 10 == 0 and rng.random() < 0.5:
                labels.append("rare")
            names.append(f"doc{g}")
            strata.append(row_strata(labels, lang, "news"))
            translation.append(False)
        if g % 5 == 0:
            for _ in range(4):
                names.append(f"doc{g}")
                strata.append(row_strata(["common"], "vi", "translation"))
                translation.append(True)
    return RowFacts(names, strata, translation)


def test_train_validation_test_keeps_documents_whole_and_translations_in_training():
    facts = synthetic_facts()
    splits = train_validation_test(facts, 0.15, 0.2, seed=13)
    groups = {name: {facts.groups[i] for i in rows} for name, rows in splits.items()}
    assert not groups["train"] & groups["validation"] and not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    assert groups["held_out_translations"] <= groups["validation"] | groups["test"]
    for name in ("validation", "test"):
        assert not any(facts.translation[i] for i in splits[name])
    every_row = np.sort(np.concatenate(list(splits.values())))
    assert list(every_row) == list(range(len(facts.groups))), "every row once"
    originals = sum(not t for t in facts.translation)
    for name, fraction in (("validation", 0.15), ("test", 0.2)):
        assert abs(len(splits[name]) / originals - fraction) < 0.08
        rare = sum("rare|lang=en" in facts.strata[i] or "rare|lang=vi" in facts.strata[i] for i in splits[name])
        assert rare > 0, f"the rare label reaches {name}"
    languages = {name: {key.split("=")[1] for i in splits[name] for key in facts.strata[i] if "|lang=" in key}
                 for name in ("train", "validation", "test")}
    assert all(langs == {"en", "vi"} for langs in languages.values())


def test_k_folds_are_grouped_and_hold_out_originals_only():
    facts = synthetic_facts()
    folds = k_folds(facts, 5, seed=13)
    held = np.concatenate([held_out for _, held_out in folds])
    assert sorted(held) == [i for i, t in enumerate(facts.translation) if not t], "each original held out once"
    for training, held_out in folds:
        held_groups = {facts.groups[i] for i in held_out}
        assert not held_groups & {facts.groups[i] for i in training}, "no document on both sides of a fold"
        assert not any(facts.translation[i] for i in held_out)
    assert all(any("rare" in key for i in held_out for key in facts.strata[i]) for _, held_out in folds)


def test_assignment_is_seeded_and_respects_fractions():
    facts = synthetic_facts(seed=3)
    first = train_validation_test(facts, 0.15, 0.2, seed=7)
    again = train_validation_test(facts, 0.15, 0.2, seed=7)
    other = train_validation_test(facts, 0.15, 0.2, seed=8)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert any(not np.array_equal(first[k], other[k]) for k in first)
    counts = np.array([[3, 0], [0, 1], [2, 2], [1, 0]] * 5, dtype=float)
    buckets = assign_groups(counts, counts.sum(axis=1) + 1, [0.5, 0.5], seed=1)
    assert set(Counter(buckets.tolist())) == {0, 1}


def test_too_few_documents_and_bad_fractions_are_clear_errors():
    facts = RowFacts(["a", "a", "b"], [["x|lang=en"]] * 3, [False] * 3)
    with pytest.raises(ValueError, match="2 document group"):
        k_folds(facts, 3, seed=1)
    with pytest.raises(ValueError, match="fractions"):
        train_validation_test(facts, 0.6, 0.5, seed=1)


@pytest.fixture(scope="module")
def real_dataset(repo, tmp_path_factory):
    """The corpus as the dataset stage splits it: data/raw segmented, data/annotations resolved."""
    import yaml

    from policytag.records import write_jsonl
    from policytag.segment import segment_files
    from policytag.training.dataset import build_dataset, labelled_rows

    done, skipped = segment_files([repo / "data" / "raw"])
    assert not skipped
    sentences = tmp_path_factory.mktemp("real") / "sentences.jsonl"
    write_jsonl(sentences, [s for item in done for s in item.sentences])
    rows, _ = labelled_rows(sentences, repo / "data" / "annotations", repo / "data" / "raw")
    params = yaml.safe_load((repo / "params.yaml").read_text())["dataset"]
    return build_dataset(rows, params["validation_fraction"], params["test_fraction"], params["seed"])


def test_the_real_dataset_has_no_document_in_two_splits_or_folds(real_dataset, repo):
    import yaml

    from policytag.training.crossval import crossval_rows
    from policytag.training.dataset import row_facts

    groups = {name: set(split["group"]) for name, split in real_dataset.items()}
    articles = {name: set(split["article_id"]) for name, split in real_dataset.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not groups[a] & groups[b] and not articles[a] & articles[b]
    assert not groups["held_out_translations"] & groups["train"]
    for name in ("validation", "test"):
        assert not any(real_dataset[name]["translation"])
        assert set(real_dataset[name]["lang"]) >= {"en", "vi"}
    rows = crossval_rows(real_dataset)
    assert not set(rows["group"]) & groups["test"]
    crossval = yaml.safe_load((repo / "params.yaml").read_text())["crossval"]
    folds = k_folds(row_facts(rows), crossval["folds"], crossval["seed"])
    group_of = rows["group"]
    seen: dict[str, int] = {}
    for fold, (training, held_out) in enumerate(folds):
        held_groups = {group_of[i] for i in held_out}
        assert not held_groups & {group_of[i] for i in training}
        for group in held_groups:
            assert seen.setdefault(group, fold) == fold, f"{group} in two folds"
