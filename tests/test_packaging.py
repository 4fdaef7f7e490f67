"""Packaging: `pip install policytag` is the tagger alone; the pipeline, Label Studio and Ray are extras, and a
command whose extra is missing says which one to install.

The slow test builds a clean virtual environment with `pip install -c constraints.txt .` (no extras) from a copy of
the sources and tags an article there with a tiny classifier."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from policytag.cli import EXTRAS, missing_extra_hint
from policytag.labels import LABEL_NAMES

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
NOT_IN_CORE = ("dvc", "label_studio_sdk", "cleanlab", "matplotlib", "datasets", "sklearn", "ray")


def _distribution(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def test_each_hinted_module_comes_with_its_extra():
    """policytag.cli.EXTRAS (the hint's table) names, for each extra, modules that extra's distributions install."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    providers = metadata.packages_distributions()
    for extra, modules in EXTRAS.items():
        listed = {_distribution(requirement) for requirement in extras[extra]}
        for module in modules:
            assert {_distribution(d) for d in providers.get(module, [])} & listed, \
                f"{module} is in EXTRAS[{extra!r}] but no distribution of extras.{extra} in pyproject.toml installs it"


def test_the_core_dependencies_leave_out_the_extras():
    core = {_distribution(requirement) for requirement in PYPROJECT["project"]["dependencies"]}
    for heavy in ("dvc", "label-studio-sdk", "cleanlab", "matplotlib", "datasets", "scikit-learn", "ray"):
        assert heavy not in core


def test_the_hint_names_the_extra():
    assert missing_extra_hint("review-labels", ModuleNotFoundError("No module named 'cleanlab'", name="cleanlab")) \
        == ("error: policytag review-labels needs cleanlab, which this installation lacks; install it with "
            "pip install 'policytag[train]'")
    assert missing_extra_hint("tag", ModuleNotFoundError(name="ray.data")).endswith("pip install 'policytag[ray]'")
    assert missing_extra_hint("tag", ModuleNotFoundError(name="policytag.nothing")) is None  # a bug, not an extra


def test_a_missing_extra_is_one_line_not_a_traceback(sentences_file):
    """`policytag annotate push` where label_studio_sdk cannot be imported: exit 2, one line naming the extra."""
    script = ("import sys; sys.modules['label_studio_sdk'] = None\n"
              "from policytag.cli import main\n"
              f"sys.exit(main(['annotate', 'push', '--sentences', {str(sentences_file)!r}]))")
    env = {**os.environ, "LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "unused"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: policytag annotate needs label_studio_sdk, which this installation lacks; install it with "
        "pip install 'policytag[annotate]'"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_clean_core_install_tags_articles(tmp_path, tiny_classifier):
    """`pip install .` (constraints.txt, no extras) in a fresh virtual environment: no DVC, Label Studio SDK,
    cleanlab or matplotlib, and `policytag tag` tags an article; `policytag annotate` names its extra."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for include in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        for package in REPO.glob(include.rstrip("*")):
            if (package / "__init__.py").exists():
                shutil.copytree(package, source / package.name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python, policytag = venv / "bin" / "python", venv / "bin" / "policytag"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "-c", str(REPO / "constraints.txt"), str(source)],
                             capture_output=True, text=True, timeout=1200)
    assert install.returncode == 0, install.stderr[-3000:]

    probe = ("import importlib.util, json; "
             f"print(json.dumps([m for m in {list(NOT_IN_CORE)!r} if importlib.util.find_spec(m)]))")
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(found.stdout) == [], "the core install pulled optional dependencies"
    # the pipeline and Label Studio code ships inside policytag (its dependencies stay in the extras), with its data
    shipped = ("import importlib.resources as r, importlib.util as u; "
               "print(all(u.find_spec(f'policytag.{p}') for p in ('annotation', 'training', 'evaluation')) "
               "and r.files('policytag.annotation').joinpath('guidelines.md').is_file())")
    found = subprocess.run([str(python), "-c", shipped], capture_output=True, text=True, check=True, timeout=120,
                           cwd=tmp_path)
    assert found.stdout.strip() == "True", "policytag's subpackages or policytag/annotation/guidelines.md not installed"

    article = tmp_path / "article.txt"
    article.write_text("The ministry ordered platforms to remove the posts within 24 hours. Companies must keep "
                       "the data of Vietnamese users in Vietnam.\n", encoding="utf-8")
    out = tmp_path / "tagged.jsonl"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    tagged = subprocess.run([str(policytag), "tag", str(article), "--out", str(out), "--model", str(tiny_classifier)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert tagged.returncode == 0, tagged.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in rows] == ["The ministry ordered platforms to remove the posts within 24 hours.",
                                             "Companies must keep the data of Vietnamese users in Vietnam."]
    assert all(set(row["scores"]) == set(LABEL_NAMES) and set(row["labels"]) <= set(LABEL_NAMES) for row in rows)

    annotate = subprocess.run([str(policytag), "annotate", "status"], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=300)
    assert annotate.returncode == 2 and "pip install 'policytag[annotate]'" in annotate.stderr, annotate.stderr
    assert "Traceback" not in annotate.stderr
    shutil.rmtree(venv)  # 1.5 GB
