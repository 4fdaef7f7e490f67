"""The dataset card (data/dataset/README.md): what the dataset holds, how it was split, where its text came from."""

from __future__ import annotations

from collections import Counter

from policytag.labels import LABEL_NAMES, LABELS
from policytag.training.documents import Document

SPLIT_TITLES = {"train": "train", "validation": "validation", "test": "test",
                "held_out_translations": "held-out translations"}


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def split_table(counts: dict) -> str:
    splits = list(counts)
    keys = [*LABEL_NAMES, "none", "sentences", "documents"]
    rows = [[key, *(counts[split][key] for split in splits),
             sum(counts[split][key] for split in splits)] for key in keys]
    return _table(["", *(SPLIT_TITLES.get(split, split) for split in splits), "total"], rows)


def breakdown_table(breakdown: dict) -> str:
    keys = [*LABEL_NAMES, "none", "sentences", "documents"]
    return _table(["language, register", *keys], [[group, *(values[k] for k in keys)]
                                                  for group, values in breakdown.items()])


def documents_tables(dataset, documents: dict[str, Document]) -> tuple[str, str]:
    """Documents per register and language, and per licence, among the documents with a labelled sentence."""
    used = {article for split in dataset.values() for article in split["article_id"]}
    kept = [documents[article] for article in sorted(used) if article in documents]
    by_register = Counter((d.register, d.language) for d in kept)
    by_licence = Counter(d.licence for d in kept)
    register_rows = [[register, language, n] for (register, language), n in sorted(by_register.items())]
    licence_rows = [[licence, n] for licence, n in by_licence.most_common()]
    return (_table(["register", "language", "documents"], register_rows),
            _table(["licence", "documents"], licence_rows))


def agreement_text(agreement: dict | None, annotators: dict[str, int]) -> str:
    people = ", ".join(f"{name} ({n})" for name, n in annotators.items()) or "none"
    text = f"Annotators (sentences labelled): {people}.\n"
    if not agreement:
        return text + "\nNo agreement figures (metrics/agreement.json is written by `policytag annotate pull`).\n"
    alpha = agreement.get("alpha", {})
    rows = [[label, "n/a" if alpha.get(label) is None else f"{alpha[label]:.3f}"] for label in LABEL_NAMES]
    return (text + f"\nKrippendorff's alpha (nominal, per label) on the "
            f"{agreement.get('sentences_with_2plus_annotators', 0)} sentences labelled by two or more annotators:\n\n"
            + _table(["label", "alpha"], rows) + "\n")


def render_card(dataset, counts: dict, documents: dict[str, Document], agreement: dict | None, params,
                annotators: dict[str, int]) -> str:
    registers, licences = documents_tables(dataset, documents)
    left = "\n".join(f"- {reason}: {n}" for reason, n in counts["left_out"].items() if n) or "- nothing"
    definitions = "\n".join(f"- `{label.name}`: {label.description}" for label in LABELS)
    translations = counts.get("translations", {})
    translation_line = (f"of {translations.get('aligned_and_labelled', 0)} aligned translations, "
                        f"{translations.get('labels_differ_from_source', 0)} carry labels that differ from their "
                        "source sentence's (listed in `translation-differences.jsonl`).")
    return f"""---
language: [en, vi]
task_categories: [text-classification]
task_ids: [multi-label-classification]
pretty_name: policytag sentences
---
# policytag sentence dataset

Sentences of news articles, reports, statutes and encyclopedia text about governments' demands on social media
platforms, each with the labels its annotators chose (resolved by majority per label; ties wait for review). Built
by the `dataset` stage of policytag from `data/sentences.jsonl`, `data/annotations/` and `data/raw/sources.csv`.

## How it was split
By document: no document contributes sentences to two splits. Whole document groups (a document with its
translations) are assigned by grouped iterative stratification over each group's counts of every label (and "none")
crossed with language and with register, so that rare labels, both languages and every register reach each split
as far as the documents allow (policytag `policytag/training/splits.py`). Fractions of sentences: validation
{params.validation_fraction}, test {params.test_fraction}, the rest train; seed {params.seed}.

Translations (register `translation`, Vietnamese renderings of English news and report sentences, each recording
the sentence it translates in `translates`) are training material only: they sit in `train` when their source
document does; the translations of validation and test documents are kept apart in `held_out_translations`, which
no split uses (cross-validation folds that train on their source documents do), and they are never evaluated.
Translations are labelled in their own right; {translation_line}

## Columns
- `id`, `article_id`, `text`, `lang` (detected per sentence)
- `source` (the corpus collection: `seed`, `pool`, or a folder of data/raw), `register`, `publisher`, `group`
  (the document group kept together by every split), `translation`, `translates`
- `labels`: multi-hot float vector in schema order: {', '.join(LABEL_NAMES)}
- `label_names`: the same labels as class names

## Counts per split
{split_table(counts["splits"])}

## Counts per language and register (all splits)
{breakdown_table(counts["by_language_and_register"])}

## Documents
{registers}

{licences}

Every document's title, publisher, URL, licence and where the copy came from are in `data/raw/sources.csv`.

## Annotation
{agreement_text(agreement, annotators)}
## Left out
{left}

## Labels
{definitions}
"""
