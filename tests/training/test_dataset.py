"""The dataset stage on the real sentences, with annotations written the way pull writes them."""

import csv
import json
import shutil

import pytest
from datasets import load_from_disk

from policytag.labels import LABEL_NAMES
from policytag.records import Annotation, read_sentences, write_jsonl
from policytag.segment import segment_files
from policytag.training.dataset import main

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


def run_stage(tmp_path, sentences_file, raw_dir) -> int:
    return main(["--sentences", str(sentences_file), "--annotations", str(tmp_path / "annotations"),
                 "--raw", str(raw_dir), "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "dataset")])


def test_dataset_stage(annotated, sentences_file, raw_dir):
    tmp_path, sentences, tied = annotated
    assert run_stage(tmp_path, sentences_file, raw_dir) == 0
    out = tmp_path / "dataset"
    dataset = load_from_disk(str(out))
    assert set(dataset) == {"train", "validation", "test", "held_out_translations"}
    sizes = {name: len(split) for name, split in dataset.items()}
    assert sum(sizes.values()) == len(sentences) - 1
    assert sizes["train"] > 0 and sizes["validation"] > 0 and sizes["test"] > 0
    ids = [i for split in dataset.values() for i in split["id"]]
    assert len(set(ids)) == len(ids) and tied.id not in ids
    articles = {name: set(split["article_id"]) for name, split in dataset.items()}
    assert not (articles["train"] & articles["validation"] or articles["train"] & articles["test"]
                or articles["validation"] & articles["test"]), "no document in two splits"
    assert dataset["train"].features["label_names"].feature.names == list(LABEL_NAMES)
    row = dataset["train"][0]
    assert row["register"] == "news" and row["source"] == "seed" and row["group"] == row["article_id"]
    assert row["translation"] is False and row["translates"] == ""
    for split in dataset.values():
        for row in split:
            assert [LABEL_NAMES[i] for i in row["label_names"]] == [n for n, v in zip(LABEL_NAMES, row["labels"]) if v]
    counts = json.loads((out / "counts.json").read_text())
    assert counts["left_out"] == {"tied, awaiting review": 1, "annotations of unknown sentences": 1}
    assert counts["splits"]["train"]["documents"] + counts["splits"]["validation"]["documents"] + \
        counts["splits"]["test"]["documents"] == len({s.article_id for s in sentences})
    assert "en news" in counts["by_language_and_register"]
    card = (out / "README.md").read_text()
    assert "| censorship_demand |" in card and "tied, awaiting review: 1" in card
    assert "By document" in card and "the user's own seed material" in card


def test_translations_follow_their_source_document(annotated, sentences_file, raw_dir, tmp_path_factory):
    """A translation document joins its source's group: trained on with it, never held out, never in two splits."""
    tmp_path, sentences, _ = annotated
    raw = tmp_path_factory.mktemp("raw-with-translations")
    shutil.copytree(raw_dir, raw, dirs_exist_ok=True)
    (raw / "translations").mkdir()
    sources = list(csv.DictReader((raw / "sources.csv").open(encoding="utf-8")))
    articles = sorted({s.article_id for s in sentences})
    extra_sentences, extra_labels = [], []
    for number, article in enumerate(articles):
        source_sentences = [s for s in sentences if s.article_id == article][:3]
        lines = [f"Bản dịch câu {i} của bài {article}." for i in range(len(source_sentences))]
        doc_id = f"vi-test-translation-{number}"
        (raw / "translations" / f"{doc_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_jsonl(raw / "translations" / f"{doc_id}.alignment.jsonl",
                    [{"translates": s.id, "text": line} for s, line in zip(source_sentences, lines)])
        sources.append({**sources[0], "id": doc_id, "file": f"translations/{doc_id}.txt", "language": "vi",
                        "register": "translation", "translation_of": article})
    with (raw / "sources.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(sources[0]))
        writer.writeheader()
        writer.writerows(sources)
    done, skipped = segment_files([raw / "translations"])
    assert not skipped
    for item in done:
        extra_sentences += item.sentences
        extra_labels += [Annotation(s.id, "a@example.org", ["privacy"], s.text, s.article_id) for s in item.sentences]
    all_sentences = tmp_path / "with-translations.jsonl"
    write_jsonl(all_sentences, [*sentences, *extra_sentences])
    write_jsonl(tmp_path / "annotations" / "translations.jsonl", extra_labels)
    try:
        assert main(["--sentences", str(all_sentences), "--annotations", str(tmp_path / "annotations"),
                     "--raw", str(raw), "--params", str(tmp_path / "params.yaml"),
                     "--out", str(tmp_path / "dataset-tr")]) == 0
    finally:
        (tmp_path / "annotations" / "translations.jsonl").unlink()
    dataset = load_from_disk(str(tmp_path / "dataset-tr"))
    for name in ("validation", "test"):
        assert not any(dataset[name]["translation"]), f"a translation in {name}"
    train_groups = set(dataset["train"]["group"])
    for row in dataset["train"]:
        if row["translation"]:
            assert row["group"] in set(dataset["train"].filter(lambda r: not r["translation"])["group"])
            assert row["translates"], "each translated line records the sentence it translates"
    held_out = dataset["held_out_translations"]
    assert len(held_out) and not set(held_out["group"]) & train_groups
    assert sum(map(len, dataset.values())) == len(sentences) - 1 + len(extra_sentences)


def test_no_annotations_is_a_clear_error(tmp_path, sentences_file, raw_dir, capsys):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "params.yaml").write_text(PARAMS)
    assert run_stage(tmp_path, sentences_file, raw_dir) == 1
    assert "no annotated sentences" in capsys.readouterr().err


def test_a_document_without_a_sources_row_is_a_clear_error(annotated, sentences_file, tmp_path_factory, raw_dir,
                                                            capsys):
    tmp_path, _, _ = annotated
    raw = tmp_path_factory.mktemp("raw-no-rows")
    shutil.copytree(raw_dir, raw, dirs_exist_ok=True)
    rows = list(csv.DictReader((raw / "sources.csv").open(encoding="utf-8")))
    gone = rows[0]["id"]  # a seed article: the row and its translation's row go
    with (raw / "sources.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(row for row in rows if gone not in (row["id"], row["translation_of"]))
    assert run_stage(tmp_path, sentences_file, raw) == 1
    error = capsys.readouterr().err
    assert "sources.csv has no row for 1 labelled document" in error and "add one row per document" in error


def test_unknown_dataset_parameter_is_refused(annotated, sentences_file, raw_dir, capsys):
    tmp_path, _, _ = annotated
    (tmp_path / "params.yaml").write_text(PARAMS + "  test_fractoin: 0.3\n")
    try:
        assert run_stage(tmp_path, sentences_file, raw_dir) == 1
    finally:
        (tmp_path / "params.yaml").write_text(PARAMS)
    assert "unknown dataset parameter(s) test_fractoin" in capsys.readouterr().err
