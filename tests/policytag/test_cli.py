"""The `policytag` command end to end, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from policytag.records import read_sentences

BIN = Path(sys.executable).parent


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["policytag", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_segment_command_on_the_corpus(raw_dir, tmp_path):
    out, report = tmp_path / "sentences.jsonl", tmp_path / "report.json"
    result = run_cli("segment", str(raw_dir), "--out", str(out), "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "107 sentences from 5 articles" in result.stderr
    sentences = read_sentences(out)
    assert len(sentences) == 107
    summary = json.loads(report.read_text())
    assert summary["totals"] == {"articles": 5, "sentences": 107, "furniture_lines": 163, "skipped": 0}
    assert {r["reason"] for r in summary["removed"]} >= {"byline", "site notice", "navigation or teaser bullet"}


def test_segment_command_skips_bad_files_and_fails_at_the_end(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.txt").write_text("A good article. It has two sentences.\n", encoding="utf-8")
    (tmp_path / "in" / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "in" / "latin1.txt").write_bytes("Café crème".encode("latin-1"))
    out = tmp_path / "sentences.jsonl"
    result = run_cli("segment", str(tmp_path / "in"), "--out", str(out))
    assert result.returncode == 1
    assert "empty.txt: empty file" in result.stderr and "latin1.txt: not valid UTF-8" in result.stderr
    assert [s.text for s in read_sentences(out)] == ["A good article.", "It has two sentences."]


def test_missing_input_is_reported(tmp_path):
    result = run_cli("segment", str(tmp_path / "nowhere.txt"), "--out", str(tmp_path / "s.jsonl"))
    assert result.returncode == 1 and "nowhere.txt: cannot read" in result.stderr
