"""The dataset stage on the real sentences, with annotations written the way pull writes them."""

import json

import numpy as np
import pytest
from datasets import load_from_disk

from policytag.labels import LABEL_NAMES
from policytag.records import Annotation, read_sentences, write_jsonl
from training.dataset import main

PARAMS = "dataset:\n  seed: 13\n  validation_fraction: 0.15\n  test_fraction: 0.2\n"


@pytest.fixture()
def annotated(tmp_path, sentences_file):
    """Every sentence labelled by one annotator from a keyword rule; one sentence tied between two annotators."""
    sentences = read_sentences(sentences_file)
    rule = {"censor": "censorship_demand", "identif": "privacy", "child": "child_safety",
            "intellectual": "intellectual_property", "tax": "taxation", "sovereign": "sovereignty"}
    lines = [Annotation(s.id, "a@example.org", sorted({v for k, v in rule.items() if k in s.text.lower()},
                                                        key=LABEL_NAMES.index), s.text, s.article_id)
             for s in sentences]
    tied = sentences[5]
    lines.append(Annotation(tied.id, "b@example.org", ["taxation"], tied.text, tied.article_id))
    lines.append(Annotation("gone-article:000000000000", "a@example.org", []))
    (tmp_path / "annotations").mkdir()
    write_jsonl(tmp_path / "annotations" / "labels.jsonl", lines)
    (tmp_path / "params.yaml").write_text(PARAMS)
    return tmp_path, sentences, tied


def test_dataset_stage(annotated, sentences_file):
    tmp_path, sentences, tied = annotated
    out = tmp_path / "dataset"
    assert main(["--sentences", str(sentences_file), "--annotations",
                 str(tmp_path / "annotations"), "--params", str(tmp_path / "params.yaml"), "--out", str(out)]) == 0
    dataset = load_from_disk(str(out))
    assert set(dataset) == {"train", "validation", "test"}
    sizes = {name: len(split) for name, split in dataset.items()}
    assert sum(sizes.values()) == len(sentences) - 1
    assert sizes["train"] > sizes["test"] >= sizes["validation"] > 0
    ids = [i for split in dataset.values() for i in split["id"]]
    assert len(set(ids)) == len(ids) and tied.id not in ids
    assert dataset["train"].features["label_names"].feature.names == list(LABEL_NAMES)
    train = np.array(dataset["train"]["labels"])
    assert train.shape[1] == len(LABEL_NAMES)
    for split in dataset.values():
        for row in split:
            assert [LABEL_NAMES[i] for i in row["label_names"]] == [n for n, v in zip(LABEL_NAMES, row["labels"]) if v]
    counts = json.loads((out / "counts.json").read_text())
    assert counts["left_out"] == {"tied, awaiting review": 1, "annotations of unknown sentences": 1}
    censorship = [counts["splits"][name]["censorship_demand"] for name in ("train", "validation", "test")]
    assert all(c > 0 for c in censorship), "stratification puts a frequent label in every split"
    card = (out / "README.md").read_text()
    assert "| censorship_demand |" in card and "tied, awaiting review: 1" in card


def test_no_annotations_is_a_clear_error(tmp_path, sentences_file, capsys):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "params.yaml").write_text(PARAMS)
    code = main(["--sentences", str(sentences_file), "--annotations", str(tmp_path / "annotations"),
                 "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "out")])
    assert code == 1 and "no annotated sentences" in capsys.readouterr().err
