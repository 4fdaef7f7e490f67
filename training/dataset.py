"""The `dataset` stage: sentences + resolved annotations -> a Hugging Face DatasetDict with stratified splits.

Labels are multi-hot float vectors in schema order (`labels`), and the same labels as class names
(`label_names`, a Sequence of ClassLabel), so that every tool that opens the dataset sees which label is which.
Sentences with no annotation, and sentences whose annotators tie on a label, are left out and counted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from policytag.annotations import read_annotation_dir, resolve
from policytag.labels import LABEL_NAMES, LABELS, to_multi_hot
from policytag.records import read_sentences
from training.splits import train_validation_test

SPLITS = ("train", "validation", "test")


def features():
    from datasets import ClassLabel, Features, List, Value

    return Features({
        "id": Value("string"),
        "article_id": Value("string"),
        "text": Value("string"),
        "lang": Value("string"),
        "source": Value("string"),
        "labels": List(Value("float32"), length=len(LABEL_NAMES)),
        "label_names": List(ClassLabel(names=list(LABEL_NAMES))),
    })


def labelled_rows(sentences_path: Path, annotations_dir: Path) -> tuple[list[dict], dict[str, int]]:
    """One row per sentence with resolved labels, in sentence order; and counts of what was left out."""
    annotations = read_annotation_dir(annotations_dir)
    resolved = resolve(annotations)
    annotated_sources = {a.sentence_id: a.source for a in annotations}
    sentences = read_sentences(sentences_path)
    known = {s.id for s in sentences}
    rows, left_out = [], Counter()
    for sentence in sentences:
        resolution = resolved.get(sentence.id)
        if resolution is None:
            left_out["unannotated"] += 1
            continue
        if resolution.needs_review:
            left_out["tied, awaiting review"] += 1
            continue
        rows.append({
            "id": sentence.id,
            "article_id": sentence.article_id,
            "text": sentence.text,
            "lang": sentence.lang,
            "source": annotated_sources.get(sentence.id, "seed"),
            "labels": [float(v) for v in to_multi_hot(resolution.labels)],
            "label_names": [LABEL_NAMES.index(name) for name in resolution.labels],
        })
    left_out["annotations of unknown sentences"] = len(set(resolved) - known)
    return rows, dict(left_out)


def build_dataset(rows: list[dict], validation: float, test: float, seed: int):
    from datasets import Dataset, DatasetDict

    labels = np.array([row["labels"] for row in rows], dtype=np.float32)
    splits = train_validation_test(labels, validation, test, seed)
    return DatasetDict({
        name: Dataset.from_list([rows[i] for i in splits[name]], features=features()) for name in SPLITS
    })


def label_counts(dataset) -> dict[str, dict[str, int]]:
    """split -> label (and 'none', 'sentences') -> count."""
    counts = {}
    for name in SPLITS:
        matrix = np.array(dataset[name]["labels"]).reshape(-1, len(LABEL_NAMES))
        split_counts = {label: int(matrix[:, i].sum()) for i, label in enumerate(LABEL_NAMES)}
        split_counts["none"] = int((matrix.sum(axis=1) == 0).sum())
        split_counts["sentences"] = len(matrix)
        counts[name] = split_counts
    return counts


def dataset_card(counts: dict[str, dict[str, int]], left_out: dict[str, int], params: dict) -> str:
    header = "| label | " + " | ".join(SPLITS) + " | total |\n|---|" + "---|" * (len(SPLITS) + 1) + "\n"
    body = ""
    for key in (*LABEL_NAMES, "none", "sentences"):
        values = [counts[split][key] for split in SPLITS]
        body += f"| {key} | " + " | ".join(map(str, values)) + f" | {sum(values)} |\n"
    definitions = "\n".join(f"- `{label.name}`: {label.description}" for label in LABELS)
    left = "\n".join(f"- {reason}: {count}" for reason, count in left_out.items() if count) or "- nothing"
    return f"""---
language: [en, vi]
task_categories: [text-classification]
task_ids: [multi-label-classification]
pretty_name: policytag sentences
---
# policytag sentence dataset

Sentences of news articles about governments' demands on social media platforms, each with the labels its
annotators chose (resolved by majority; ties wait for review). Built by the `dataset` stage of policytag from
`data/sentences.jsonl` and `data/annotations/`; splits by iterative stratification for multi-label data
(validation {params['validation_fraction']}, test {params['test_fraction']}, seed {params['seed']}).

## Columns
- `id`, `article_id`, `text`, `lang`, `source` (seed articles or the unlabelled pool)
- `labels`: multi-hot float vector in schema order: {', '.join(LABEL_NAMES)}
- `label_names`: the same labels as class names

## Counts per label and split
{header}{body}
## Left out
{left}

## Labels
{definitions}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    parser.add_argument("--annotations", type=Path, default=Path("data/annotations"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("data/dataset"))
    args = parser.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())["dataset"]
    rows, left_out = labelled_rows(args.sentences, args.annotations)
    if not rows:
        print(f"error: no annotated sentences: {args.annotations} has no labels for the sentences of "
              f"{args.sentences}; add annotations (policytag annotate pull) first", file=sys.stderr)
        return 1
    dataset = build_dataset(rows, params["validation_fraction"], params["test_fraction"], params["seed"])
    dataset.save_to_disk(str(args.out))
    counts = label_counts(dataset)
    (args.out / "README.md").write_text(dataset_card(counts, left_out, params), encoding="utf-8")
    (args.out / "counts.json").write_text(json.dumps({"splits": counts, "left_out": left_out}, indent=1) + "\n")
    print(" ".join(f"{name}={counts[name]['sentences']}" for name in SPLITS), f"left out: {left_out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
