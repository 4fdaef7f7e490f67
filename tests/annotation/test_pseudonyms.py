"""Annotators are pseudonyms in git: pull maps real identities through a mapping kept outside git, stably."""

import json
import re
import stat

import pytest

from policytag.records import Sentence

from policytag.annotation.pseudonyms import MAPPING_VARIABLE, PseudonymError, Pseudonyms, mapping_path
from policytag.annotation.pull import EXPORT_FILE, normalise
from policytag.annotation.tasks import choices_result

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SENTENCES = [Sentence("a:1", "a", 0, 0, 4, "One.", "en")]


def export(*users):
    return [{"id": 1, "data": {"sentence_id": "a:1"}, "annotations": [
        {"id": 10 + i, "completed_by": user, "result": [choices_result(["privacy"])], "was_cancelled": False,
         "updated_at": "2026-01-01T00:00:00Z", "task": 1} for i, user in enumerate(users)]}]


def test_real_identities_get_stable_pseudonyms_and_pseudonyms_stay(tmp_path):
    path = tmp_path / "outside-git" / "pseudonyms.json"
    emails = {1: "Alice.Smith@example.org", 2: "vi-a@policytag.invalid", 3: "Bob Jones@policytag.invalid",
              4: "adjudicator@policytag.invalid"}
    names = Pseudonyms(path)
    result = normalise(export(1, 2, 3, 4), emails, SENTENCES, pseudonyms=names)
    names.save()
    assert sorted(a.annotator for a in result.annotations) == ["adjudicator", "annotator-1", "annotator-2", "vi-a"]
    assert json.loads(path.read_text()) == {"alice.smith@example.org": "annotator-1", "Bob Jones": "annotator-2"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # next pull, another order and a new user: everyone keeps their name, the newcomer gets the next one
    again = Pseudonyms(path)
    emails[5] = "carol@example.net"
    emails[1] = "alice.smith@EXAMPLE.org"
    result = normalise(export(5, 3, 1), emails, SENTENCES, pseudonyms=again)
    assert {a.annotator for a in result.annotations} == {"annotator-3", "annotator-2", "annotator-1"}
    again.save()
    assert json.loads(path.read_text())["carol@example.net"] == "annotator-3"
    assert not EMAIL.search(json.dumps([a.annotator for a in result.annotations]))


def test_the_mapping_lives_outside_git_and_a_damaged_one_is_named(tmp_path, monkeypatch, repo):
    import subprocess

    monkeypatch.delenv(MAPPING_VARIABLE, raising=False)
    monkeypatch.delenv("POLICYTAG_LABEL_STUDIO_DIR", raising=False)
    default = mapping_path()
    ignored = subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=repo)
    assert ignored.returncode == 0, f"{default} must be git-ignored"
    monkeypatch.setenv(MAPPING_VARIABLE, str(tmp_path / "p.json"))
    assert mapping_path() == tmp_path / "p.json"
    (tmp_path / "p.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PseudonymError, match="p.json: cannot read the annotator pseudonyms"):
        Pseudonyms(tmp_path / "p.json")


def _identities(value, key=""):
    """Every string of a JSON value except sentence texts (which quote public documents, e-mail addresses
    included)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "text":
                yield from _identities(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _identities(v, key)
    elif isinstance(value, str):
        yield value


def test_no_email_address_in_the_annotation_files(repo):
    folder = repo / "data" / "annotations"
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == EXPORT_FILE:  # the raw export is kept out of git
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            strings = [s for line in text.splitlines() if line.strip() for s in _identities(json.loads(line))]
        elif path.suffix == ".json":
            strings = list(_identities(json.loads(text)))
        else:
            strings = [text]
        found += [f"{path.relative_to(repo)}: {m.group()}" for s in strings for m in EMAIL.finditer(s)]
    assert found == []
