"""The evaluate stage on real outputs of the baseline and crossval stages (keyword-labelled corpus, tiny backbone)
and on a classifier directory as the train stage writes it (conftest.tiny_classifier)."""

import csv
import json
import shutil

import numpy as np
import pytest
from datasets import load_from_disk
from sklearn.metrics import f1_score

from policytag.evaluation import evaluate
from policytag.evaluation.report import head_section
from policytag.labels import LABEL_NAMES
from policytag.records import read_jsonl
from policytag.training import baseline, crossval
from policytag.training.baseline import load_predictor
from policytag.training.data import split_arrays
from policytag.training.thresholds import apply_thresholds

MODELS = ["transformer", "transformer_int8", "tfidf", "zeroshot"]
PARAMS = """baseline:
  models: [tfidf, zeroshot]
crossval:
  models: [tfidf, zeroshot]
  folds: 3
  seed: 13
evaluate:
  models: [transformer, transformer_int8, tfidf, zeroshot]
"""


@pytest.fixture(scope="module")
def stages(tmp_path_factory, keyword_dataset_dir, tiny_backbone, tiny_classifier):
    """A working directory after baseline, crossval and evaluate; and the arguments evaluate ran with."""
    root = tmp_path_factory.mktemp("evaluate")
    (root / "params.yaml").write_text(PARAMS)
    common = ["--dataset", str(keyword_dataset_dir), "--params", str(root / "params.yaml")]
    assert baseline.main([*common, "--backbone", str(tiny_backbone), "--out", str(root / "models/baseline")]) == 0
    assert crossval.main([*common, "--backbone", str(tiny_backbone), "--out", str(root / "models/crossval")]) == 0
    args = [*common, "--classifier", str(tiny_classifier), "--baseline", str(root / "models/baseline"),
            "--backbone", str(tiny_backbone), "--crossval", str(root / "models/crossval"),
            "--metrics", str(root / "metrics"), "--plots", str(root / "plots"),
            "--report", str(root / "reports/evaluation.md")]
    assert evaluate.main(args) == 0
    return root, args


def test_metrics_files_hold_every_model_and_label(stages, keyword_dataset_dir):
    root, _ = stages
    test = json.loads((root / "metrics/test.json").read_text())
    cv = json.loads((root / "metrics/crossval.json").read_text())
    assert list(test) == MODELS and list(cv) == ["tfidf", "zeroshot"]
    gold = np.array(load_from_disk(str(keyword_dataset_dir))["test"]["labels"])
    for metrics in (*test.values(), *cv.values()):
        for label in LABEL_NAMES:
            assert set(metrics[label]) == {"precision", "recall", "f1", "support", "average_precision"}
            assert all(0 <= metrics[label][key] <= 1 for key in ("precision", "recall", "f1"))
        assert 0 <= metrics["micro_f1"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert [test["tfidf"][label]["support"] for label in LABEL_NAMES] == gold.sum(axis=0).astype(int).tolist()
    assert sum(cv["tfidf"][label]["support"] for label in LABEL_NAMES) > sum(
        test["tfidf"][label]["support"] for label in LABEL_NAMES)


def test_metrics_match_sklearn_on_the_stage_outputs(stages, keyword_dataset_dir):
    root, _ = stages
    test = json.loads((root / "metrics/test.json").read_text())
    cv = json.loads((root / "metrics/crossval.json").read_text())
    texts, gold = split_arrays(load_from_disk(str(keyword_dataset_dir))["test"])
    tfidf = load_predictor(root / "models/baseline/tfidf")
    predicted = apply_thresholds(tfidf.predict_proba(texts), tfidf.thresholds)
    assert test["tfidf"]["macro_f1"] == round(f1_score(gold, predicted, average="macro", zero_division=0), 4)
    assert test["tfidf"]["micro_f1"] == round(f1_score(gold, predicted, average="micro", zero_division=0), 4)
    records = list(read_jsonl(root / "models/crossval/tfidf.jsonl"))
    oof_gold = np.array([[name in r["labels"] for name in LABEL_NAMES] for r in records])
    oof = np.array([[r["probabilities"][n] >= r["thresholds"][n] for n in LABEL_NAMES] for r in records])
    assert cv["tfidf"]["macro_f1"] == round(f1_score(oof_gold, oof, average="macro", zero_division=0), 4)
    # above chance (< 0.35): each of 3 folds trains on about 55 sentences of other documents
    assert cv["tfidf"]["macro_f1"] > 0.4, "out-of-fold tfidf learns the keyword rule"


def test_plot_data_and_pictures(stages, keyword_dataset_dir):
    root, _ = stages
    plots = root / "plots"
    for split, models in (("test", MODELS), ("crossval", ["tfidf", "zeroshot"])):
        for label in LABEL_NAMES:
            assert sorted(p.stem for p in (plots / "pr" / split / label).iterdir()) == sorted(models)
            for model in models:
                points = json.loads((plots / "pr" / split / label / f"{model}.json").read_text())
                assert points and points[0] == {"threshold": None, "recall": 0.0, "precision": 1.0}
                assert all(0 <= p["recall"] <= 1 and 0 <= p["precision"] <= 1 for p in points)
                recalls = [p["recall"] for p in points]
                assert recalls == sorted(recalls)
        assert (plots / f"pr_{split}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (plots / "confusion.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == (len(MODELS) + 2) * len(LABEL_NAMES)
    assert list(rows[0]) == ["split", "model", "label", "tp", "fp", "fn", "tn"]
    sizes = {"test": len(load_from_disk(str(keyword_dataset_dir))["test"]),
             "crossval": len(list(read_jsonl(root / "models/crossval/tfidf.jsonl")))}
    for row in rows:
        assert sum(int(row[key]) for key in ("tp", "fp", "fn", "tn")) == sizes[row["split"]]
    # the stock confusion template's records: one per sentence and label, "<label>: yes/no"
    records = json.loads((plots / "confusion" / "test" / "tfidf.json").read_text())
    assert len(records) == sizes["test"] * len(LABEL_NAMES)
    false_negatives = sum(r["actual"] == "privacy: yes" and r["predicted"] == "privacy: no" for r in records)
    assert false_negatives == next(int(row["fn"]) for row in rows
                                   if (row["split"], row["model"], row["label"]) == ("test", "tfidf", "privacy"))


def test_report(stages):
    root, _ = stages
    report = (root / "reports/evaluation.md").read_text()
    for heading in ("## Summary", "## Per label", "## Does the description-initialised head help?",
                    "## Errors of the best model on the test split"):
        assert heading in report
    for model in MODELS:
        assert f"| {model} |" in report
    assert "Not measured" in report and "head_init" in report
    assert "False positive" in report or "False negative" in report or "No errors" in report


def test_head_comparison_is_reported_when_both_heads_were_cross_validated(stages, keyword_dataset_dir):
    """Two cross-validated transformer runs that differ in head_init (stand-ins built from the tfidf run)."""
    root, _ = stages
    source = root / "models/crossval/tfidf.jsonl"
    everything = crossval.all_rows(load_from_disk(str(keyword_dataset_dir)))
    texts = dict(zip(everything["id"], everything["text"]))
    runs = {}
    for name, head in (("transformer", "descriptions"), ("transformer_random_head", "random")):
        copy = root / "heads" / f"{name}.jsonl"
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(source, copy)
        copy.with_name(f"{name}.params.json").write_text(json.dumps({"kind": "transformer",
                                                                      "params": {"head_init": head}}))
        runs[name] = evaluate.read_crossval(copy, texts)
    section = head_section({"test": {}, "crossval": runs}, {})
    assert "Measured by cross-validation" in section and "| descriptions |" in section and "| random |" in section
    assert "macro-F1 +0.000" in section and "No clear answer" in section


def test_missing_model_is_a_clear_error(stages, tmp_path, capsys):
    _, args = stages
    args = list(args)
    args[args.index("--classifier") + 1] = str(tmp_path / "no-classifier")
    args[args.index("--metrics") + 1] = str(tmp_path / "metrics")
    assert evaluate.main(args) == 1
    error = capsys.readouterr().err
    assert "no-classifier" in error and "train" in error
    assert not (tmp_path / "metrics").exists()


def test_stale_crossval_output_is_a_clear_error(stages, tmp_path, capsys):
    _, args = stages
    stale = tmp_path / "crossval"
    stale.mkdir()
    (stale / "tfidf.jsonl").write_text(json.dumps({"id": "gone:000", "fold": 0, "labels": [],
                                                   "probabilities": dict.fromkeys(LABEL_NAMES, 0.1),
                                                   "thresholds": dict.fromkeys(LABEL_NAMES, 0.5)}) + "\n")
    args = list(args)
    args[args.index("--crossval") + 1] = str(stale)
    args[args.index("--metrics") + 1] = str(tmp_path / "metrics")
    assert evaluate.main(args) == 1
    assert "does not match the dataset" in capsys.readouterr().err
