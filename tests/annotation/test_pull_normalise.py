"""normalise() on a Label Studio export written out by hand (the real export is covered in test_label_studio)."""

from policytag.records import Sentence

from policytag.annotation.pull import normalise
from policytag.annotation.tasks import choices_result

SENTENCES = [Sentence("a:1", "a", 0, 0, 5, "One.", "en"), Sentence("a:2", "a", 1, 6, 10, "Two.", "en")]
EMAILS = {1: "ann@example.com", 2: "gold@policytag.invalid"}


def annotation(id, user, choices, updated="2026-01-01T00:00:00Z", cancelled=False):
    return {"id": id, "completed_by": user, "result": [choices_result(choices)] if choices is not None else [],
            "was_cancelled": cancelled, "updated_at": updated, "task": 0}


def test_valid_annotations_in_sentence_order_and_every_other_one_reported():
    export = [
        {"id": 2, "data": {"sentence_id": "a:2"}, "annotations": [
            annotation(20, 1, ["taxation", "privacy"]),
            annotation(21, 2, ["none"]),
        ]},
        {"id": 1, "data": {"sentence_id": "a:1"}, "annotations": [
            annotation(10, 1, ["privacy"], updated="2026-01-02T00:00:00Z"),
            annotation(11, 1, ["taxation"], updated="2026-01-01T00:00:00Z"),
            annotation(12, 2, ["bogus"]),
            annotation(13, 2, None, cancelled=True),
        ]},
        {"id": 3, "data": {"sentence_id": "gone:1"}, "annotations": [annotation(30, 1, ["privacy"])]},
        {"id": 4, "data": {}, "annotations": [annotation(40, 1, ["privacy"])]},
        {"id": 5, "data": {"sentence_id": "a:1"}, "annotations": [annotation(50, 2, ["none", "taxation"]),
                                                                  annotation(51, 2, None)]},
    ]
    result = normalise(export, EMAILS, SENTENCES)
    assert [(a.sentence_id, a.annotator, a.labels) for a in result.annotations] == [
        ("a:1", "annotator-1", ["privacy"]),  # an e-mail address becomes a pseudonym (policytag/annotation/pseudonyms.py)
        ("a:2", "annotator-1", ["privacy", "taxation"]),
        ("a:2", "gold", []),
    ]
    assert result.annotations[0].extra == {"label_studio": {"task": 1, "annotation": 10}}
    assert sorted((p.kind, p.annotation) for p in result.problems) == [
        ("cancelled", 13), ("empty", 51), ("no_sentence_id", 40), ("none_with_label", 50), ("superseded", 11),
        ("unknown_label", 12), ("unknown_sentence", 30)]
    assert {p.kind for p in result.invalid} == {"empty", "no_sentence_id", "none_with_label", "unknown_label",
                                                "unknown_sentence"}
