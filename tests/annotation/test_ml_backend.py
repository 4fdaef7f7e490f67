"""`policytag serve-ml`, the Label Studio ML backend: the protocol against the server in a thread, then a real Label
Studio asking a real backend process for predictions, and pull keeping the prediction an annotation was made from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.label_interface import LabelInterface

from policytag.labels import LABEL_NAMES, NONE_CHOICE
from policytag.records import read_sentences

from policytag.annotation import ml_backend
from policytag.annotation.labeling_config import CONTROL, SENTENCE, labeling_config
from policytag.annotation.pull import normalise
from policytag.annotation.tasks import choices_result, decision_confidence, task_data

LOCAL_BACKENDS = {"LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false", "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false"}
"""The Label Studio settings relaxed for the integration test only (docs/ml-backend.md): an ML backend URL may be a
loopback address, and so may the webhook Label Studio adds for it (<backend>/webhook), whose check otherwise fails
the whole connection with a 403 in Label Studio 1.23.2."""
BACKEND_STARTUP_SECONDS = 120


@pytest.fixture(scope="module")
def classifier(tiny_classifier):
    from policytag.model import Classifier

    return Classifier.load(tiny_classifier, device="cpu")


@pytest.fixture(scope="module")
def backend(classifier):
    return ml_backend.Backend(classifier)


@pytest.fixture(scope="module")
def server(backend):
    """The backend's HTTP server on a free port, in a thread of this process."""
    running = ml_backend.make_server(backend, "127.0.0.1", 0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running.url
    running.shutdown()
    running.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def sentences(sentences_file):
    return read_sentences(sentences_file)[:6]


def ls_tasks(sentences, first_id: int = 1) -> list[dict]:
    """Tasks as Label Studio sends them to /predict: id, data (what push writes), project."""
    return [{"id": first_id + i, "data": task_data(s, None), "project": 1} for i, s in enumerate(sentences)]


def expected_choices(classifier, text: str) -> list[str]:
    return classifier.predict([text])[0] or [NONE_CHOICE]


def test_health_setup_metrics_and_webhook(server, classifier):
    for path in ("/health", "/"):
        answer = httpx.get(server + path)
        assert answer.status_code == 200
        assert answer.json() == {"status": "UP", "model_class": "policytag", "model_version": classifier.model_version}
    assert httpx.get(server + "/metrics").json() == {}
    setup = httpx.post(server + "/setup", json={"project": "3.1767225600", "schema": labeling_config(),
                                                 "hostname": "http://localhost:8080", "access_token": "x"})
    assert setup.status_code == 200 and setup.json() == {"model_version": classifier.model_version}
    assert httpx.post(server + "/setup", json={"project": "3.1767225600"}).json() == {
        "model_version": classifier.model_version}
    webhook = httpx.post(server + "/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3},
                                                    "annotation": {"id": 7}, "task": {"id": 5}})
    assert webhook.status_code == 200 and webhook.json() == {}


def test_predict_one_valid_prediction_per_task_in_order_from_one_batch(server, classifier, sentences, monkeypatch):
    batches = []
    predict_proba = classifier.predict_proba
    monkeypatch.setattr(classifier, "predict_proba", lambda texts, **kw: batches.append(len(texts))
                        or predict_proba(texts, **kw))
    config = labeling_config()
    tasks = ls_tasks(sentences)
    request = {"tasks": tasks, "label_config": config, "project": "3.1767225600",
               "params": {"login": None, "password": None, "context": None}}
    answer = httpx.post(server + "/predict", json=request)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert batches == [len(tasks)]  # one predict_proba call for the whole request

    scores = predict_proba([s.text for s in sentences])
    thresholds = dict(zip(classifier.labels, classifier.thresholds.tolist()))
    interface = LabelInterface(config)
    assert len(results) == len(tasks)
    for sentence, row, prediction in zip(sentences, scores, results):
        assert prediction["model_version"] == classifier.model_version
        assert interface.validate_prediction(prediction, return_errors=True) == []  # Label Studio's own check
        [result] = prediction["result"]
        assert (result["from_name"], result["to_name"], result["type"]) == (CONTROL, SENTENCE, "choices")
        assert result["value"]["choices"] == expected_choices(classifier, sentence.text)
        by_label = dict(zip(classifier.labels, row.tolist()))
        assert prediction["score"] == pytest.approx(decision_confidence(by_label, thresholds), abs=1e-5)
        assert list(result["meta"]["scores"]) == list(LABEL_NAMES)
        assert result["meta"]["scores"] == {k: pytest.approx(v, abs=1e-4) for k, v in by_label.items()}
        assert result["meta"]["thresholds"] == {k: pytest.approx(v, abs=1e-4) for k, v in thresholds.items()}
    assert len({tuple(r["result"][0]["value"]["choices"]) for r in results}) > 1  # decisions differ between tasks

    backwards = httpx.post(server + "/predict", json={**request, "tasks": tasks[::-1]}).json()["results"]
    assert backwards == results[::-1]


def test_names_and_aliases_come_from_the_projects_config(server, classifier, sentences):
    choices = "".join(f'<Choice value="{name}" alias="{name.upper()}"/>' for name in (*LABEL_NAMES, NONE_CHOICE))
    config = (f'<View><Text name="sentence_text" value="$text"/><HyperText name="article" value="$article_html"/>'
              f'<Choices name="topics" toName="sentence_text" choice="multiple">{choices}</Choices></View>')
    answer = httpx.post(server + "/predict", json={"tasks": ls_tasks(sentences[:2]), "label_config": config})
    assert answer.status_code == 200, answer.text
    for sentence, prediction in zip(sentences, answer.json()["results"]):
        result = prediction["result"][0]
        assert (result["from_name"], result["to_name"]) == ("topics", "sentence_text")
        assert result["value"]["choices"] == [c.upper() for c in expected_choices(classifier, sentence.text)]


def _config(choices: str, attributes: str = 'choice="multiple"') -> str:
    return (f'<View><Text name="sentence" value="$text"/>'
            f'<Choices name="labels" toName="sentence" {attributes}>{choices}</Choices></View>')


ALL_CHOICES = "".join(f'<Choice value="{name}"/>' for name in (*LABEL_NAMES, NONE_CHOICE))


@pytest.mark.parametrize("config, message", [
    (_config('<Choice value="Positive"/><Choice value="Negative"/>'),
     "lacks the choice(s) censorship_demand, privacy, child_safety, intellectual_property, taxation, sovereignty, "
     "none"),
    (_config(ALL_CHOICES.replace('<Choice value="none"/>', "")), "lacks the choice(s) none"),
    (_config(ALL_CHOICES, 'choice="single"'), 'is single-choice'),
    (_config(ALL_CHOICES, 'choice="multiple"').replace('toName="sentence"', 'toName="image"'), "no object tag"),
    ('<View><Text name="t" value="$text"/><TextArea name="x" toName="t"/></View>', "has no <Choices> control"),
    ('<View><Text name="t" value="$text"></View>', "not valid XML"),
    ("", "no label_config"),
])
def test_a_config_that_does_not_fit_is_a_clear_400(server, sentences, config, message):
    answer = httpx.post(server + "/predict", json={"tasks": ls_tasks(sentences[:1]), "label_config": config})
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert message in answer.reason_phrase  # what Label Studio shows: "400 Client Error: <reason> for url: ..."
    if config:
        setup = httpx.post(server + "/setup", json={"project": "1.1", "schema": config})
        assert setup.status_code == 400 and message in setup.json()["error"]


def test_bad_requests_and_a_task_without_text(server, sentences, classifier):
    assert httpx.post(server + "/predict", content=b"{not json").status_code == 400
    assert "'tasks' must be a list" in httpx.post(server + "/predict", json={"label_config": labeling_config()}).text
    assert httpx.post(server + "/nowhere", json={}).status_code == 404
    assert httpx.get(server + "/nowhere").status_code == 404
    tasks = ls_tasks(sentences[:3])
    tasks[1]["data"] = {"image": "x.png"}
    answer = httpx.post(server + "/predict", json={"tasks": tasks, "label_config": labeling_config()})
    results = answer.json()["results"]
    assert len(results) == 3 and "result" not in results[1] and "task 2: no text" in results[1]["error"]
    assert results[0]["result"][0]["value"]["choices"] == expected_choices(classifier, sentences[0].text)
    assert results[2]["result"][0]["value"]["choices"] == expected_choices(classifier, sentences[2].text)


def test_missing_model_directory_is_one_line_and_exit_1(tmp_path, capsys):
    assert ml_backend.main(["--model", str(tmp_path / "nothing"), "--port", "0"]) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and error.startswith("policytag serve-ml: error: ") and "nothing" in error
    (tmp_path / "empty").mkdir()
    assert ml_backend.main(["--model", str(tmp_path / "empty"), "--port", "0"]) == 1
    assert "holds no classifier" in capsys.readouterr().err


def test_pull_links_an_annotation_to_the_prediction_it_was_made_from(sentences):
    prediction = {"id": 41, "model_version": "abc", "score": 0.25, "result": [choices_result(["privacy"])]}
    export = [{"id": 1, "data": {"sentence_id": sentences[0].id}, "predictions": [41], "annotations": [
        {"id": 10, "completed_by": 1, "result": [choices_result(["taxation"])], "parent_prediction": 41,
         "prediction": {}, "task": 1},
        {"id": 11, "completed_by": 2, "result": [choices_result(["none"])], "parent_prediction": None,
         "prediction": prediction, "task": 1},
        {"id": 12, "completed_by": 3, "result": [choices_result(["none"])], "parent_prediction": None,
         "prediction": {}, "task": 1},
    ]}]
    emails = {1: "a@policytag.invalid", 2: "b@policytag.invalid", 3: "c@policytag.invalid"}  # annotators a, b, c
    links = {a.annotator: a.extra["label_studio"].get("prediction")
             for a in normalise(export, emails, sentences, predictions={41: prediction}).annotations}
    linked = {"id": 41, "model_version": "abc", "score": 0.25, "choices": ["privacy"]}
    assert links == {"a": linked, "b": linked, "c": None}
    unresolved = normalise(export, emails, sentences).annotations[0].extra["label_studio"]["prediction"]
    assert unresolved == {"id": 41}


# --- a real Label Studio and a real backend process ---------------------------------------------------------------

def start_backend(model_dir: Path, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    """`policytag serve-ml` as its own process (the script next to this interpreter); its URL once /health is UP."""
    script = Path(sys.executable).parent / "policytag"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(script), "serve-ml", "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + BACKEND_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"policytag serve-ml exited with status {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).json().get("status") == "UP":
                return process, url
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.3)
    stop_backend(process)
    raise RuntimeError(f"policytag serve-ml did not answer within {BACKEND_STARTUP_SECONDS} s:\n{log.read_text()}")


def same_result(got: list[dict], want: list[dict]) -> bool:
    """Equal results, the per-label scores in meta up to float noise (the backend scored the tasks in other
    batches, with other padding)."""
    return len(got) == len(want) and all(
        {**g, "meta": None} == {**w, "meta": None} and g["meta"].keys() == w["meta"].keys()
        and all(g["meta"][k] == pytest.approx(w["meta"][k], abs=2e-4) for k in w["meta"])
        for g, w in zip(got, want))


def stop_backend(process: subprocess.Popen) -> int:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    return process.returncode


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_label_studio_gets_predictions_from_the_backend_and_pull_keeps_them(
        label_studio_factory, tiny_classifier, classifier, backend, sentences, raw_dir, unused_port, tmp_path):
    from policytag.annotation.connection import connect, list_tasks
    from policytag.annotation.push import push, read_articles
    from policytag.annotation.pull import pull

    started = time.perf_counter()
    label_studio = label_studio_factory(LOCAL_BACKENDS)
    process, backend_url = start_backend(tiny_classifier, unused_port, tmp_path / "serve-ml.log")
    try:
        startup = time.perf_counter() - started
        client = connect(label_studio.url, label_studio.admin.token)
        sentences = sentences[:4]
        project_id = push(client, sentences, read_articles(raw_dir), title="ml-backend").project_id

        connected = client.ml.create(url=backend_url, project=project_id, title="policytag serve-ml",
                                     is_interactive=False)
        assert connected.state == "CO", connected  # connected: /health and /setup answered
        assert client.projects.get(project_id).model_version == "policytag serve-ml"  # predictions from the backend
        other = client.projects.create(title="sentiment", label_config=(
            '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text">'
            '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>')).id
        with pytest.raises(ApiError) as refused:  # /setup refuses a config the model cannot fill, saying why
            client.ml.create(url=backend_url, project=other, title="policytag serve-ml")
        assert "lacks censorship_demand, privacy" in str(refused.value.body), refused.value.body

        task_of = {task.data["sentence_id"]: task for task in list_tasks(client, project_id)}
        asked = [task_of[s.id].id for s in sentences[:3]]
        client.actions.create(id="retrieve_tasks_predictions", project=project_id,
                              selected_items={"all": False, "included": asked})
        opened = client.tasks.get(task_of[sentences[3].id].id)  # opening a task without one asks for one too

        expected = backend.predict({"tasks": ls_tasks(sentences), "label_config": labeling_config()})["results"]
        stored: dict[int, list] = {}
        for prediction in client.predictions.list(project=project_id):
            stored.setdefault(prediction.task, []).append(prediction)
        assert [len(stored.get(task_of[s.id].id, [])) for s in sentences] == [1, 1, 1, 1]
        for sentence, want in zip(sentences, expected):
            got = stored[task_of[sentence.id].id][0]
            assert got.model_version == classifier.model_version
            assert same_result(got.result, want["result"])  # as the backend answered, meta (per-label scores) too
            assert got.score == pytest.approx(want["score"], abs=1e-4)
        assert [p.result for p in opened.predictions] == [stored[opened.id][0].result]

        # An annotator starts from the first task's prediction and changes it; the editor sends the prediction's id.
        first = task_of[sentences[0].id]
        prediction = stored[first.id][0]
        predicted = prediction.result[0]["value"]["choices"]
        choices = [next((label for label in LABEL_NAMES if label not in predicted), NONE_CHOICE)]
        client.annotations.create(first.id, result=[choices_result(choices)], parent_prediction=prediction.id)
        client.annotations.create(task_of[sentences[1].id].id, result=[choices_result([NONE_CHOICE])])

        out = tmp_path / "annotations"
        pulled = pull(client, sentences, out, title="ml-backend")
        assert pulled.problems == []
        by_sentence = {a.sentence_id: a for a in pulled.annotations}
        assert by_sentence[sentences[0].id].labels == [c for c in choices if c != NONE_CHOICE]
        assert by_sentence[sentences[0].id].extra["label_studio"]["prediction"] == {
            "id": prediction.id, "model_version": classifier.model_version, "score": prediction.score,
            "choices": prediction.result[0]["value"]["choices"]}
        assert "prediction" not in by_sentence[sentences[1].id].extra["label_studio"]  # made without one
        assert (out / "labelstudio.jsonl").read_text().count(classifier.model_version) == 1
        assert [w.url for w in client.webhooks.list(project=project_id)] == [f"{backend_url}/webhook"]
        print(f"\nLabel Studio + backend up in {startup:.1f} s; whole test {time.perf_counter() - started:.1f} s")
    finally:
        status = stop_backend(process)
    log = (tmp_path / "serve-ml.log").read_text()
    print(log[-2000:])
    assert status == 0
    assert f"webhook ANNOTATION_CREATED from project {project_id}" in log


def test_one_bad_task_does_not_fail_the_batch(server, classifier, sentences, monkeypatch):
    """Issue 15: a lone surrogate in one task's text made the whole request a 500. Now each task stands alone: the
    surrogate is replaced and the task predicted, a task of invisible characters or one the model fails on gets an
    error in its place, and every other task its prediction."""
    import json

    predict_proba = classifier.predict_proba

    def failing(texts, **kw):
        if any("BOOM" in text for text in texts):
            raise RuntimeError("the model broke on this text")
        return predict_proba(texts, **kw)

    monkeypatch.setattr(classifier, "predict_proba", failing)
    tasks = ls_tasks(sentences[:5])
    tasks[1]["data"]["text"] = "Vietnam asked \ud800 Facebook to remove posts."
    tasks[2]["data"]["text"] = "\u200b\u00a0\u2060 \ufeff"
    tasks[3]["data"]["text"] = "BOOM goes the model."
    body = json.dumps({"tasks": tasks, "label_config": labeling_config()}).encode("ascii")  # "\ud800" as JSON has it
    answer = httpx.post(server + "/predict", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 5
    for position in (0, 4):
        assert results[position]["result"][0]["value"]["choices"] == \
            expected_choices(classifier, sentences[position].text)
    assert results[1]["result"][0]["value"]["choices"] == \
        expected_choices(classifier, "Vietnam asked \ufffd Facebook to remove posts.")
    assert "result" not in results[2] and "task 3: no text" in results[2]["error"]
    assert "result" not in results[3] and "task 4: the model could not score" in results[3]["error"]
    assert "the model broke on this text" in results[3]["error"]


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "12abc"])
def test_a_bad_content_length_is_a_400_not_a_500(server, length):
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {length}\r\n\r\n{{}}".encode("ascii"))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400", head
    assert f"the Content-Length header {length!r} is not a number of bytes" in payload.decode("utf-8")
