"""Reading annotation files and resolving several annotators into one set of labels per sentence.

The rule, documented in policytag/annotation/guidelines.md too: each annotator counts once per sentence (their latest
line wins); a label is on when more than half of the sentence's annotators chose it, off when fewer than half did; a
label chosen by exactly half is a tie and the sentence goes to review (it is left out of the dataset until another
annotation breaks the tie).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from policytag.labels import LABEL_NAMES, validate_labels
from policytag.records import Annotation, read_annotations


@dataclass(frozen=True)
class Resolution:
    sentence_id: str
    labels: tuple[str, ...]
    annotators: tuple[str, ...]
    tied_labels: tuple[str, ...] = ()

    @property
    def needs_review(self) -> bool:
        return bool(self.tied_labels)


def read_annotation_dir(directory: str | Path) -> list[Annotation]:
    """All annotations of every *.jsonl file in directory, in file-name order; labels checked against the schema."""
    annotations: list[Annotation] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for annotation in read_annotations(path):
            try:
                annotation.labels = validate_labels(annotation.labels)
            except ValueError as error:
                raise ValueError(f"{path}: sentence {annotation.sentence_id}: {error}; fix the label name") from None
            annotations.append(annotation)
    return annotations


def latest_per_annotator(annotations: list[Annotation]) -> dict[str, dict[str, Annotation]]:
    """sentence id -> annotator -> that annotator's last annotation (later lines replace earlier ones)."""
    by_sentence: dict[str, dict[str, Annotation]] = defaultdict(dict)
    for annotation in annotations:
        by_sentence[annotation.sentence_id][annotation.annotator] = annotation
    return by_sentence


def resolve(annotations: list[Annotation]) -> dict[str, Resolution]:
    """Majority vote per label; ties are reported in Resolution.tied_labels."""
    resolved: dict[str, Resolution] = {}
    for sentence_id, by_annotator in latest_per_annotator(annotations).items():
        voters = len(by_annotator)
        votes = {name: sum(name in a.labels for a in by_annotator.values()) for name in LABEL_NAMES}
        resolved[sentence_id] = Resolution(
            sentence_id=sentence_id,
            labels=tuple(name for name in LABEL_NAMES if 2 * votes[name] > voters),
            annotators=tuple(sorted(by_annotator)),
            tied_labels=tuple(name for name in LABEL_NAMES if votes[name] and 2 * votes[name] == voters),
        )
    return resolved
