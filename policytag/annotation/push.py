"""`annotate push`: sentences into the Label Studio project as tasks, with model predictions and, on request, the
annotations of existing annotation files (for review).

Each task carries its sentence id in its data; a sentence already in the project is never imported again, a
prediction of a model version a task already has is never added again, and an annotator's annotation is not pushed
to a task that annotator has already annotated, so pushing twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from policytag.records import Annotation, Sentence, read_jsonl

from policytag.annotation import connection, tasks
from policytag.annotation.labeling_config import instructions_html, labeling_config

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

BATCH = 500
Predictions = Mapping[str, Mapping[str, float]]
"""sentence id -> label -> score in [0, 1]."""


@dataclass
class PushResult:
    project_id: int
    imported: int = 0
    already_there: int = 0
    without_article: int = 0
    """Imported sentences whose article was not found: their task shows the sentence alone."""
    predictions_added: int = 0
    predictions_without_task: int = 0
    annotations_added: int = 0
    annotations_already_there: int = 0
    annotations_without_task: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"project {self.project_id}: {self.imported} sentences imported, {self.already_there} already there, "
                f"{self.predictions_added} predictions added")
        if self.without_article:
            text += f" ({self.without_article} sentences imported without their article, not found)"
        if self.predictions_without_task:
            text += f" ({self.predictions_without_task} predictions of sentences not in the project left out)"
        if self.annotations_added or self.annotations_already_there or self.annotations_without_task:
            text += (f", {self.annotations_added} annotations added, {self.annotations_already_there} already there, "
                     f"{len(self.annotations_without_task)} of sentences not in the project")
        return text


def read_articles(raw_dir: str | Path) -> dict[str, str]:
    """Article id -> text, for every article file under raw_dir, read as the segment stage reads them."""
    from policytag.articles import find_article_files, read_article

    return {article.id: article.text for article in map(read_article, find_article_files([raw_dir]))}


def read_predictions(path: str | Path) -> dict[str, dict[str, float]]:
    """A JSON Lines file of per-sentence scores: {"sentence_id" (or "id"): ..., "scores": {label: score}}."""
    predictions = {}
    for number, row in enumerate(read_jsonl(path), 1):
        sentence_id = row.get("sentence_id") or row.get("id")
        if not sentence_id or not isinstance(row.get("scores"), dict):
            raise ValueError(f"{path}:{number}: expected a sentence_id and a scores object")
        predictions[sentence_id] = row["scores"]
    return predictions


def push(
    client: "LabelStudio",
    sentences: Iterable[Sentence],
    articles: Mapping[str, str],
    title: str = connection.DEFAULT_TITLE,
    predictions: Predictions | Callable[[list[Sentence]], Predictions] | None = None,
    thresholds: tasks.Thresholds = 0.5,
    model_version: str = "",
    annotations: Iterable[Annotation] = (),
    annotators_per_task: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> PushResult:
    """Make the project titled `title` hold one task per sentence (articles: article id -> text, for the view).

    `predictions` maps sentence ids to per-label scores, or is a callable that scores a list of sentences; the
    labels at or above `thresholds` (one for all labels, or per label) become one prediction per task, tagged
    `model_version`. `annotations` (e.g. read from data/annotations/gold.jsonl) are added as their annotators'
    annotations, for review in Label Studio.
    """
    with connection.label_studio_errors(connection.base_url(client)):
        project_id = connection.ensure_project(client, title, labeling_config(), instructions_html(),
                                               annotators_per_task)
        result = PushResult(project_id)
        sentences = list(sentences)
        if callable(predictions):
            predictions = predictions(sentences)
        if predictions is not None and not model_version:
            raise ValueError("predictions need a model_version, to tell them from other models' predictions")
        scores = {sid: tasks.check_scores(sid, s) for sid, s in (predictions or {}).items()}

        existing = {task.data.get("sentence_id"): task for task in connection.list_tasks(client, project_id)}
        new = [sentence for sentence in sentences if sentence.id not in existing]
        result.predictions_without_task = len(scores.keys() - existing.keys() - {s.id for s in new})
        result.already_there = len(sentences) - len(new)
        result.without_article = sum(s.article_id not in articles for s in new)
        payload = [_new_task(s, articles.get(s.article_id), scores.get(s.id), thresholds, model_version) for s in new]
        for start in range(0, len(payload), BATCH):  # every payload is built (and checked) before the first import
            client.projects.import_tasks(project_id, request=payload[start:start + BATCH])
            result.imported += len(payload[start:start + BATCH])
            progress(f"imported {result.imported}/{len(new)} sentences")
        result.predictions_added += sum(s.id in scores for s in new)

        result.predictions_added += _add_predictions(client, project_id, existing, scores, thresholds, model_version,
                                                     progress)
        if scores:  # show this model's predictions to annotators
            client.projects.update(project_id, model_version=model_version, show_collab_predictions=True)
        annotations = list(annotations)
        if annotations:
            if new:
                existing = {task.data.get("sentence_id"): task for task in connection.list_tasks(client, project_id)}
            _add_annotations(client, existing, annotations, result)
            progress(f"added {result.annotations_added} annotations")
    return result


def _new_task(sentence: Sentence, article_text: str | None, scores: dict[str, float] | None,
              thresholds: tasks.Thresholds, model_version: str) -> dict:
    if scores is None:
        return {"data": tasks.task_data(sentence, article_text)}
    view = tasks.scores_html(scores, thresholds, model_version)
    return {"data": tasks.task_data(sentence, article_text, view),
            "predictions": [tasks.prediction(scores, thresholds, model_version)]}


def _add_predictions(client: "LabelStudio", project_id: int, existing: dict, scores: dict[str, dict[str, float]],
                     thresholds: tasks.Thresholds, model_version: str, progress: Callable[[str], None]) -> int:
    """Predictions of this model version for tasks that were already there and lack one; their score view updated
    (one request per task: Label Studio has no bulk update of task data)."""
    todo = [(existing[sid], s) for sid, s in scores.items()
            if sid in existing and all(p.model_version != model_version for p in existing[sid].predictions or [])]
    for start in range(0, len(todo), BATCH):
        client.projects.import_predictions(project_id, request=[
            {"task": task.id, **tasks.prediction(s, thresholds, model_version)} for task, s in todo[start:start + BATCH]
        ])
    for done, (task, s) in enumerate(todo, 1):
        view = tasks.scores_html(s, thresholds, model_version)
        client.tasks.update(str(task.id), data={**task.data, "scores_html": view})
        if done % 100 == 0 or done == len(todo):
            progress(f"added predictions to {done}/{len(todo)} tasks already there")
    return len(todo)


def _add_annotations(client: "LabelStudio", existing: dict, annotations: list[Annotation], result: PushResult) -> None:
    user_ids = connection.ensure_users(client, {a.annotator for a in annotations})
    latest = {(a.sentence_id, a.annotator): a for a in annotations}  # the latest line of an annotator wins
    for (sentence_id, annotator), annotation in latest.items():
        task = existing.get(sentence_id)
        if task is None:
            result.annotations_without_task.append(sentence_id)
            continue
        if user_ids[annotator] in (task.annotators or []):
            result.annotations_already_there += 1
            continue
        client.annotations.create(task.id, completed_by=user_ids[annotator],
                                  result=[tasks.choices_result(tasks.labels_to_choices(annotation.labels))])
        result.annotations_added += 1
