"""The `evaluate` stage: every model on the test split, and every cross-validated model out of fold.

Test: the models of `evaluate.models` (`transformer` from models/classifier via policytag.model.Classifier,
`tfidf` and `zeroshot` from models/baseline/<kind>) score the dataset's test split at their own thresholds.
Cross-validation: every models/crossval/<name>.jsonl (the crossval stage), each sentence scored once, at the
thresholds of the fold that held it out. On ~100 sentences the cross-validated figures are the ones to trust;
the test split holds one to four positives of the rare labels.

Writes metrics/test.json and metrics/crossval.json (model -> label -> precision/recall/f1/support/
average_precision, plus micro and macro scores: `dvc metrics show/diff`), plot data under plots/pr/ and
plots/confusion/ (`dvc plots show/diff`), the table plots/confusion.csv, plots/pr_test.png and
plots/pr_crossval.png, and
reports/evaluation.md (tables, whether the description-initialised head helps, the best model's errors).
`python -m policytag.evaluation.evaluate` from the repository root; every path has an option.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from policytag.evaluation.metrics import average_precision, summary
from policytag.evaluation.plots import (
    confusion_rows,
    draw_pr_grid,
    write_confusion_csv,
    write_confusion_records,
    write_pr_data,
)
from policytag.evaluation.report import conclusions, render_report
from policytag.labels import LABEL_NAMES
from policytag.records import atomic_writer
from policytag.training.artifacts import write_json
from policytag.training.baseline import load_predictor
from policytag.training.crossval import all_rows, in_schema_order
from policytag.training.data import DatasetError, load_dataset_dict, split_arrays
from policytag.training.encoder import add_embeddings_option, use_embeddings
from policytag.training.out_of_fold import OutOfFoldError, read_out_of_fold
from policytag.training.params import CrossvalParams, EvaluateParams, ParamsError, read_params, section_params
from policytag.training.predictors import DEFAULT_BACKBONE, BaselineError
from policytag.training.thresholds import apply_thresholds

MODELS = ("transformer", "transformer_int8", "student", "student_int8", "tfidf", "zeroshot")
"""transformer_int8: the same classifier through the default CPU path (int8 ONNX Runtime, its own thresholds);
student, student_int8: the distilled student (models/student) at fp32 and through the same int8 path."""
SPLITS = ("test", "crossval")
DIGITS = 4


class EvaluationError(RuntimeError):
    """Inputs the evaluation cannot use; the message names the file and what to do."""


@dataclass
class Scored:
    """One model's scores on a set of sentences, with the thresholds each row was decided at."""

    model: str
    ids: list[str]
    texts: list[str]
    gold: np.ndarray  # [rows, labels] 0/1, schema order
    scores: np.ndarray  # [rows, labels]
    thresholds: np.ndarray  # [rows, labels]
    folds: np.ndarray | None = None  # cross-validation: the fold of each row
    params: dict | None = None  # cross-validation: what <name>.params.json records

    @property
    def predicted(self) -> np.ndarray:
        return apply_thresholds(self.scores, self.thresholds)


def score_test(model: str, test, classifier_dir: Path, baseline_dir: Path, backbone_dir: Path,
               student_dir: Path | None = None) -> Scored:
    """Scores of one model kind on the test split."""
    texts, gold = split_arrays(test)
    if model in ("transformer", "transformer_int8", "student", "student_int8"):
        from policytag.fast_scorer import OnnxScorer
        from policytag.model import Classifier, ClassifierError

        directory = classifier_dir if model.startswith("transformer") else student_dir
        if directory is None:
            raise EvaluationError(f"params.yaml evaluate.models names {model}: pass --student models/student "
                                  "(built by `dvc repro distill`)")
        try:
            predictor = OnnxScorer(directory) if model.endswith("_int8") else Classifier.load(directory)
        except ClassifierError as error:
            raise EvaluationError(str(error)) from None
    elif model in ("tfidf", "zeroshot"):
        extra = {"backbone": backbone_dir} if model == "zeroshot" else {}
        predictor = load_predictor(baseline_dir / model, **extra)
    else:
        raise EvaluationError(f"params.yaml evaluate.models: unknown model {model!r}; known: {', '.join(MODELS)}")
    scores = in_schema_order(predictor.predict_proba(texts), predictor.labels)
    thresholds = in_schema_order(np.asarray(predictor.thresholds, dtype=np.float64)[None, :], predictor.labels)
    return Scored(model, list(test["id"]), texts, gold, scores, np.repeat(thresholds, len(texts), axis=0))


def read_crossval(path: Path, texts_by_id: dict[str, str]) -> Scored:
    """A crossval stage output (<name>.jsonl, and <name>.params.json beside it when present)."""
    try:
        run = read_out_of_fold(path)
    except OutOfFoldError as error:
        raise EvaluationError(str(error)) from None
    ids = run.ids
    unknown = [i for i in ids if i not in texts_by_id]
    if unknown or len(set(ids)) != len(ids):
        raise EvaluationError(f"{path} does not match the dataset ({len(unknown)} unknown ids, "
                              f"{len(ids) - len(set(ids))} repeated); rerun `dvc repro crossval`")
    return Scored(path.stem, ids, [texts_by_id[i] for i in ids], run.gold, run.scores, run.thresholds, run.folds,
                  run.run_facts())


def model_metrics(scored: Scored) -> dict:
    """summary() plus each label's average precision (threshold-free) and its macro mean."""
    metrics = summary(scored.gold, scored.predicted)
    aps = []
    for k, label in enumerate(LABEL_NAMES):
        ap = average_precision(scored.gold[:, k], scored.scores[:, k]) if scored.gold[:, k].any() else None
        metrics[label]["average_precision"] = ap
        if ap is not None:
            aps.append(ap)
    metrics["macro_average_precision"] = float(np.mean(aps)) if aps else None
    return metrics


def rounded(value):
    if isinstance(value, dict):
        return {key: rounded(v) for key, v in value.items()}
    if isinstance(value, float):
        return round(value, DIGITS)
    return value


def read_classifier_facts(classifier_dir: Path) -> dict:
    """training_params.json and history.json of the trained classifier, where present."""
    facts = {}
    for name in ("training_params", "history"):
        path = classifier_dir / f"{name}.json"
        if path.is_file():
            try:
                facts[name] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                pass
    return facts


def evaluate(dataset, models: Sequence[str], classifier_dir: Path, baseline_dir: Path, crossval_dir: Path | None,
             backbone_dir: Path, log=lambda message: None,
             student_dir: Path | None = None) -> dict[str, dict[str, Scored]]:
    """split ("test", "crossval") -> model -> Scored."""
    results: dict[str, dict[str, Scored]] = {"test": {}, "crossval": {}}
    for model in models:
        log(f"scoring the test split with {model}")
        results["test"][model] = score_test(model, dataset["test"], classifier_dir, baseline_dir, backbone_dir,
                                            student_dir)
    if crossval_dir is not None:
        if not crossval_dir.is_dir():
            raise EvaluationError(f"{crossval_dir} is missing; run `dvc repro crossval` "
                                  "(python -m policytag.training.crossval)")
        everything = all_rows(dataset)
        texts_by_id = dict(zip(everything["id"], everything["text"]))
        for path in sorted(crossval_dir.glob("*.jsonl")):
            results["crossval"][path.stem] = read_crossval(path, texts_by_id)
    return results


def write_outputs(results: dict[str, dict[str, Scored]], metrics_dir: Path, plots_dir: Path, report: Path,
                  facts: dict) -> dict[str, dict]:
    metrics = {split: {model: rounded(model_metrics(scored)) for model, scored in results[split].items()}
               for split in SPLITS}
    for split in SPLITS:
        write_json(metrics_dir / f"{split}.json", metrics[split])
    write_pr_data(results, plots_dir / "pr")
    write_confusion_csv(confusion_rows(results), plots_dir / "confusion.csv")
    write_confusion_records(results, plots_dir / "confusion")
    for split, title in (("test", "Precision-recall on the test split"),
                         ("crossval", "Precision-recall out of fold (cross-validation)")):
        if results[split]:
            draw_pr_grid(results[split], plots_dir / f"pr_{split}.png", title)
        else:
            (plots_dir / f"pr_{split}.png").unlink(missing_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(report) as handle:
        handle.write(render_report(results, metrics, facts))
    return metrics


def subset(scored: Scored, rows: np.ndarray) -> Scored:
    return Scored(scored.model, [scored.ids[i] for i in rows], [scored.texts[i] for i in rows], scored.gold[rows],
                  scored.scores[rows], scored.thresholds[rows])


def group_metrics(results: dict[str, dict[str, Scored]], groups: dict[str, dict[str, str]]) -> dict:
    """split -> model -> group ("lang=vi", "source=pool", ...) -> sentences, micro/macro F1 and F1 per label."""
    out: dict = {}
    for split, by_model in results.items():
        for model, scored in by_model.items():
            names = sorted({f"{key}={value}" for i in scored.ids for key, value in groups.get(i, {}).items()})
            for name in names:
                key, value = name.split("=", 1)
                rows = np.array([i for i, sid in enumerate(scored.ids) if groups.get(sid, {}).get(key) == value])
                m = summary(scored.gold[rows], scored.predicted[rows])
                out.setdefault(split, {}).setdefault(model, {})[name] = rounded({
                    "sentences": int(len(rows)), "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
                    **{label: m[label]["f1"] for label in LABEL_NAMES}})
    return out


def group_table(groups: dict) -> str:
    lines = ["\n## By language, register and source\n",
             "Each model on subsets of the test split and of the cross-validated sentences (`metrics/groups.json`): "
             "micro-F1, macro-F1 (over all six labels) and F1 per label.\n",
             "| split | model | subset | sentences | micro-F1 | macro-F1 | " + " | ".join(LABEL_NAMES) + " |",
             "|---|---|---|---:|---:|---:|" + "---:|" * len(LABEL_NAMES)]
    for split, by_model in groups.items():
        for model, by_group in by_model.items():
            for name, m in by_group.items():
                lines.append(f"| {split} | {model} | {name} | {m['sentences']} | {m['micro_f1']:.3f} | "
                             f"{m['macro_f1']:.3f} | " + " | ".join(f"{m[label]:.2f}" for label in LABEL_NAMES) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--classifier", type=Path, default=Path("models/classifier"))
    parser.add_argument("--student", type=Path, default=None, help="the distilled student (models/student), for "
                                                                   "evaluate.models student and student_int8")
    parser.add_argument("--baseline", type=Path, default=Path("models/baseline"))
    parser.add_argument("--backbone", type=Path, default=Path(DEFAULT_BACKBONE), help="for the zero-shot model")
    parser.add_argument("--crossval", type=Path, default=Path("models/crossval"))
    add_embeddings_option(parser)
    parser.add_argument("--metrics", type=Path, default=Path("metrics"), help="directory for test.json, crossval.json")
    parser.add_argument("--plots", type=Path, default=Path("plots"))
    parser.add_argument("--report", type=Path, default=Path("reports/evaluation.md"))
    args = parser.parse_args(argv)
    log = lambda message: print(f"evaluate: {message}", file=sys.stderr)  # noqa: E731
    try:
        if args.embeddings:
            use_embeddings(args.embeddings)
        params = read_params(args.params)
        models = list(section_params(EvaluateParams, params.get("evaluate")).models)
        dataset = load_dataset_dict(args.dataset)
        results = evaluate(dataset, models, args.classifier, args.baseline, args.crossval, args.backbone, log,
                           args.student)
        facts = {"classifier": read_classifier_facts(args.classifier),
                 "folds": section_params(CrossvalParams, params.get("crossval")).folds,
                 "dataset_sizes": {name: len(split) for name, split in dataset.items()}}
        metrics = write_outputs(results, args.metrics, args.plots, args.report, facts)
        everything = all_rows(dataset)
        groups = group_metrics(results, {row["id"]: {"lang": row["lang"], "register": row["register"],
                                                     "source": row["source"]} for row in everything})
        write_json(args.metrics / "groups.json", groups)
        with args.report.open("a", encoding="utf-8") as handle:
            handle.write(conclusions(groups, metrics) + group_table(groups))
    except (EvaluationError, BaselineError, DatasetError, ParamsError, OSError) as error:
        print(f"evaluate: error: {error}", file=sys.stderr)
        return 1
    for split in SPLITS:
        for model, m in metrics[split].items():
            log(f"{split} {model}: micro-F1 {m['micro_f1']:.3f}, macro-F1 {m['macro_f1']:.3f}")
    log(f"-> {args.metrics}/, {args.plots}/, {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
