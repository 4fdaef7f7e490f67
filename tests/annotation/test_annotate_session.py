"""`policytag annotate start|status|stop` on a tiny corpus and a tiny model, as an annotator uses them: one command
starts a real Label Studio and a real ML backend; a real Chromium (driven by Playwright, no browser download) logs in,
opens the first task, checks the sentence is highlighted in its article and the model's choices are pre-filled,
changes one and submits; `annotate pull` finds the session by itself and holds exactly that annotation. Bad input
is one line and leaves the data directory as it was.

One session serves the whole module (Label Studio's first start migrates a database: about a minute on 2 cores).
Screenshots of the task view are kept in test-artifacts/annotate-session/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from policytag.labels import LABEL_NAMES, NONE_CHOICE
from policytag.records import Annotation, read_annotations, read_jsonl, read_sentences, write_jsonl

from session_helpers import REPO, free_port, policytag, snapshot, system_program

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ARTIFACTS = REPO / "test-artifacts" / "annotate-session"
EMAIL = "first.annotator@example.com"
PASSWORD = "a-Passw0rd-for-the-test"


def chromium_path() -> str:
    return system_program("chromium", "chromium", "/usr/bin/chromium-browser")


class Session:
    def __init__(self, root: Path, model: Path, raw: Path):
        self.root, self.model, self.raw = root, model, raw
        self.data_dir = root / "session"
        self.sentences = root / "sentences.jsonl"
        self.annotations = root / "annotations"
        self.port, self.ml_port = free_port(), free_port()

    def start(self, *extra: str, env: dict[str, str] | None = None, data_dir: Path | None = None,
              **options: str) -> subprocess.CompletedProcess:
        args = {"--data-dir": str(data_dir or self.data_dir), "--port": str(self.port),
                "--ml-port": str(self.ml_port), "--model": str(self.model), "--sentences": str(self.sentences),
                "--raw": str(self.raw), "--annotations": str(self.annotations)}
        args.update({f"--{key.replace('_', '-')}": value for key, value in options.items()})
        return policytag("annotate", "start", *[item for pair in args.items() for item in pair], *extra, env=env)

    def command(self, *args: str) -> subprocess.CompletedProcess:
        """A command in the session's shell: no Label Studio variables, only where the session is."""
        return policytag(*args, env={"POLICYTAG_LABEL_STUDIO_DIR": str(self.data_dir)})

    @property
    def settings(self) -> dict:
        return json.loads((self.data_dir / "session.json").read_text())

    def client(self):
        from policytag.annotation.connection import connect

        return connect(self.settings["url"], self.settings["token"])


@pytest.fixture(scope="module")
def session(label_studio_binary, sentences_file, raw_dir, tiny_classifier, tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate-session")
    sentences = [s for s in read_sentences(sentences_file)][:8]
    write_jsonl(root / "sentences.jsonl", sentences)
    (root / "annotations").mkdir()
    done = sentences[0]  # labelled already: not pushed again
    write_jsonl(root / "annotations" / "gold.jsonl",
                [Annotation(done.id, "gold", ["censorship_demand"], done.text, done.article_id)])
    current = Session(root, tiny_classifier, raw_dir)
    started = time.perf_counter()
    first = current.start(env={"LABEL_STUDIO_USERNAME": EMAIL, "LABEL_STUDIO_PASSWORD": PASSWORD})
    current.first_start = (first, time.perf_counter() - started)
    yield current
    current.command("annotate", "stop", "--data-dir", str(current.data_dir))


def test_first_start_makes_a_ready_session(session, tiny_classifier):
    from policytag.annotation.suggest import suggest
    from policytag.model import Classifier

    result, seconds = session.first_start
    print(f"\nfirst start (database set up): {seconds:.1f} s\n{result.stdout}{result.stderr[-1500:]}")
    assert result.returncode == 0, result.stderr
    settings = session.settings
    assert settings["url"] == f"http://127.0.0.1:{session.port}"
    assert f"Label Studio is ready at {settings['url']}" in result.stdout
    assert f"log in:   {EMAIL}" in result.stdout and PASSWORD not in result.stdout  # the user's own password
    assert stat.S_IMODE((session.data_dir / "session.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(session.data_dir.stat().st_mode) == 0o700

    client = session.client()
    from policytag.annotation.connection import find_project, list_tasks

    project = client.projects.get(find_project(client, "policytag").id)
    sentences = read_sentences(session.sentences)
    classifier = Classifier.load(tiny_classifier, device="cpu")
    order = [item.sentence_id for item in suggest(sentences, classifier, session.annotations)]
    tasks = sorted(list_tasks(client, project.id), key=lambda task: task.id)
    assert [task.data["sentence_id"] for task in tasks] == order  # unlabelled sentences, in suggest order
    assert sentences[0].id not in order and len(order) == len(sentences) - 1
    assert all([p.model_version for p in task.predictions] == [classifier.model_version] for task in tasks)
    assert project.model_version == classifier.model_version and project.show_collab_predictions
    backends = list(client.ml.list(project=project.id))
    assert [(b.url, b.state) for b in backends] == [(f"http://127.0.0.1:{session.ml_port}", "CO")]


def test_annotating_in_a_real_browser_and_pulling_it(session, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    settings = session.settings
    client = session.client()
    from policytag.annotation.connection import find_project, list_tasks

    project_id = find_project(client, "policytag").id
    first = min(list_tasks(client, project_id), key=lambda task: task.id)
    predicted = first.predictions[0].result[0]["value"]["choices"]
    sentence = next(s for s in read_sentences(session.sentences) if s.id == first.data["sentence_id"])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            page.goto(f"{settings['url']}/user/login/")
            page.fill("#email", EMAIL)
            page.fill("#password", PASSWORD)
            page.click("button.login-button")
            page.get_by_text("policytag", exact=True).first.click()  # the project, on the projects page
            page.wait_for_url(re.compile(rf"/projects/{project_id}/"))
            page.get_by_role("button", name=re.compile("Label All Tasks", re.I)).first.click()
            mark = page.locator("mark#pt-sentence")
            mark.wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "1-task-opened.png"), full_page=True)

            assert mark.inner_text().strip() == sentence.text.strip()  # highlighted inside its article
            article = page.locator(".pt-article").inner_text()
            assert sentence.text.strip() in article and len(article) > 2 * len(sentence.text)
            boxes = {name: page.locator(f'input.ant-checkbox-input[name="{name}"]')
                     for name in (*LABEL_NAMES, NONE_CHOICE)}
            checked = [name for name, box in boxes.items() if box.is_checked()]
            assert checked == predicted  # the model's choices are pre-filled

            change = next(name for name in LABEL_NAMES if name not in predicted)
            if NONE_CHOICE in predicted:
                boxes[NONE_CHOICE].click()
            boxes[change].click()
            wanted = [name for name in LABEL_NAMES if name in predicted or name == change]
            assert [name for name, box in boxes.items() if box.is_checked()] == wanted
            page.screenshot(path=str(ARTIFACTS / "2-choice-changed.png"), full_page=True)
            page.get_by_role("button", name="Submit").first.click()
            deadline = time.monotonic() + 60
            while not client.tasks.get(first.id).annotations and time.monotonic() < deadline:
                time.sleep(0.5)
            page.screenshot(path=str(ARTIFACTS / "3-after-submit.png"), full_page=True)
        finally:
            browser.close()

    out, metrics = tmp_path / "annotations", tmp_path / "agreement.json"
    pulled = session.command("annotate", "pull", "--sentences", str(session.sentences), "--out", str(out),
                             "--review", str(tmp_path / "ties.jsonl"), "--metrics", str(metrics))
    assert pulled.returncode == 0, pulled.stderr
    lines = read_annotations(out / "labelstudio.jsonl")
    assert [(a.sentence_id, a.labels) for a in lines] == [(sentence.id, wanted)]
    assert lines[0].annotator  # one annotator (named as pull names annotators)
    assert lines[0].extra["label_studio"]["prediction"]["choices"] == predicted  # made from the model's suggestion

    shown = session.command("annotate", "status", "--sentences", str(session.sentences))
    assert shown.returncode == 0, shown.stderr
    print(shown.stdout)
    assert re.search(r"label-studio\s+up at", shown.stdout) and re.search(r"serve-ml\s+up at", shown.stdout)
    assert "7 sentences, 6 left, 1 annotated" in shown.stdout
    assert re.search(r"done per annotator: \S+ 1$", shown.stdout, re.M)
    assert f"{change} 1" in shown.stdout and "no sentence has two annotators yet" in shown.stdout


def test_explicit_variables_still_name_another_server(session, tmp_path):
    elsewhere = f"http://127.0.0.1:{free_port()}"
    result = policytag("annotate", "pull", "--sentences", str(session.sentences), "--out", str(tmp_path),
                       env={"POLICYTAG_LABEL_STUDIO_DIR": str(session.data_dir), "LABEL_STUDIO_URL": elsewhere,
                            "LABEL_STUDIO_API_KEY": "not-the-session-token"})
    assert result.returncode == 1 and f"cannot reach Label Studio at {elsewhere}" in result.stderr
    remote = policytag("annotate", "pull", "--sentences", str(session.sentences), "--out", str(tmp_path / "a"),
                       "--review", str(tmp_path / "t.jsonl"), "--metrics", str(tmp_path / "m.json"),
                       env={"LABEL_STUDIO_URL": session.settings["url"],
                            "LABEL_STUDIO_API_KEY": session.settings["token"]})
    assert remote.returncode == 0, remote.stderr


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    assert errors == lines[-1:] and errors[0].startswith("policytag annotate start: error: "), result.stderr
    return errors[0]


def test_stop_bad_input_and_a_fast_later_start(session, tmp_path):
    stopped = session.command("annotate", "stop")
    assert stopped.returncode == 0 and "stopped serve-ml" in stopped.stderr and "label-studio" in stopped.stderr
    assert not list(session.data_dir.glob("*.pid"))
    before = snapshot(session.data_dir)
    offline = session.command("annotate", "pull", "--sentences", str(session.sentences), "--out", str(tmp_path / "x"))
    assert offline.returncode == 1 and "the local session's Label Studio" in offline.stderr
    assert "start it with `policytag annotate start`" in offline.stderr

    with socket.socket() as taken:  # a port in use
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        line = one_error_line(session.start(port=str(taken.getsockname()[1])))
    assert "port is in use" in line and "--port N" in line

    line = one_error_line(session.start(model=str(tmp_path / "no-model")))  # a model directory missing
    assert f"{tmp_path / 'no-model'}: no such model directory" in line and "--no-model" in line
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    line = one_error_line(session.start(model=str(broken)))  # or broken
    assert "not a classifier directory (thresholds.json, model.safetensors missing)" in line

    closed = free_port()  # a database that refuses the connection
    line = one_error_line(session.start(database=f"postgresql://team:secret@127.0.0.1:{closed}/labelstudio"))
    assert f"cannot connect to the database postgresql://team:***@127.0.0.1:{closed}/labelstudio" in line
    assert "secret" not in line

    line = one_error_line(session.start(host="0.0.0.0"))  # not loopback without --allow-remote
    assert "not a loopback address" in line and "--allow-remote" in line

    fake = tmp_path / "fake-env"  # a Label Studio that does not come up
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "label-studio").write_text("#!/bin/sh\necho 'RuntimeError: the database is locked' >&2\nexit 3\n")
    (fake / "bin" / "label-studio").chmod(0o755)
    line = one_error_line(session.start(label_studio_env=str(fake)))
    assert "Label Studio exited with status 3 while starting: RuntimeError: the database is locked" in line
    assert str(session.data_dir / "label-studio.log") in line
    assert not list(session.data_dir.glob("*.pid"))  # the backend it had started is stopped again
    assert snapshot(session.data_dir) == before  # every failure left the data directory as it was

    dead = subprocess.Popen(["true"])
    dead.wait()
    for name in ("label-studio", "serve-ml"):  # stale process-id files, as a crash leaves them
        (session.data_dir / f"{name}.pid").write_text(f"{dead.pid} 1\n")
    started = time.perf_counter()
    again = session.start()
    seconds = time.perf_counter() - started
    print(f"\nlater start: {seconds:.1f} s\n{again.stdout}{again.stderr}")
    assert again.returncode == 0, again.stderr
    assert "label-studio.pid was stale (process" in again.stderr and "serve-ml.pid was stale" in again.stderr
    assert "is up to date (nothing changed since the last push)" in again.stderr
    assert "password: yours" in again.stdout
    client = session.client()
    from policytag.annotation.connection import find_project

    project = client.projects.get(find_project(client, "policytag").id)
    assert (project.task_number, project.num_tasks_with_annotations) == (7, 1)  # everything kept
