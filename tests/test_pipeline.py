"""`dvc repro` in a temporary copy of the repository (git init + dvc init there), as an ML engineer runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
COPIED = ["dvc.yaml", "params.yaml", "data/raw", "data/annotations", "policytag", "annotation", "training",
          "evaluation"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def pipeline_copy(repo, tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("repo")
    for name in COPIED:
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, copy / name)
    run(["git", "init", "-q"], copy)
    run(["dvc", "init", "-q"], copy)
    return copy


@pytest.mark.slow
def test_repro_builds_the_sentences_and_a_second_repro_does_nothing(pipeline_copy):
    run(["dvc", "repro"], pipeline_copy)
    assert (pipeline_copy / "data" / "sentences.jsonl").stat().st_size > 0
    lock = (pipeline_copy / "dvc.lock").read_text()
    second = run(["dvc", "repro"], pipeline_copy)
    assert "didn't change" in second.stdout or "up to date" in second.stdout, second.stdout
    assert (pipeline_copy / "dvc.lock").read_text() == lock
    status = run(["dvc", "status"], pipeline_copy)
    assert "up to date" in status.stdout, status.stdout
