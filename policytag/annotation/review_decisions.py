"""Applying a label reviewer's decisions (on the review-labels queue) where the labels live, and logging them.

A decision is `{"sentence_id", "labels", "reason"}`: the labels the sentence should carry and why. It is applied at
the right depth, so that the resolved labels change and the independent annotations stay what they were:
- its independent annotators agree with one another (one annotator, or several who chose the same labels): each
  of their annotations is corrected (in Label Studio, by updating the annotation that `pull` recorded; in a
  hand-made annotation file such as gold.jsonl, by rewriting its line), so that agreement is what it was;
- they disagree: the decision becomes (or replaces) the `adjudicator`'s annotation in Label Studio, the deciding
  vote;
- the labels already resolve to the decision: nothing changes (a kept label).
Every decision, with what it changed, goes to the log (data/annotations/review/label-review-decisions.jsonl);
`policytag annotate pull` afterwards brings Label Studio's side back.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from policytag.annotation import connection, tasks
from policytag.annotation.agreement import ADJUDICATORS
from policytag.annotations import resolve
from policytag.labels import LABEL_NAMES, validate_labels
from policytag.records import Annotation, read_annotations, read_jsonl, write_jsonl

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

PULLED_FILE = "labelstudio.jsonl"


def read_decisions(path: Path) -> list[dict]:
    decisions = []
    for number, row in enumerate(read_jsonl(path), 1):
        if not row.get("sentence_id") or not isinstance(row.get("labels"), list) or not row.get("reason"):
            raise ValueError(f"{path}:{number}: a decision needs sentence_id, labels (a list; [] for none) and reason")
        try:
            row["labels"] = [name for name in LABEL_NAMES if name in validate_labels(row["labels"])]
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
        decisions.append(row)
    return decisions


def apply_decisions(client: "LabelStudio | None", decisions: Iterable[dict], annotation_dir: Path,
                    project_title: str = connection.DEFAULT_TITLE) -> list[dict]:
    """Apply each decision (see the module docstring); return the log, one entry per decision."""
    files = {path: read_annotations(path) for path in sorted(annotation_dir.glob("*.jsonl"))}
    everything = [a for annotations in files.values() for a in annotations]
    resolved = resolve(everything)
    where: dict[str, list[tuple[Path, int]]] = {}
    for path, annotations in files.items():
        for index, annotation in enumerate(annotations):
            where.setdefault(annotation.sentence_id, []).append((path, index))
    log, changed_files, task_of = [], set(), None
    for decision in decisions:
        sid, labels = decision["sentence_id"], decision["labels"]
        before = list(resolved[sid].labels) if sid in resolved else None
        entry = {"sentence_id": sid, "before": before, "after": labels, "reason": decision["reason"]}
        places = [(path, i) for path, i in where.get(sid, [])
                  if files[path][i].annotator not in ADJUDICATORS]
        independent = {files[path][i].annotator for path, i in places}
        if before == labels:
            entry["action"] = "kept"
        elif len({tuple(files[path][i].labels) for path, i in places}) == 1:
            corrected = []
            for path, index in places:
                annotation = files[path][index]
                if path.name == PULLED_FILE:
                    ids = annotation.extra.get("label_studio") or {}
                    client.annotations.update(ids["annotation"], result=[
                        tasks.choices_result(tasks.labels_to_choices(labels))])
                    corrected.append(f"{annotation.annotator}'s annotation in Label Studio")
                else:
                    annotation.labels = list(labels)
                    annotation.extra = {**annotation.extra, "review": decision["reason"]}
                    changed_files.add(path)
                    corrected.append(f"{annotation.annotator}'s line in {path.name}")
            entry["action"] = "corrected " + ", ".join(corrected)
        else:
            if task_of is None:
                project = connection.find_project(client, project_title)
                if project is None:
                    raise ValueError(f"no Label Studio project titled {project_title!r}")
                task_of = {t.data.get("sentence_id"): t.id for t in connection.list_tasks(client, project.id)}
            _adjudicate(client, task_of, sid, labels, files, where)
            entry["action"] = f"adjudicated between {', '.join(sorted(independent))} in Label Studio"
        log.append(entry)
    for path in changed_files:
        write_jsonl(path, [asdict(a) for a in files[path]])
    return log


def _adjudicate(client: "LabelStudio", task_of: dict[str, int], sentence_id: str, labels: list[str],
                files: dict[Path, list[Annotation]], where: dict[str, list[tuple[Path, int]]]) -> None:
    result = [tasks.choices_result(tasks.labels_to_choices(labels))]
    for path, index in where.get(sentence_id, []):
        annotation = files[path][index]
        if annotation.annotator in ADJUDICATORS and path.name == PULLED_FILE:
            client.annotations.update(annotation.extra["label_studio"]["annotation"], result=result)
            return
    user = connection.ensure_users(client, {"adjudicator"})["adjudicator"]
    client.annotations.create(task_of[sentence_id], completed_by=user, result=result)
