"""cleanlab's label-issue search on out-of-fold scores: a flipped gold label is found first."""

import json

import numpy as np

from policytag.evaluation.review_labels import main
from policytag.labels import LABEL_NAMES


def test_flipped_labels_are_the_top_suspects(tmp_path):
    rng = np.random.default_rng(0)
    records, sentences = [], []
    for i in range(120):
        truth = [name for name in LABEL_NAMES if rng.random() < 0.3]
        probabilities = {name: float(np.clip((0.9 if name in truth else 0.08) + rng.normal(0, 0.04), 0.01, 0.99))
                         for name in LABEL_NAMES}
        given = list(truth)
        if i in (7, 42):  # the annotator missed a label the sentence clearly has, and added one it lacks
            given = [n for n in LABEL_NAMES if (n in truth) != (n == "privacy")]
        records.append({"id": f"s{i}", "fold": i % 5, "labels": given, "probabilities": probabilities,
                        "thresholds": {name: 0.5 for name in LABEL_NAMES}})
        sentences.append({"id": f"s{i}", "text": f"sentence {i}"})
    (tmp_path / "crossval").mkdir()
    (tmp_path / "crossval" / "tfidf.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "sentences.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sentences))
    queue, report, metrics = tmp_path / "q.jsonl", tmp_path / "r.md", tmp_path / "m.json"
    assert main(["--crossval", str(tmp_path / "crossval"), "--model", "tfidf", "--sentences",
                 str(tmp_path / "sentences.jsonl"), "--queue", str(queue), "--report", str(report),
                 "--metrics", str(metrics), "--top", "5"]) == 0
    suspects = [json.loads(line) for line in queue.read_text().splitlines()]
    assert {s["sentence_id"] for s in suspects[:2]} == {"s7", "s42"}
    assert "privacy" in suspects[0]["added_by_model"] + suspects[0]["dropped_by_model"]
    summary = json.loads(metrics.read_text())
    assert summary["review_queue"] == len(suspects) >= 5 and summary["label_issues"] == sum(s["flagged"] for s in suspects)
    assert [s["label_quality"] for s in suspects] == sorted(s["label_quality"] for s in suspects)
    assert "sentence 7" in report.read_text()


def test_missing_crossval_is_a_clear_error(tmp_path, capsys):
    assert main(["--crossval", str(tmp_path), "--model", "transformer"]) == 1
    assert "run `dvc repro crossval` first" in capsys.readouterr().err
