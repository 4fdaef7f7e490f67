"""reports/evaluation.md: the metrics tables, whether the description-initialised head helps, and the errors of the
best model on the test split, with their text."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from policytag.evaluation.metrics import macro_f1, micro_f1
from policytag.labels import LABEL_NAMES


def fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _cell(m: dict | None) -> str:
    """F1 (precision/recall) of one label."""
    if m is None:
        return "–"
    return f"{fmt(m['f1'])} ({fmt(m['precision'])}/{fmt(m['recall'])})"


def summary_table(metrics: Mapping[str, Mapping[str, dict]]) -> str:
    models = list(dict.fromkeys([*metrics["test"], *metrics["crossval"]]))
    lines = ["| model | test micro-F1 | test macro-F1 | CV micro-F1 | CV macro-F1 | CV macro AP |",
             "|---|---:|---:|---:|---:|---:|"]
    for model in models:
        test, cv = metrics["test"].get(model, {}), metrics["crossval"].get(model, {})
        cells = [test.get("micro_f1"), test.get("macro_f1"), cv.get("micro_f1"), cv.get("macro_f1"),
                 cv.get("macro_average_precision")]
        lines.append(f"| {model} | " + " | ".join(fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def label_table(metrics: Mapping[str, Mapping[str, dict]]) -> str:
    models = list(dict.fromkeys([*metrics["test"], *metrics["crossval"]]))
    columns = [(model, split) for model in models for split in ("test", "crossval") if model in metrics[split]]
    header = "| label | test positives | CV positives | " + " | ".join(
        f"{model} {'test' if split == 'test' else 'CV'}" for model, split in columns) + " |"
    lines = [header, "|---|---:|---:|" + "---:|" * len(columns)]

    def support(split: str, label: str) -> str:
        for m in metrics[split].values():
            return str(m[label]["support"])
        return "–"

    for label in LABEL_NAMES:
        cells = [_cell(metrics[split][model].get(label)) for model, split in columns]
        lines.append(f"| {label} | {support('test', label)} | {support('crossval', label)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def fold_scores(scored) -> list[float]:
    """Macro-F1 of each cross-validation fold."""
    return [macro_f1(scored.gold[scored.folds == f], scored.predicted[scored.folds == f])
            for f in sorted(set(scored.folds.tolist()))]


def head_section(results, facts: dict) -> str:
    runs = {}
    for name, scored in results["crossval"].items():
        params = scored.params or {}
        if params.get("kind") == "transformer" and "head_init" in (params.get("params") or {}):
            runs.setdefault(params["params"]["head_init"], (name, scored))
    if "descriptions" in runs and "random" in runs:
        (d_name, d), (r_name, r) = runs["descriptions"], runs["random"]
        d_macro, r_macro = macro_f1(d.gold, d.predicted), macro_f1(r.gold, r.predicted)
        d_micro, r_micro = micro_f1(d.gold, d.predicted), micro_f1(r.gold, r.predicted)
        d_folds, r_folds = fold_scores(d), fold_scores(r)
        wins = sum(a > b for a, b in zip(d_folds, r_folds))
        if d_macro > r_macro and d_micro > r_micro:
            verdict = "On these folds it helps"
        elif d_macro < r_macro and d_micro < r_micro:
            verdict = "On these folds it does not help (the random head scores higher)"
        else:
            verdict = "No clear answer: macro- and micro-F1 disagree"
        return (f"Measured by cross-validation on the same folds: `{d_name}` (head_init: descriptions) against "
                f"`{r_name}` (head_init: random).\n\n"
                f"| head | CV micro-F1 | CV macro-F1 | macro-F1 per fold |\n|---|---:|---:|---|\n"
                f"| descriptions | {fmt(d_micro)} | {fmt(d_macro)} | {', '.join(fmt(x) for x in d_folds)} |\n"
                f"| random | {fmt(r_micro)} | {fmt(r_macro)} | {', '.join(fmt(x) for x in r_folds)} |\n\n"
                f"{verdict}: macro-F1 {d_macro - r_macro:+.3f}, micro-F1 {d_micro - r_micro:+.3f}; the description "
                f"head has the higher macro-F1 in {wins} of {len(d_folds)} folds. With a handful of positives for "
                "some labels, a difference of a few points is within fold-to-fold noise.")
    trained = ((facts.get("classifier") or {}).get("training_params") or {}).get("params", {}).get("head_init")
    how = ("To measure it, add `{name: transformer_random_head, kind: transformer, params: {head_init: random}}` "
           "beside `transformer` in params.yaml `crossval.models` (same folds, same everything else).")
    if trained:
        return (f"Not measured. The classifier in models/classifier was trained with head_init: {trained}, and no "
                f"cross-validated run compares head_init: descriptions with head_init: random. {how}")
    return f"Not measured: no classifier training parameters and no cross-validated comparison were found. {how}"


def best_model(results, metrics) -> tuple[str | None, str]:
    """The model whose errors are listed: the best cross-validated macro-F1 among those scored on test (chosen
    without looking at test); the best test macro-F1 when none was cross-validated."""
    candidates = [m for m in results["test"] if m in metrics["crossval"]]
    if candidates:
        best = max(candidates, key=lambda m: (metrics["crossval"][m]["macro_f1"], metrics["crossval"][m]["micro_f1"]))
        return best, "highest cross-validated macro-F1"
    if results["test"]:
        best = max(results["test"], key=lambda m: (metrics["test"][m]["macro_f1"], metrics["test"][m]["micro_f1"]))
        return best, "highest test macro-F1 (no cross-validated model to choose by)"
    return None, ""


def _quote(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def errors_section(scored) -> str:
    predicted, gold = scored.predicted, scored.gold > 0.5
    parts = []
    for k, label in enumerate(LABEL_NAMES):
        false_pos = [i for i in np.flatnonzero(predicted[:, k] & ~gold[:, k])]
        false_neg = [i for i in np.flatnonzero(~predicted[:, k] & gold[:, k])]
        if not false_pos and not false_neg:
            continue
        lines = [f"### {label} (threshold {scored.thresholds[0, k]:.2f})", ""]
        for kind, rows in (("False positive", false_pos), ("False negative", false_neg)):
            for i in sorted(rows, key=lambda i: -scored.scores[i, k]):
                gold_names = ", ".join(n for n, on in zip(LABEL_NAMES, gold[i]) if on) or "none"
                lines.append(f"- {kind}, score {scored.scores[i, k]:.3f} (gold: {gold_names}): "
                             f"“{_quote(scored.texts[i])}” `{scored.ids[i]}`")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) if parts else "No errors on the test split."


def render_report(results, metrics, facts: dict) -> str:
    sizes = facts.get("dataset_sizes") or {}
    test_n = sizes.get("test", "?")
    cv_n = next((len(s.ids) for s in results["crossval"].values()), None)
    folds = facts.get("folds")
    best, why = best_model(results, metrics)
    intro = [
        "# policytag evaluation",
        "",
        "Written by the `evaluate` stage (policytag/evaluation/evaluate.py); do not edit by hand.",
        "",
        "Every figure here is measured on documents the model never saw: splits and folds are cut by document "
        "(a document and its translations stay on one side), and translations are never scored.",
        "",
        f"- Test split: {test_n} sentences of held-out documents, scored by "
        f"{', '.join(results['test']) or 'no model'} at each model's own thresholds (never tuned on test).",
        (f"- Grouped cross-validation (CV): {cv_n} sentences of the train and validation documents, "
         f"{folds or '?'} folds by document, each sentence scored once by a model that never saw its document, at "
         f"thresholds tuned on the other folds' out-of-fold scores; models: {', '.join(results['crossval'])}."
         if results["crossval"] else "- Cross-validation: no results."),
        "- The test split holds few documents per label and language; CV figures, over many more documents, are "
        "the ones to compare models by.",
        "- Macro-F1 averages all six labels (a label with no positive scores 0); micro-F1 pools every decision.",
        "- Pictures: plots/pr_test.png, plots/pr_crossval.png (dots: each model at its thresholds); data for "
        "`dvc plots`: plots/pr/, plots/confusion/; confusion counts per label: plots/confusion.csv.",
    ]
    sections = [
        "\n".join(intro),
        "## Summary\n\n" + summary_table(metrics),
        "## Per label: F1 (precision/recall)\n\n" + label_table(metrics),
        "## The classifier's thresholds\n\n" + thresholds_section(facts),
        "## Does the description-initialised head help?\n\n" + head_section(results, facts),
    ]
    if best is not None:
        sections.append(f"## Errors of the best model on the test split: {best}\n\nChosen by {why}. Each error "
                        "with the sentence's score for the label and its gold labels.\n\n"
                        + errors_section(results["test"][best]))
    return "\n\n".join(sections) + "\n"


def _macro(groups: dict, split: str, model: str, subset: str) -> float | None:
    return ((groups.get(split) or {}).get(model) or {}).get(subset, {}).get("macro_f1")


def _side_by_side(groups: dict, first: str, second: str, first_name: str, second_name: str) -> str:
    """Two models' test macro-F1 per language, e.g. "English fp32 0.816, int8 0.813 (-0.003); Vietnamese ..."; empty
    when the test split does not have both."""
    said = []
    for lang in ("en", "vi"):
        a, b = (_macro(groups, "test", model, f"lang={lang}") for model in (first, second))
        if a is not None and b is not None:
            said.append(f"{'English' if lang == 'en' else 'Vietnamese'} {first_name} {a:.3f}, {second_name} {b:.3f} "
                        f"({b - a:+.3f})")
    return "; ".join(said)


def conclusions(groups: dict, metrics: dict) -> str:
    """What the grouped figures say: models against each other per language, int8 against fp32, weakest labels."""
    lines = ["\n## Conclusions (documents never seen: grouped CV and the test split)\n"]
    cv_models = list((groups.get("crossval") or {}))
    if cv_models:
        lines += ["| model | CV macro-F1 | English | Vietnamese |", "|---|---:|---:|---:|"]
        for model in cv_models:
            lines.append(f"| {model} | {fmt(metrics['crossval'][model]['macro_f1'])} | "
                         f"{fmt(_macro(groups, 'crossval', model, 'lang=en'))} | "
                         f"{fmt(_macro(groups, 'crossval', model, 'lang=vi'))} |")
        lines.append("")
        if "transformer" in cv_models:
            for baseline in (m for m in cv_models if m != "transformer"):
                gaps = [(lang, _macro(groups, "crossval", "transformer", f"lang={lang}"),
                         _macro(groups, "crossval", baseline, f"lang={lang}")) for lang in ("en", "vi")]
                said = ", ".join(f"{'English' if lang == 'en' else 'Vietnamese'} {t - b:+.3f}" for lang, t, b in gaps
                                 if t is not None and b is not None)
                lines.append(f"- The transformer against {baseline}, macro-F1 on grouped CV: {said}.")
            by_lang = (groups.get("crossval") or {}).get("transformer", {})
            for lang in ("en", "vi"):
                scores = by_lang.get(f"lang={lang}")
                if scores:
                    weakest = sorted(LABEL_NAMES, key=lambda label: scores[label])[:2]
                    lines.append(f"- Weakest labels of the transformer in {'English' if lang == 'en' else 'Vietnamese'}"
                                 f" (grouped CV): " + ", ".join(f"{label} {scores[label]:.3f}" for label in weakest)
                                 + ".")
    said = _side_by_side(groups, "transformer", "transformer_int8", "fp32", "int8")
    if said:
        lines.append("- The default CPU path (int8 ONNX Runtime with its own thresholds) against fp32 on the test "
                     "split, macro-F1: " + said + ".")
    said = _side_by_side(groups, "transformer_int8", "student_int8", "classifier", "student")
    if said:
        lines.append("- The distilled student (models/student) against the classifier, both int8, on the test split, "
                     "macro-F1: " + said + " (sizes and speeds: reports/student.md).")
    lines.append("- How the recipe was chosen (grouped CV of each variant): reports/recipes.md.")
    return "\n".join(lines) + "\n"


def thresholds_section(facts: dict) -> str:
    """Where the classifier's thresholds came from and how stable each is across folds."""
    history = (facts.get("classifier") or {}).get("history") or {}
    stability = history.get("threshold_stability")
    if not stability:
        return f"Thresholds from: {history.get('thresholds_from', 'unknown')}."
    lines = [f"Thresholds from: {history['thresholds_from']} (pooled out-of-fold scores of the training documents; "
             "the spread is over the thresholds each fold's complement gives).", "",
             "| label | threshold | out-of-fold positives | per fold | std | fallback |",
             "|---|---:|---:|---|---:|---|"]
    for label, s in stability.items():
        lines.append(f"| {label} | {s['threshold']:.2f} | {s['positives']} | "
                     f"{', '.join(f'{t:.2f}' for t in s['fold_thresholds'])} | {s['fold_std']:.3f} | "
                     f"{'yes (too few positives)' if s['fallback'] else 'no'} |")
    return "\n".join(lines)
