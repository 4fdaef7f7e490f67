"""The DVC pipeline end to end in a temporary copy of the repository (git init + dvc init there), as an ML engineer
runs it, on a tiny backbone so that it takes a minute: `dvc repro` builds every stage, a second `dvc repro` does
nothing, `dvc exp run -S` tries a variant, metrics and plots are readable, `dvc push` reaches the default remote."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
COPIED = ["dvc.yaml", "params.yaml", "data/raw", "data/annotations", "metrics/agreement.json", "policytag"]
QUICK = {
    "train": {"epochs": 1, "trainable_layers": 1, "int8_float_layers": 1, "int8_calibration_sentences": 100},
    "crossval": {"folds": 3},
    "distill": {"layers": 1, "epochs": 1, "int8_calibration_sentences": 100, "vocabulary_words": 2000},
    "simulate": {"repetitions": 1, "batch": 40, "initial": 20, "budget": 120},
}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def quick_params(path: Path, backbone: Path) -> None:
    params = yaml.safe_load(path.read_text())
    params["backbone"]["source"] = str(backbone)
    for section, values in QUICK.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline_copy(repo, tmp_path_factory, tiny_backbone) -> Path:
    copy = tmp_path_factory.mktemp("repo")
    for name in COPIED:
        source = repo / name
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*-export.json"))
        elif source.exists():
            shutil.copy2(source, copy / name)
    quick_params(copy / "params.yaml", tiny_backbone)
    run(["git", "init", "-q"], copy)
    run(["dvc", "init", "-q"], copy)
    run(["dvc", "remote", "add", "-d", "local", str(tmp_path_factory.mktemp("remote"))], copy)
    return copy


@pytest.mark.slow
def test_repro_builds_everything_and_a_second_repro_does_nothing(pipeline_copy):
    run(["dvc", "repro"], pipeline_copy)
    for output in ["data/sentences.jsonl", "data/dataset/dataset_dict.json", "models/backbone/model.safetensors",
                   "models/classifier/model.safetensors", "models/classifier/README.md",
                   "models/student/model.safetensors", "metrics/student.json", "models/baseline/tfidf",
                   "models/crossval/transformer.jsonl", "metrics/test.json", "metrics/crossval.json",
                   "reports/evaluation.md", "reports/label-review.md", "metrics/active_learning.json",
                   "plots/pr_test.png"]:
        assert (pipeline_copy / output).exists(), output
    test_metrics = json.loads((pipeline_copy / "metrics" / "test.json").read_text())
    assert set(test_metrics) == {"transformer", "transformer_int8", "student", "student_int8", "tfidf", "zeroshot"}
    stability = json.loads((pipeline_copy / "models/classifier/history.json").read_text())["threshold_stability"]
    assert set(stability) == {"censorship_demand", "privacy", "child_safety", "intellectual_property", "taxation",
                              "sovereignty"}
    assert 0 <= test_metrics["tfidf"]["macro_f1"] <= 1
    lock = (pipeline_copy / "dvc.lock").read_text()
    second = run(["dvc", "repro"], pipeline_copy)
    assert "didn't change" in second.stdout and "Running stage" not in second.stdout, second.stdout
    assert (pipeline_copy / "dvc.lock").read_text() == lock
    assert "up to date" in run(["dvc", "status"], pipeline_copy).stdout

    shown = run(["dvc", "metrics", "show", "--json"], pipeline_copy).stdout
    assert "macro_f1" in shown
    run(["dvc", "plots", "show", "-o", "plots-html"], pipeline_copy)
    assert (pipeline_copy / "plots-html" / "index.html").exists()
    run(["dvc", "push"], pipeline_copy)

    run(["git", "add", "-A"], pipeline_copy)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "baseline run"],
        pipeline_copy)
    experiment = run(["dvc", "exp", "run", "-S", "train.encoder_lr=1.0e-4"], pipeline_copy)
    assert "train" in experiment.stdout + experiment.stderr
    table = run(["dvc", "exp", "show", "--json"], pipeline_copy).stdout
    assert "1.0e-4" in table or "0.0001" in table
