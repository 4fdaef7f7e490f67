"""Plot data for `dvc plots` and pictures for people, from scored predictions.

- plots/pr/<split>/<label>/<model>.json: precision-recall points of one label for one model (a JSON array of
  {threshold, recall, precision}); dvc.yaml draws one plot per label and split with every model on it.
- plots/confusion.csv: split, model, label, tp, fp, fn, tn (multi-label: one 2x2 table per label).
- plots/confusion/<split>/<model>.json: one record per sentence and label, {label, actual, predicted} with values
  "<label>: yes" / "<label>: no", for DVC's stock `confusion` template: it draws a 12 x 12 matrix whose diagonal
  holds the six per-label 2 x 2 tables (a multi-label confusion matrix, which the template cannot draw otherwise).
- plots/pr_<split>.png: a grid with one panel per label, every model's curve and its operating point.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from policytag.evaluation.metrics import average_precision, confusion, per_label, pr_curve
from policytag.labels import LABEL_NAMES

DIGITS = 4


def _rounded(value):
    return None if value is None else round(float(value), DIGITS)


def pr_data(gold: np.ndarray, scores: np.ndarray, labels=LABEL_NAMES) -> dict[str, list[dict]]:
    """label -> precision-recall points (rounded), for one model."""
    return {label: [{key: _rounded(v) for key, v in point.items()} for point in pr_curve(gold[:, k], scores[:, k])]
            for k, label in enumerate(labels)}


def write_pr_data(results: Mapping[str, Mapping], out_dir: Path) -> list[Path]:
    """results: split -> model -> object with .gold and .scores. Replaces out_dir (no stale models linger)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for split, models in results.items():
        for model, scored in models.items():
            for label, points in pr_data(scored.gold, scored.scores).items():
                path = out_dir / split / label / f"{model}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(points) + "\n", encoding="utf-8")
                written.append(path)
    return written


def confusion_rows(results: Mapping[str, Mapping]) -> list[dict]:
    rows = []
    for split, models in results.items():
        for model, scored in models.items():
            for label, counts in confusion(scored.gold, scored.predicted).items():
                rows.append({"split": split, "model": model, "label": label, **counts})
    return rows


def write_confusion_csv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "model", "label", "tp", "fp", "fn", "tn"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def confusion_records(scored) -> list[dict]:
    """Per sentence and label: {"label", "actual", "predicted"}, values "<label>: yes" or "<label>: no"."""
    gold, predicted = scored.gold > 0.5, scored.predicted
    return [{"label": label, "actual": f"{label}: {'yes' if gold[i, k] else 'no'}",
             "predicted": f"{label}: {'yes' if predicted[i, k] else 'no'}"}
            for i in range(len(gold)) for k, label in enumerate(LABEL_NAMES)]


def write_confusion_records(results: Mapping[str, Mapping], out_dir: Path) -> list[Path]:
    """results: split -> model -> scored. Replaces out_dir."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for split, models in results.items():
        for model, scored in models.items():
            path = out_dir / split / f"{model}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(confusion_records(scored)) + "\n", encoding="utf-8")
            written.append(path)
    return written


def draw_pr_grid(models: Mapping, path: Path, title: str) -> Path:
    """One panel per label: each model's precision-recall curve (legend: average precision) and, as a dot, the
    precision and recall at its thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    rows = -(-len(LABEL_NAMES) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, label in enumerate(LABEL_NAMES):
        axis = axes[k // columns][k % columns]
        support = 0
        for i, (model, scored) in enumerate(models.items()):
            colour = colours[i % len(colours)]
            gold, scores = scored.gold[:, k], scored.scores[:, k]
            support = int((gold > 0.5).sum())
            points = pr_curve(gold, scores)
            if not points:
                continue
            axis.step([p["recall"] for p in points], [p["precision"] for p in points], where="pre", color=colour,
                      label=f"{model} (AP {average_precision(gold, scores):.2f})")
            at = per_label(scored.gold[:, [k]], scored.predicted[:, [k]], [label])[label]
            axis.plot([at["recall"]], [at["precision"]], "o", color=colour)
        axis.set_title(f"{label} ({support} positive{'s' if support != 1 else ''})", fontsize=10)
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(-0.02, 1.05)
        axis.set_xlabel("recall")
        axis.set_ylabel("precision")
        axis.grid(alpha=0.3)
        if support:
            axis.legend(fontsize=8, loc="lower left")
        else:
            axis.text(0.5, 0.5, "no positive", ha="center", va="center", transform=axis.transAxes)
    for k in range(len(LABEL_NAMES), rows * columns):
        axes[k // columns][k % columns].axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path
