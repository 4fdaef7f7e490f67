"""`annotate pull`: the project's annotations out of Label Studio, checked against the schema, into data/annotations/.

Writes, in the annotation folder:
- labelstudio-export.json: Label Studio's JSON export, tasks and annotations ordered by id, keys sorted, indented, so
  that git diffs show what changed (only `created_ago`, a restatement of `created_at` relative to now, is dropped);
- labelstudio.jsonl: one Annotation line per sentence and annotator (annotator = the user's pseudonym, see
  policytag/annotation/pseudonyms.py: never an e-mail address in git; labels in schema
  order, "none" as no labels; `extra.label_studio` holds the task and annotation ids and, for an annotation made from
  a model's prediction, that prediction's id, model_version, score and choices);
- pull-report.json: every annotation that did not make it into labelstudio.jsonl, and why.
Nothing is dropped silently: a cancelled (skipped) or empty annotation, an unknown label, "none" together with a
label, an annotation of a sentence that data/sentences.jsonl no longer has, and an annotator's earlier annotation of
a sentence they annotated again are each listed in the report.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from policytag.annotations import latest_per_annotator, read_annotation_dir, resolve
from policytag.labels import LABEL_NAMES, NONE_CHOICE
from policytag.records import Annotation, Sentence, write_json, write_jsonl

from policytag.annotation import connection
from policytag.annotation.pseudonyms import Pseudonyms, mapping_path
from policytag.annotation.agreement import write_agreement
from policytag.annotation.labeling_config import CONTROL

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

EXPORT_FILE = "labelstudio-export.json"
ANNOTATIONS_FILE = "labelstudio.jsonl"
REPORT_FILE = "pull-report.json"
NOT_COUNTED = ("cancelled", "superseded")
"""Problems that are normal events of annotation work rather than annotations to fix."""


@dataclass(frozen=True)
class Problem:
    kind: str
    """cancelled, empty, unknown_label, none_with_label, unknown_sentence, no_sentence_id or superseded"""
    message: str
    task: int
    annotation: int
    annotator: str
    sentence_id: str = ""
    choices: tuple[str, ...] = ()


@dataclass
class PullResult:
    project_id: int
    tasks: int
    annotations: list[Annotation]
    problems: list[Problem] = field(default_factory=list)

    @property
    def invalid(self) -> list[Problem]:
        """The problems that need a fix in Label Studio (not cancellations nor superseded annotations)."""
        return [problem for problem in self.problems if problem.kind not in NOT_COUNTED]

    def report(self) -> dict:
        return {
            "project": self.project_id,
            "tasks_exported": self.tasks,
            "annotations_written": len(self.annotations),
            "annotators": sorted({a.annotator for a in self.annotations}),
            "problems": dict(sorted(Counter(problem.kind for problem in self.problems).items())),
            "not_written": [asdict(problem) for problem in self.problems],
        }

    def summary(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(Counter(p.kind for p in self.problems).items()))
        return (f"project {self.project_id}: {self.tasks} tasks, {len(self.annotations)} annotations written, "
                f"{len(self.problems)} not written" + (f" ({counts})" if counts else ""))


def export_project(client: "LabelStudio", project_id: int) -> list[dict]:
    """The JSON export of every annotated task, in a stable order and without clock-relative fields."""
    data = json.loads(b"".join(client.projects.exports.download_sync(project_id, export_type="JSON")))
    data.sort(key=lambda task: task["id"])
    for task in data:
        task.get("annotations", []).sort(key=lambda annotation: annotation["id"])
    return _without_key(data, "created_ago")


def _without_key(value, key: str):
    if isinstance(value, dict):
        return {k: _without_key(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without_key(v, key) for v in value]
    return value


def normalise(export: list[dict], emails: dict[int, str], sentences: list[Sentence],
              project_id: int = 0, predictions: Mapping[int, dict] | None = None,
              pseudonyms: Pseudonyms | None = None) -> PullResult:
    """Annotations of the export as policytag Annotations, in sentence order, and the problems of the others.

    `predictions` (prediction id -> Label Studio's prediction) resolve the prediction an annotation was made from
    (see _prediction_link); an annotation's own record of the prediction shown is used without them. Annotators
    are named by `pseudonyms` (default: pseudonyms made in memory)."""
    pseudonyms = pseudonyms if pseudonyms is not None else Pseudonyms()
    known = {sentence.id: sentence for sentence in sentences}
    problems: list[Problem] = []
    candidates: dict[tuple[str, str], list[tuple[str, int, dict, Annotation]]] = defaultdict(list)
    for task in export:
        sentence_id = task.get("data", {}).get("sentence_id", "")
        for item in task.get("annotations", []):
            annotator = pseudonyms.name(connection.annotator_name(_email(item.get("completed_by"), emails)))
            choices = tuple(choice for result in item.get("result") or []
                            if result.get("from_name") == CONTROL and result.get("type") == "choices"
                            for choice in result.get("value", {}).get("choices", []))
            where = dict(task=task["id"], annotation=item["id"], annotator=annotator, sentence_id=sentence_id,
                         choices=choices)
            found = _problem(sentence_id, known, item, choices)
            if found:
                problems.append(Problem(*found, **where))
                continue
            sentence = known[sentence_id]
            label_studio = {"task": task["id"], "annotation": item["id"]}
            prediction = _prediction_link(item, predictions or {})
            if prediction:
                label_studio["prediction"] = prediction
            annotation = Annotation(sentence_id=sentence_id, annotator=annotator,
                                    labels=[name for name in LABEL_NAMES if name in choices],
                                    text=sentence.text, article_id=sentence.article_id,
                                    extra={"label_studio": label_studio})
            candidates[(sentence_id, annotator)].append((item.get("updated_at") or "", item["id"], where, annotation))
    annotations = []
    for (sentence_id, annotator), group in candidates.items():
        *older, (_, latest_id, _, latest) = sorted(group, key=lambda candidate: candidate[:2])
        annotations.append(latest)
        problems.extend(Problem("superseded", f"task {old['task']}, annotation {old['annotation']}: {annotator} "
                                              f"annotated this sentence again; annotation {latest_id} counts", **old)
                        for _, _, old, _ in older)
    order = {sentence.id: position for position, sentence in enumerate(sentences)}
    annotations.sort(key=lambda a: (order[a.sentence_id], a.annotator))
    return PullResult(project_id, len(export), annotations, problems)


def _prediction_link(item: dict, predictions: Mapping[int, dict]) -> dict | None:
    """The model prediction an annotation is linked to, as {"id", "model_version", "score", "choices"}, or None.

    Label Studio's editor sets `parent_prediction` (an id) when the annotator submits a pre-filled prediction; Label
    Studio itself records in `prediction` the prediction of the project's model version shown at the time. The
    parent comes first; the export carries predictions as ids only, hence `predictions` to resolve them."""
    shown = item.get("prediction") or {}
    parent = item.get("parent_prediction")
    if parent is not None:
        found = predictions.get(parent) or (shown if shown.get("id") == parent else {"id": parent})
    elif shown.get("id"):
        found = shown
    else:
        return None
    link = {"id": found["id"]}
    if "model_version" in found:
        link["model_version"] = found.get("model_version")
    if "score" in found:
        link["score"] = found.get("score")
    if "result" in found:
        link["choices"] = [choice for result in found.get("result") or []
                           if result.get("from_name") == CONTROL and result.get("type") == "choices"
                           for choice in result.get("value", {}).get("choices", [])]
    return link


def _email(completed_by, emails: dict[int, str]) -> str:
    if isinstance(completed_by, dict):
        return completed_by.get("email") or emails.get(completed_by.get("id"), f"user-{completed_by.get('id')}")
    return emails.get(completed_by, f"user-{completed_by}")


def _problem(sentence_id: str, known: dict, item: dict, choices: tuple[str, ...]) -> tuple[str, str] | None:
    """(kind, message) of what keeps this annotation out of labelstudio.jsonl, or None when it is valid."""
    where = f"task {item.get('task')}, annotation {item['id']}"
    if item.get("was_cancelled"):
        return "cancelled", f"{where}: skipped by the annotator"
    if not sentence_id:
        return "no_sentence_id", f"{where}: the task has no sentence_id; it was not imported by push"
    if not choices:
        return "empty", f"{where}: no choice of the {CONTROL!r} control; annotate it again"
    unknown = sorted(set(choices) - set(LABEL_NAMES) - {NONE_CHOICE})
    if unknown:
        return "unknown_label", (f"{where}: unknown label(s) {', '.join(unknown)}; known labels: "
                                 f"{', '.join(LABEL_NAMES)}, or {NONE_CHOICE}")
    if NONE_CHOICE in choices and len(set(choices)) > 1:
        return "none_with_label", (f"{where}: {NONE_CHOICE!r} chosen together with "
                                   f"{', '.join(c for c in choices if c != NONE_CHOICE)}; keep one")
    if sentence_id not in known:
        return "unknown_sentence", (f"{where}: sentence {sentence_id} is not in the sentences file any more "
                                    "(its article changed or was removed)")
    return None


def pull(client: "LabelStudio", sentences: list[Sentence], out_dir: str | Path,
         title: str = connection.DEFAULT_TITLE) -> PullResult:
    """Export the project titled `title`, and write the export, the normalised annotations and the report."""
    out_dir = Path(out_dir)
    with connection.label_studio_errors(connection.base_url(client)):
        project = connection.find_project(client, title)
        if project is None:
            raise connection.LabelStudioError(f"no Label Studio project titled {title!r}; push sentences first")
        export = export_project(client, project.id)
        emails = connection.user_emails(client)
        predictions = parent_predictions(client, project.id, export)
    write_json(out_dir / EXPORT_FILE, export, indent=2, sort_keys=True)
    pseudonyms = Pseudonyms(mapping_path())
    result = normalise(export, emails, sentences, project.id, predictions, pseudonyms)
    pseudonyms.save()  # before the files that use them
    write_jsonl(out_dir / ANNOTATIONS_FILE, result.annotations)
    write_json(out_dir / REPORT_FILE, result.report(), indent=2, sort_keys=True)
    return result


def parent_predictions(client: "LabelStudio", project_id: int, export: list[dict]) -> dict[int, dict]:
    """Prediction id -> prediction, for the predictions annotations of the export were made from (none: no
    request)."""
    wanted = {item.get("parent_prediction") for task in export for item in task.get("annotations", [])} - {None}
    if not wanted:
        return {}
    return {p.id: {"id": p.id, "model_version": p.model_version, "score": p.score, "result": p.result}
            for p in client.predictions.list(project=project_id) if p.id in wanted}


def review_and_agreement(annotation_dir: str | Path, review_path: str | Path, metrics_path: str | Path,
                         sentences: list[Sentence]) -> tuple[list[dict], dict]:
    """Resolve every annotation file of the folder; write the tied sentences for review, and the agreement."""
    annotations = read_annotation_dir(annotation_dir)
    texts = {sentence.id: sentence for sentence in sentences}
    votes = latest_per_annotator(annotations)
    ties = []
    for sentence_id, resolution in sorted(resolve(annotations).items()):
        if resolution.needs_review:
            sentence = texts.get(sentence_id)
            ties.append({
                "sentence_id": sentence_id,
                "article_id": sentence.article_id if sentence else "",
                "text": sentence.text if sentence else "",
                "labels": list(resolution.labels),
                "tied_labels": list(resolution.tied_labels),
                "votes": {name: a.labels for name, a in sorted(votes[sentence_id].items())},
            })
    write_jsonl(review_path, ties)
    return ties, write_agreement(annotations, metrics_path)
