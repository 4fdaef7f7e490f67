"""`annotate suggest` and `annotate review` against a real Label Studio: the queue arrives in its order, each task
with the current model's prediction; the label-review queue arrives with the model's opinion and the gold labels."""

from __future__ import annotations

import json

import pytest

from policytag.annotation.connection import connect, find_project, list_tasks
from policytag.cli import main
from policytag.labels import LABEL_NAMES
from policytag.records import Annotation, read_sentences, write_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_suggest_pushes_the_most_informative_first_with_predictions(label_studio, tiny_classifier, sentences_file,
                                                                   raw_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.admin.token)
    sentences = read_sentences(sentences_file)
    annotations = tmp_path / "annotations"
    write_jsonl(annotations / "gold.jsonl", [Annotation(s.id, "gold", [], s.text, s.article_id) for s in sentences[:40]])
    queue = tmp_path / "queue.jsonl"
    assert main(["annotate", "suggest", "--model", str(tiny_classifier), "--sentences", str(sentences_file),
                 "--annotations", str(annotations), "--raw", str(raw_dir), "--project", "suggest test",
                 "--limit", "12", "--queue", str(queue)]) == 0
    ranked = [json.loads(line) for line in queue.read_text().splitlines()]
    assert len(ranked) == 12 and [r["rank"] for r in ranked] == list(range(1, 13))
    assert not {r["sentence_id"] for r in ranked} & {s.id for s in sentences[:40]}  # annotated ones are done
    assert [r["informativeness"] for r in ranked][0] >= min(r["informativeness"] for r in ranked)
    client = connect()
    project = find_project(client, "suggest test")
    tasks = sorted(list_tasks(client, project.id), key=lambda task: task.id)
    assert [task.data["sentence_id"] for task in tasks] == [r["sentence_id"] for r in ranked]  # in queue order
    predictions = list(client.predictions.list(project=project.id))
    assert len(predictions) == 12
    assert {p.model_version for p in predictions} == {_version(tiny_classifier)}


def test_review_pushes_suspects_with_the_model_opinion_and_the_gold_labels(label_studio, sentences_file, raw_dir,
                                                                           tmp_path, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.admin.token)
    sentences = read_sentences(sentences_file)[:3]
    annotations = tmp_path / "annotations"
    write_jsonl(annotations / "gold.jsonl", [Annotation(s.id, "gold", ["privacy"], s.text, s.article_id)
                                             for s in sentences])
    queue = tmp_path / "review.jsonl"
    scores = {name: 0.1 for name in LABEL_NAMES} | {"censorship_demand": 0.9}
    write_jsonl(queue, [{"sentence_id": s.id, "label_quality": 0.2, "flagged": True, "gold": ["privacy"],
                         "model": ["censorship_demand"], "scores": scores,
                         "thresholds": {name: 0.5 for name in LABEL_NAMES}} for s in sentences])
    assert main(["annotate", "review", "--queue", str(queue), "--sentences", str(sentences_file), "--annotations",
                 str(annotations), "--raw", str(raw_dir), "--project", "review test"]) == 0
    client = connect()
    project = find_project(client, "review test")
    tasks = list_tasks(client, project.id)
    assert len(tasks) == 3
    predictions = list(client.predictions.list(project=project.id))
    assert {p.model_version for p in predictions} == {"label-review"}
    assert all(p.result[0]["value"]["choices"] == ["censorship_demand"] for p in predictions)
    annotations_there = [a for task in tasks for a in client.annotations.list(id=task.id)]
    assert len(annotations_there) == 3
    assert all(a.result[0]["value"]["choices"] == ["privacy"] for a in annotations_there)


def _version(classifier_dir) -> str:
    from policytag.model import weights_version

    return weights_version(classifier_dir)
