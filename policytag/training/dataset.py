"""The `dataset` stage: sentences + resolved annotations -> a Hugging Face DatasetDict, split by document.

Labels are multi-hot float vectors in schema order (`labels`), and the same labels as class names
(`label_names`, a Sequence of ClassLabel), so that every tool that opens the dataset sees which label is which.
Sentences with no annotation, and sentences whose annotators tie on a label, are left out and counted. Each row
also carries its document's facts from data/raw/sources.csv (register, publisher, the collection it came from as
`source`, its document `group`, and for a translation the id of the sentence it `translates`), and the splits keep
every document group on one side (policytag/training/splits.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from policytag.annotations import read_annotation_dir, resolve
from policytag.labels import LABEL_NAMES, to_multi_hot
from policytag.records import read_jsonl, read_sentences, write_jsonl
from policytag.text import normalise_text
from policytag.training.dataset_card import render_card
from policytag.training.artifacts import write_json
from policytag.training.documents import Document, SourcesError, read_sources
from policytag.training.params import DatasetParams, load_section
from policytag.training.splits import RowFacts, row_strata, train_validation_test

SPLITS = ("train", "validation", "test", "held_out_translations")
"""held_out_translations: translations of validation and test documents; no split uses them (cross-validation
folds that train on their source documents do)."""
SOURCES_FILE = "sources.csv"


def features():
    from datasets import ClassLabel, Features, List, Value

    return Features({
        "id": Value("string"),
        "article_id": Value("string"),
        "text": Value("string"),
        "lang": Value("string"),
        "source": Value("string"),
        "register": Value("string"),
        "publisher": Value("string"),
        "group": Value("string"),
        "translation": Value("bool"),
        "translates": Value("string"),
        "labels": List(Value("float32"), length=len(LABEL_NAMES)),
        "label_names": List(ClassLabel(names=list(LABEL_NAMES))),
    })


def collection(document: Document) -> str:
    """Where a document sits in data/raw: its folder (e.g. `ooni-asia`), or `seed` for the seed articles at the top."""
    parts = Path(document.file).parts
    return parts[0] if len(parts) > 1 else "seed"


def read_alignments(raw_dir: Path, documents: dict[str, Document]) -> dict[str, dict[str, str]]:
    """Translation document id -> {normalised translated sentence -> id of the sentence it translates}, from the
    `<file stem>.alignment.jsonl` beside each translation file."""
    alignments: dict[str, dict[str, str]] = {}
    for document in documents.values():
        if not document.is_translation or not (raw_dir / document.file).is_file():
            continue
        path = raw_dir / Path(document.file).with_suffix(".alignment.jsonl")
        if not path.is_file():
            raise SourcesError(f"{path} is missing: a translation records, line by line, the id of the sentence it "
                               "translates ({\"translates\": ..., \"text\": ...})")
        alignments[document.id] = {" ".join(normalise_text(r.get("text", "")).split()): str(r.get("translates", ""))
                                   for r in read_jsonl(path)}
    return alignments


def labelled_rows(sentences_path: Path, annotations_dir: Path, raw_dir: Path) -> tuple[list[dict], dict[str, int]]:
    """One row per sentence with resolved labels and its document's facts, in sentence order; and counts of what
    was left out."""
    documents = read_sources(raw_dir / SOURCES_FILE)
    alignments = read_alignments(raw_dir, documents)
    annotations = read_annotation_dir(annotations_dir)
    resolved = resolve(annotations)
    sentences = read_sentences(sentences_path)
    known = {s.id for s in sentences}
    undocumented = sorted({s.article_id for s in sentences if s.id in resolved} - set(documents))
    if undocumented:
        raise SourcesError(f"{raw_dir / SOURCES_FILE} has no row for {len(undocumented)} labelled document(s) "
                           f"({', '.join(undocumented[:5])}{', ...' if len(undocumented) > 5 else ''}); add one row "
                           "per document (id, file, title, publisher, url, date, language, licence, register, ...)")
    rows, left_out = [], Counter()
    for sentence in sentences:
        resolution = resolved.get(sentence.id)
        if resolution is None:
            left_out["unannotated"] += 1
            continue
        if resolution.needs_review:
            left_out["tied, awaiting review"] += 1
            continue
        document = documents[sentence.article_id]
        translates = alignments.get(document.id, {}).get(" ".join(sentence.text.split()), "")
        if document.is_translation and not translates:
            left_out["translations kept without an aligned source sentence"] += 1
        rows.append(dataset_row(sentence.id, sentence.article_id, sentence.text, sentence.lang, resolution.labels,
                                source=collection(document), register=document.register,
                                publisher=document.publisher, group=document.group,
                                translation=document.is_translation, translates=translates))
    left_out["annotations of unknown sentences"] = len(set(resolved) - known)
    return rows, dict(left_out)


def translation_differences(rows: list[dict]) -> list[dict]:
    """Translations whose labels differ from those of the sentence they translate (both labelled in their own
    right), with what each side carries: a list for review, and a measure of how well labels carry across."""
    by_id = {row["id"]: row for row in rows}
    differences = []
    for row in rows:
        source = by_id.get(row["translates"]) if row["translation"] else None
        if source is None:
            continue
        names = [LABEL_NAMES[i] for i in row["label_names"]]
        source_names = [LABEL_NAMES[i] for i in source["label_names"]]
        if names != source_names:
            differences.append({"id": row["id"], "translates": source["id"], "text": row["text"],
                                "source_text": source["text"], "labels": names, "source_labels": source_names,
                                "only_translation": sorted(set(names) - set(source_names)),
                                "only_source": sorted(set(source_names) - set(names))})
    return differences


def dataset_row(sentence_id: str, article_id: str, text: str, lang: str, labels, *, source: str = "seed",
                register: str = "news", publisher: str = "", group: str = "", translation: bool = False,
                translates: str = "") -> dict:
    """A dataset row: the sentence, its labels (multi-hot and names) and its document's facts."""
    labels = list(labels)
    return {"id": sentence_id, "article_id": article_id, "text": text, "lang": lang, "source": source,
            "register": register, "publisher": publisher, "group": group or article_id, "translation": translation,
            "translates": translates, "labels": [float(v) for v in to_multi_hot(labels)],
            "label_names": [LABEL_NAMES.index(name) for name in labels]}


def row_facts(rows) -> RowFacts:
    """What the grouped splitter needs of dataset rows (dicts, or a datasets.Dataset)."""
    if hasattr(rows, "column_names"):
        columns = {name: rows[name] for name in ("group", "translation", "labels", "lang", "register")}
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    strata = [row_strata([name for name, on in zip(LABEL_NAMES, row["labels"]) if on], row["lang"], row["register"])
              for row in rows]
    return RowFacts([row["group"] for row in rows], strata, [bool(row["translation"]) for row in rows])


def build_dataset(rows: list[dict], validation: float, test: float, seed: int):
    """Splits by document group (policytag/training/splits.py); translations of held-out documents in their own
    split."""
    from datasets import Dataset, DatasetDict

    splits = train_validation_test(row_facts(rows), validation, test, seed)
    columns = features()
    return DatasetDict({
        name: Dataset.from_dict({column: [rows[i][column] for i in splits[name]] for column in columns},
                                features=columns)
        for name in SPLITS
    })


def save_dataset(dataset, path: Path) -> None:
    """save_to_disk with one shard per split: an empty split (no held-out translations) saved with none could not
    be loaded back."""
    dataset.save_to_disk(str(path), num_shards={name: 1 for name in dataset})


def _matrix(split) -> np.ndarray:
    return np.array(split["labels"], dtype=np.float32).reshape(-1, len(LABEL_NAMES))


def label_counts(dataset) -> dict[str, dict[str, int]]:
    """split -> label (and 'none', 'sentences', 'documents') -> count."""
    counts = {}
    for name in SPLITS:
        matrix = _matrix(dataset[name])
        split_counts = {label: int(matrix[:, i].sum()) for i, label in enumerate(LABEL_NAMES)}
        split_counts["none"] = int((matrix.sum(axis=1) == 0).sum())
        split_counts["sentences"] = len(matrix)
        split_counts["documents"] = len(set(dataset[name]["article_id"]))
        counts[name] = split_counts
    return counts


def breakdown(dataset) -> dict[str, dict[str, int]]:
    """"<lang> <register>" -> label (and 'none', 'sentences', 'documents') -> count, over every split."""
    table: dict[str, Counter] = {}
    documents: dict[str, set] = {}
    for name in SPLITS:
        split = dataset[name]
        for lang, register, article, labels in zip(split["lang"], split["register"], split["article_id"],
                                                   split["labels"]):
            key = f"{lang} {register}"
            row = table.setdefault(key, Counter())
            row["sentences"] += 1
            row.update(label for label, on in zip(LABEL_NAMES, labels) if on)
            row["none"] += not any(labels)
            documents.setdefault(key, set()).add(article)
    return {key: {**{k: int(table[key][k]) for k in (*LABEL_NAMES, "none", "sentences")},
                  "documents": len(documents[key])} for key in sorted(table)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    parser.add_argument("--annotations", type=Path, default=Path("data/annotations"))
    parser.add_argument("--raw", type=Path, default=Path("data/raw"),
                        help=f"the corpus folder: its {SOURCES_FILE} and translations' alignment files")
    parser.add_argument("--agreement", type=Path, default=None,
                        help="inter-annotator agreement (metrics/agreement.json, written by annotate pull) for the "
                             "card")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/dataset"))
    args = parser.parse_args(argv)
    try:
        params = load_section(args.params, DatasetParams)
        rows, left_out = labelled_rows(args.sentences, args.annotations, args.raw)
        if not rows:
            raise SourcesError(f"no annotated sentences: {args.annotations} has no labels for the sentences of "
                               f"{args.sentences}; add annotations (policytag annotate pull) first")
        dataset = build_dataset(rows, params.validation_fraction, params.test_fraction, params.seed)
        documents = read_sources(args.raw / SOURCES_FILE)
        agreement = (json.loads(args.agreement.read_text(encoding="utf-8"))
                     if args.agreement and args.agreement.is_file() else None)
    except (SourcesError, ValueError, OSError) as error:
        print(f"dataset: error: {error}", file=sys.stderr)
        return 1
    save_dataset(dataset, args.out)
    differences = translation_differences(rows)
    aligned = sum(bool(row["translation"] and row["translates"]) for row in rows)
    counts = {"splits": label_counts(dataset), "by_language_and_register": breakdown(dataset),
              "translations": {"aligned_and_labelled": aligned, "labels_differ_from_source": len(differences)},
              "left_out": left_out}
    card = render_card(dataset, counts, documents, agreement, params, annotators(args.annotations))
    (args.out / "README.md").write_text(card, encoding="utf-8")
    write_json(args.out / "counts.json", counts)
    write_jsonl(args.out / "translation-differences.jsonl", differences)
    print(" ".join(f"{name}={counts['splits'][name]['sentences']}" for name in SPLITS), f"left out: {left_out}",
          file=sys.stderr)
    return 0


def annotators(annotations_dir: Path) -> dict[str, int]:
    """Annotator -> sentences they labelled (every annotation file of the folder)."""
    return dict(sorted(Counter(a.annotator for a in read_annotation_dir(annotations_dir)).items()))


if __name__ == "__main__":
    sys.exit(main())
