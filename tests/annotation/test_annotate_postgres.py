"""A team on PostgreSQL: a real PostgreSQL server (the distribution's package; .ci/run installs it), two annotators'
`policytag annotate start --database postgresql://...` sessions on it, each annotating as themselves, and
`annotate pull` and `annotate status` seeing both, with their agreement.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from policytag.records import Annotation, read_annotations, read_sentences, write_jsonl

from session_helpers import free_port, in_ci, policytag, system_program

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

USER, NAME = "team", "labelstudio"
ALICE, BOB = "alice@example.com", "bob@example.com"
# What each annotator chooses on the six sentences: they disagree on the third (privacy) and the sixth (none).
CHOICES = {
    ALICE: [["censorship_demand"], ["none"], ["privacy", "sovereignty"], ["taxation"], ["none"], ["child_safety"]],
    BOB: [["censorship_demand"], ["none"], ["sovereignty"], ["taxation"], ["none"], ["none"]],
}


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, **options)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def postgres():
    """postgresql://team:PASSWORD@127.0.0.1:PORT/labelstudio on a PostgreSQL server of its own, stopped after."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = Path(system_program("initdb", "postgresql", *reversed(versions)))
    bindir = initdb.resolve().parent
    root = Path(tempfile.mkdtemp(prefix="policytag-postgres-"))  # outside pytest's root-only folders
    as_owner: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            message = "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as"
            shutil.rmtree(root)
            pytest.fail(message) if in_ci() else pytest.skip(message)
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_urlsafe(12)
    pwfile = root / "password"
    pwfile.write_text(password + "\n")
    if as_owner:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()
    run([*as_owner, str(initdb), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
         "-E", "UTF8", "--locale=C"], cwd=root)
    run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "120",
         "-o", f"-p {port} -h 127.0.0.1 -k {root}", "start"], cwd=root)
    try:
        run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, NAME],
            env={**os.environ, "PGPASSWORD": password})
        yield f"postgresql://{USER}:{password}@127.0.0.1:{port}/{NAME}"
    finally:
        subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], cwd=root,
                       capture_output=True, stdin=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


def test_two_annotators_share_a_postgresql_database(postgres, label_studio_binary, sentences_file, raw_dir,
                                                     tmp_path):
    from policytag.annotation.agreement import agreement
    from policytag.annotation.connection import connect, find_project, list_tasks
    from policytag.annotation.tasks import choices_result

    sentences = read_sentences(sentences_file)[:6]
    write_jsonl(tmp_path / "sentences.jsonl", sentences)
    (tmp_path / "annotations").mkdir()
    common = ["--database", postgres, "--no-model", "--sentences", str(tmp_path / "sentences.jsonl"),
              "--raw", str(raw_dir), "--annotations", str(tmp_path / "annotations"), "--annotators-per-task", "2"]
    sessions, said = {}, {}
    try:
        for email in (ALICE, BOB):
            directory = tmp_path / email.split("@")[0]
            started = time.perf_counter()
            result = policytag("annotate", "start", "--data-dir", str(directory), "--port", str(free_port()),
                               *common, env={"LABEL_STUDIO_USERNAME": email, "LABEL_STUDIO_PASSWORD": "pw-" + email})
            print(f"\n{email}: start on PostgreSQL in {time.perf_counter() - started:.1f} s\n{result.stderr[-800:]}")
            assert result.returncode == 0, result.stderr
            sessions[email], said[email] = directory, result.stderr
            settings = json.loads((directory / "session.json").read_text())
            assert settings["database"] == postgres
            assert not list(directory.rglob("*.sqlite3"))  # nothing in SQLite: the database is PostgreSQL
        assert "6 sentences imported, 0 already there" in said[ALICE]
        assert "0 sentences imported, 6 already there" in said[BOB]  # one project for the whole team

        for email, choices in CHOICES.items():  # each annotator, with their own session's token
            settings = json.loads((sessions[email] / "session.json").read_text())
            client = connect(settings["url"], settings["token"])
            assert client.users.whoami().email == email
            project = find_project(client, "policytag")
            task_of = {task.data["sentence_id"]: task.id for task in list_tasks(client, project.id)}
            for sentence, chosen in zip(sentences, choices):
                client.annotations.create(task_of[sentence.id], result=[choices_result(chosen)])

        out, metrics = tmp_path / "pulled", tmp_path / "agreement.json"
        pulled = policytag("annotate", "pull", "--sentences", str(tmp_path / "sentences.jsonl"), "--out", str(out),
                           "--review", str(tmp_path / "ties.jsonl"), "--metrics", str(metrics),
                           env={"POLICYTAG_LABEL_STUDIO_DIR": str(sessions[BOB])})
        assert pulled.returncode == 0, pulled.stderr
        lines = read_annotations(out / "labelstudio.jsonl")
        by_annotator: dict[str, list] = {}
        for line in lines:
            by_annotator.setdefault(line.annotator, []).append((line.sentence_id, line.labels))
        wanted = {email: [(s.id, [c for c in chosen if c != "none"]) for s, chosen in zip(sentences, choices)]
                  for email, choices in CHOICES.items()}
        assert sorted(by_annotator.values()) == sorted(wanted.values())
        expected = agreement([Annotation(sid, email, labels) for email, rows in wanted.items() for sid, labels in rows])
        assert json.loads(metrics.read_text())["alpha"] == expected["alpha"]
        assert expected["sentences_with_2plus_annotators"] == 6 and expected["alpha"]["taxation"] == 1.0

        shown = policytag("annotate", "status", "--sentences", str(tmp_path / "sentences.jsonl"),
                          env={"POLICYTAG_LABEL_STUDIO_DIR": str(sessions[ALICE])})
        assert shown.returncode == 0, shown.stderr
        print(shown.stdout)
        assert "6 sentences, 0 left, 6 annotated" in shown.stdout
        assert "agreement on 6 sentences with 2+ annotators" in shown.stdout
        assert f"privacy {expected['alpha']['privacy']}" in shown.stdout
    finally:
        for directory in sessions.values():
            policytag("annotate", "stop", "--data-dir", str(directory))

