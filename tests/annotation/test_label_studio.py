"""push and pull against a real Label Studio, with two real users (the second one joins through an invite link)."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from html import escape

import httpx
import pytest

from policytag.labels import LABEL_NAMES, LABELS, NONE_CHOICE
from policytag.records import Annotation, Sentence, read_annotations, read_jsonl, read_sentences, write_jsonl

from policytag.annotation import cli
from policytag.annotation.connection import LabelStudioError, connect, find_project, list_tasks
from policytag.annotation.push import push, read_articles
from policytag.annotation.tasks import choices_result

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SECOND = "second.annotator@example.com"

# Two annotators label the first ten sentences (A = admin, B = the invited user); None marks a cancelled annotation.
BOTH = [
    (["censorship_demand"], ["censorship_demand"]),
    (["censorship_demand"], ["censorship_demand", "sovereignty"]),  # tie: sovereignty
    (["censorship_demand"], ["censorship_demand"]),
    ([NONE_CHOICE], [NONE_CHOICE]),
    (["privacy"], ["privacy"]),
    (["sovereignty", "privacy"], ["privacy", "sovereignty"]),  # given out of schema order on purpose
    (["taxation"], [NONE_CHOICE]),  # tie: taxation
    ([NONE_CHOICE], [NONE_CHOICE]),
    (["child_safety"], ["child_safety"]),
    ([NONE_CHOICE], ["censorship_demand"]),  # tie: censorship_demand
]
# Krippendorff's alpha, nominal, two coders, no missing values, on the ten sentences above, by hand:
# alpha = 1 - (n - 1) * D / (n0 * n1), n = 20 decisions, D = sentences the two disagree on, n1 = "yes" decisions.
EXPECTED_ALPHA = {
    "censorship_demand": 1 - 19 * 1 / (13 * 7),  # yes: 2+2+2+1 = 7, one disagreement -> 72/91 = 0.7912
    "privacy": 1.0,  # four yes, no disagreement
    "child_safety": 1.0,
    "intellectual_property": None,  # nobody chose it on a shared sentence: no variation, alpha undefined
    "taxation": 1 - 19 * 1 / (19 * 1),  # one yes, one disagreement -> 0.0
    "sovereignty": 1 - 19 * 1 / (17 * 3),  # yes: 1 + 2, one disagreement -> 32/51 = 0.6275
}


def join_through_invite(url: str, admin_token: str, email: str, password: str) -> str:
    """Sign up as a person would, through the organisation's invite link, and return the new user's API token."""
    invite = httpx.get(f"{url}/api/invite", headers={"Authorization": f"Token {admin_token}"}).json()["invite_url"]
    with httpx.Client(base_url=url) as browser:
        page = browser.get(invite)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"email": email, "password": password, "csrfmiddlewaretoken": csrf}
        refused = browser.post("/user/signup/", data=form, headers={"Referer": f"{url}/user/signup/"})
        assert refused.status_code == 403  # no sign-up without the invite token on this server
        joined = browser.post(invite, data=form, headers={"Referer": f"{url}{invite}"})
        assert joined.status_code == 302, joined.text[:500]
        return browser.get("/api/current-user/token").json()["token"]


def annotate(client, task_id: int, choices: list[str] | None) -> None:
    if choices is None:
        client.annotations.create(task_id, result=[], was_cancelled=True)
    else:
        client.annotations.create(task_id, result=[choices_result(choices)] if choices else [])


def test_push_twice_annotate_as_two_users_and_pull(label_studio, sentences_file, raw_dir, tmp_path, monkeypatch):
    sentences = read_sentences(sentences_file)
    retired = Sentence("retired-article:000000000000", "retired-article", 0, 0, 27, "A sentence since taken out.", "en")
    admin = connect(label_studio.url, label_studio.admin.token)

    started = time.perf_counter()
    first = push(admin, sentences + [retired], read_articles(raw_dir), title="corpus")
    push_seconds = time.perf_counter() - started
    again = push(admin, sentences + [retired], read_articles(raw_dir), title="corpus")
    assert (first.imported, first.already_there) == (len(sentences) + 1, 0)
    assert (again.imported, again.already_there) == (0, len(sentences) + 1)
    project_tasks = list_tasks(admin, first.project_id)
    assert sorted(task.data["sentence_id"] for task in project_tasks) == sorted(s.id for s in sentences + [retired])
    task_of = {task.data["sentence_id"]: task.id for task in project_tasks}
    marked = next(task for task in project_tasks if task.data["sentence_id"] == sentences[1].id).data["article_html"]
    assert f'<mark id="pt-sentence">{escape(sentences[1].text)}</mark>' in marked

    second = connect(label_studio.url, join_through_invite(label_studio.url, label_studio.admin.token, SECOND,
                                                           "an0ther-Passw0rd!"))
    assert second.users.whoami().email == SECOND
    s = [task_of[sentence.id] for sentence in sentences]
    for task_id, (a, b) in zip(s, BOTH):
        annotate(admin, task_id, a)
        annotate(second, task_id, b)
    annotate(admin, s[10], ["intellectual_property"])  # one annotator only
    annotate(admin, s[11], ["privacy"])
    annotate(second, s[11], ["surveillance"])  # unknown label
    annotate(admin, s[12], None)  # cancelled
    annotate(second, s[13], [NONE_CHOICE, "privacy"])  # "none" together with a label
    annotate(admin, s[14], ["taxation"])
    annotate(admin, s[14], ["sovereignty"])  # the same annotator again: the latest counts
    annotate(second, s[15], [])  # empty result
    annotate(admin, task_of[retired.id], ["censorship_demand"])  # a sentence no longer in the sentences file

    out = tmp_path / "annotations"
    review, metrics = out / "review" / "ties.jsonl", tmp_path / "metrics" / "agreement.json"
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.admin.token)
    monkeypatch.setenv("POLICYTAG_PSEUDONYMS", str(tmp_path / "pseudonyms.json"))  # outside git, as in real use
    started = time.perf_counter()
    status = cli.main(["pull", "--project", "corpus", "--sentences", str(sentences_file), "--out", str(out),
                       "--review", str(review), "--metrics", str(metrics)])
    pull_seconds = time.perf_counter() - started
    print(f"\n{len(sentences) + 1} sentences: push {push_seconds:.2f} s (second push {again.imported} imported); "
          f"pull + checks + review + agreement {pull_seconds:.2f} s")
    assert status == 1  # everything written, but some annotations need fixing

    pseudonyms = json.loads((tmp_path / "pseudonyms.json").read_text())  # e-mail addresses never reach the files
    ADMIN, SECOND_NAME = pseudonyms[label_studio.admin.email.lower()], pseudonyms[SECOND]
    lines = read_annotations(out / "labelstudio.jsonl")
    assert not any("@" in a.annotator for a in lines)
    got = {(a.sentence_id, a.annotator): a.labels for a in lines}
    assert len(got) == len(lines) == 2 * len(BOTH) + 3
    for sentence, (a, b) in zip(sentences, BOTH):
        assert got[(sentence.id, ADMIN)] == [x for x in LABEL_NAMES if x in a]
        assert got[(sentence.id, SECOND_NAME)] == [x for x in LABEL_NAMES if x in b]
    assert got[(sentences[5].id, ADMIN)] == ["privacy", "sovereignty"]
    assert got[(sentences[14].id, ADMIN)] == ["sovereignty"]
    assert got[(sentences[10].id, ADMIN)] == ["intellectual_property"]
    assert lines[0].text == sentences[0].text and lines[0].article_id == sentences[0].article_id

    report = json.loads((out / "pull-report.json").read_text())
    assert report["problems"] == {"cancelled": 1, "empty": 1, "none_with_label": 1, "superseded": 1,
                                  "unknown_label": 1, "unknown_sentence": 1}
    kinds = {(p["kind"], p["sentence_id"], p["annotator"]) for p in report["not_written"]}
    assert kinds == {
        ("cancelled", sentences[12].id, ADMIN),
        ("empty", sentences[15].id, SECOND_NAME),
        ("none_with_label", sentences[13].id, SECOND_NAME),
        ("superseded", sentences[14].id, ADMIN),
        ("unknown_label", sentences[11].id, SECOND_NAME),
        ("unknown_sentence", retired.id, ADMIN),
    }

    ties = {row["sentence_id"]: row for row in read_jsonl(review)}
    assert {sid: row["tied_labels"] for sid, row in ties.items()} == {
        sentences[1].id: ["sovereignty"], sentences[6].id: ["taxation"], sentences[9].id: ["censorship_demand"]}
    assert ties[sentences[1].id]["labels"] == ["censorship_demand"]
    assert ties[sentences[1].id]["votes"] == {ADMIN: ["censorship_demand"],
                                              SECOND_NAME: ["censorship_demand", "sovereignty"]}

    agreement = json.loads(metrics.read_text())
    print("agreement:", json.dumps(agreement, sort_keys=True))
    assert agreement["sentences_with_2plus_annotators"] == len(BOTH)
    assert agreement["annotators"] == 2
    for label, expected in EXPECTED_ALPHA.items():
        assert agreement["alpha"][label] == (None if expected is None else pytest.approx(expected, abs=1e-4))

    export_text = (out / "labelstudio-export.json").read_text()
    export = json.loads(export_text)
    assert export_text == json.dumps(export, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert [task["id"] for task in export] == sorted(task["id"] for task in export)
    assert "created_ago" not in export_text
    annotated = {task_of[sentence.id] for sentence in sentences[:16]} | {task_of[retired.id]}
    assert {task["id"] for task in export} == annotated

    # A reviewer's decisions: correct a single annotator, break a tie as the adjudicator, keep a right label.
    decisions = tmp_path / "decisions.jsonl"
    write_jsonl(decisions, [
        {"sentence_id": sentences[10].id, "labels": ["privacy"], "reason": "about user data, not copyright"},
        {"sentence_id": sentences[1].id, "labels": ["censorship_demand", "sovereignty"], "reason": "security stated"},
        {"sentence_id": sentences[0].id, "labels": ["censorship_demand"], "reason": "right as it is"},
    ])
    log = tmp_path / "decisions.log.jsonl"
    assert cli.main(["apply-review", str(decisions), "--annotations", str(out), "--project", "corpus",
                     "--log", str(log)]) == 0
    actions = [entry["action"] for entry in read_jsonl(log)]
    assert actions[0] == f"corrected {ADMIN}'s annotation in Label Studio"
    assert actions[1].startswith("adjudicated between") and actions[2] == "kept"
    cli.main(["pull", "--project", "corpus", "--sentences", str(sentences_file), "--out", str(out),
              "--review", str(review), "--metrics", str(metrics)])
    from policytag.annotations import read_annotation_dir, resolve

    resolved = resolve(read_annotation_dir(out))
    assert resolved[sentences[10].id].labels == ("privacy",)
    assert resolved[sentences[1].id].labels == ("censorship_demand", "sovereignty")
    assert not resolved[sentences[1].id].needs_review
    again = json.loads(metrics.read_text())
    assert again["alpha"] == agreement["alpha"], "the adjudicator does not count in agreement"


def test_predictions_and_gold_annotations_for_review(label_studio, sentences_file, raw_dir, tmp_path):
    sentences = read_sentences(sentences_file)[:5]
    client = connect(label_studio.url, label_studio.admin.token)
    scores = {s.id: {name: (0.9 if name == "privacy" else 0.1) for name in LABEL_NAMES} for s in sentences}
    gold = [Annotation(s.id, "gold", ["censorship_demand"] if i % 2 else []) for i, s in enumerate(sentences[:3])]
    articles = read_articles(raw_dir)

    first = push(client, sentences[:3], articles, title="review", predictions={k: scores[k] for k in
                 [s.id for s in sentences[:3]]}, model_version="model-1", annotations=gold)
    assert (first.imported, first.predictions_added, first.annotations_added) == (3, 3, 3)
    later = push(client, sentences, articles, title="review", predictions=scores, model_version="model-2",
                 thresholds={"privacy": 0.95}, annotations=gold)
    assert (later.imported, later.predictions_added, later.annotations_added) == (2, 5, 0)
    assert later.annotations_already_there == 3
    assert push(client, sentences, articles, title="review", predictions=scores, model_version="model-2",
                annotations=gold).predictions_added == 0

    tasks = {task.data["sentence_id"]: task for task in list_tasks(client, first.project_id)}
    old = tasks[sentences[0].id]
    assert sorted(p.model_version for p in old.predictions) == ["model-1", "model-2"]
    by_version = {p.model_version: p for p in old.predictions}
    assert by_version["model-1"].result[0]["value"]["choices"] == ["privacy"]
    assert by_version["model-2"].result[0]["value"]["choices"] == [NONE_CHOICE]  # 0.9 is under 0.95
    assert by_version["model-2"].score == pytest.approx((0.95 - 0.9) / 0.95, abs=1e-6)
    assert "model-2" in old.data["scores_html"] and "0.90" in old.data["scores_html"]
    assert client.projects.get(first.project_id).model_version == "model-2"

    sentences_path = tmp_path / "sentences.jsonl"
    write_jsonl(sentences_path, sentences)
    out = tmp_path / "annotations"
    write_jsonl(out / "gold.jsonl", gold)
    from policytag.annotation.pull import pull, review_and_agreement

    result = pull(client, sentences, out, title="review")
    assert result.problems == []
    assert [(a.sentence_id, a.annotator, a.labels) for a in result.annotations] == [
        (a.sentence_id, "gold", a.labels) for a in gold]
    ties, metrics = review_and_agreement(out, out / "review" / "ties.jsonl", tmp_path / "agreement.json", sentences)
    assert ties == [] and metrics["sentences_with_2plus_annotators"] == 0  # Label Studio's copy replaces the file's


def test_labeling_config_makes_a_project(label_studio):
    from policytag.annotation.connection import ensure_project
    from policytag.annotation.labeling_config import CONTROL, instructions_html, labeling_config

    client = connect(label_studio.url, label_studio.admin.token)
    project_id = ensure_project(client, "config", labeling_config(), instructions_html())
    assert ensure_project(client, "config", labeling_config(), instructions_html()) == project_id
    project = client.projects.get(project_id)
    control = ET.fromstring(project.label_config).find(f"Choices[@name='{CONTROL}']")
    assert control.get("choice") == "multiple"
    assert [(c.get("value"), c.get("hint")) for c in control] == (
        [(label.name, label.description) for label in LABELS] + [(NONE_CHOICE, control[-1].get("hint"))])
    assert "<h2>sovereignty</h2>" in project.expert_instruction
    assert find_project(client, "config").id == project_id


def test_refused_token_and_unreachable_server_are_one_line_errors(label_studio, sentences_file, unused_port, capsys,
                                                                  monkeypatch):
    with pytest.raises(LabelStudioError, match="refused the token"):
        connect(label_studio.url, "not-a-token")
    with pytest.raises(LabelStudioError, match="cannot reach Label Studio"):
        connect(f"http://127.0.0.1:{unused_port}", "any")
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-a-token")
    assert cli.main(["pull", "--project", "corpus", "--sentences", str(sentences_file)]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "refused the token" in error
