"""`policytag recipes`: training recipes compared by grouped cross-validation, the way the recipe is chosen.

Each variant is the `train` recipe of params.yaml with some settings changed (params.yaml `recipes:`, e.g.
`{name: layers_1, params: {trainable_layers: 1}}`); it is cross-validated on exactly the folds of the crossval
stage (grouped by document, `crossval.folds` and `crossval.seed`), its out-of-fold sentences decided at cross-fitted
thresholds, and scored overall, per language (English and Vietnamese originals) and per label. Blends of the
transformer's out-of-fold scores with the zero-shot prior (`blends:` weights, from models/crossval), and thresholds
tuned per language as well as per label, cost nothing to add. Results accumulate in metrics/recipes.json, keyed by the
variant's full parameters and the dataset version, so a rerun fits only what is new; reports/recipes.md tabulates them
against the current recipe.

Costly, so not a stage of `dvc repro`: run it by hand after `dvc repro crossval`, e.g. `policytag recipes`, or for a
single variant `policytag recipes --only layers_1`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from policytag.evaluation.metrics import macro_f1, per_label
from policytag.labels import LABEL_NAMES
from policytag.records import atomic_writer
from policytag.training.artifacts import directory_hash, write_json
from policytag.training.crossval import cross_fitted_thresholds, cross_validate, crossval_rows
from policytag.training.data import load_dataset_dict
from policytag.training.out_of_fold import out_of_fold, read_out_of_fold
from policytag.training.params import CrossvalParams, RecipesParams, TrainParams, read_params, section_params
from policytag.training.predictors import DEFAULT_BACKBONE
from policytag.training.thresholds import apply_thresholds

CURRENT = "current"


def variant_key(params: dict, dataset_version: str, folds: int, seed: int) -> str:
    text = json.dumps({"params": params, "dataset": dataset_version, "folds": folds, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scores_by_group(gold: np.ndarray, predicted: np.ndarray, langs: list[str]) -> dict:
    """Macro-F1 overall and per language, and F1 per label, of out-of-fold decisions."""
    langs_array = np.array(langs)
    result = {"macro_f1": round(macro_f1(gold, predicted), 4), "sentences": int(len(gold))}
    for lang in ("en", "vi"):
        rows = langs_array == lang
        if rows.any():
            result[f"macro_f1_{lang}"] = round(macro_f1(gold[rows], predicted[rows]), 4)
            result[f"f1_{lang}"] = {label: round(m["f1"], 4)
                                    for label, m in per_label(gold[rows], predicted[rows]).items()}
    result["f1"] = {label: round(m["f1"], 4) for label, m in per_label(gold, predicted).items()}
    return result


def run_variant(dataset, params: dict, folds: int, seed: int, backbone: Path,
                state_cache: dict | None = None) -> tuple[dict, dict]:
    """Cross-validate one transformer recipe; its scores and how long it took (with `state_cache` shared between
    variants, the frozen layers run once per depth)."""
    started = time.perf_counter()
    records = cross_validate(dataset, "transformer", folds, seed, params, backbone,
                             progress=lambda message: print(f"recipes: {message}", file=sys.stderr, flush=True),
                             state_cache=state_cache)
    seconds = time.perf_counter() - started
    return scores_of_records(records, dataset), {"seconds": round(seconds, 1)}


def scores_of_records(records: list[dict], dataset) -> dict:
    run = out_of_fold(records)
    lang_of = dict(zip(dataset["id"], dataset["lang"]))
    return scores_by_group(run.gold, apply_thresholds(run.scores, run.thresholds), [lang_of[i] for i in run.ids])


def crossval_stage_run(crossval_dir: Path, params: dict, dataset_version: str, folds: int, seed: int) -> list | None:
    """The crossval stage's transformer records when it ran exactly this recipe on these folds of this dataset:
    the current recipe need not be fitted twice."""
    facts_path = crossval_dir / "transformer.params.json"
    if not facts_path.is_file():
        return None
    facts = json.loads(facts_path.read_text(encoding="utf-8"))
    if (facts.get("params"), facts.get("dataset_version"), facts.get("folds"), facts.get("seed")) != (
            params, dataset_version, folds, seed):
        return None
    return read_out_of_fold(crossval_dir / "transformer.jsonl").records


def blend_scores(crossval_dir: Path, dataset, weight: float) -> dict:
    """weight x transformer + (1 - weight) x zero-shot, on the crossval stage's out-of-fold scores."""
    transformer = read_out_of_fold(crossval_dir / "transformer.jsonl")
    zeroshot = read_out_of_fold(crossval_dir / "zeroshot.jsonl")
    if not np.array_equal(transformer.folds, zeroshot.folds):
        raise ValueError(f"{crossval_dir}: transformer and zeroshot were cross-validated on different folds")
    gold, folds, ids = transformer.gold, transformer.folds, transformer.ids
    mixed = weight * transformer.scores + (1 - weight) * zeroshot.scores
    thresholds = cross_fitted_thresholds(gold, mixed, folds)
    lang_of = dict(zip(dataset["id"], dataset["lang"]))
    return scores_by_group(gold, apply_thresholds(mixed, thresholds), [lang_of[i] for i in ids])


def per_language_threshold_scores(crossval_dir: Path, dataset) -> dict:
    """The current recipe's out-of-fold scores decided at thresholds tuned per label and language (cross-fitted
    within each language) instead of per label."""
    run = read_out_of_fold(crossval_dir / "transformer.jsonl")
    lang_of = dict(zip(dataset["id"], dataset["lang"]))
    langs = np.array([lang_of[i] for i in run.ids])
    thresholds = np.empty_like(run.scores)
    for lang in np.unique(langs):
        rows = langs == lang
        thresholds[rows] = cross_fitted_thresholds(run.gold[rows], run.scores[rows], run.folds[rows])
    return scores_by_group(run.gold, apply_thresholds(run.scores, thresholds), list(langs))


def _cv_time(result: dict) -> str:
    if result.get("reused"):
        return "crossval stage"
    return "not timed" if result.get("seconds", 0) is None else f"{result.get('seconds', 0):.0f} s"


def render(results: dict, dataset_version: str = "") -> str:
    rows = sorted(results.values(), key=lambda r: -r["scores"]["macro_f1"])
    current = next((r for r in rows if r["name"] == CURRENT), None)

    def delta(r, key):
        if current is None or r is current:
            return ""
        return f" ({r['scores'].get(key, 0) - current['scores'].get(key, 0):+.3f})"

    lines = [f"# Training recipes by grouped cross-validation (dataset `{dataset_version[:16]}`)", "",
             "Written by `policytag recipes` (policytag/evaluation/recipes.py). Every variant is the train recipe of "
             "params.yaml "
             "with the changes shown, cross-validated on the crossval stage's folds (by document); macro-F1 of the "
             "out-of-fold originals at cross-fitted thresholds, overall and per language; in brackets the change "
             "against the current recipe.", "",
             "| variant | changes | macro-F1 | English | Vietnamese | minimum label F1 | CV time |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["scores"]
        changes = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "–"
        worst = min(s["f1"].items(), key=lambda item: item[1])
        lines.append(f"| {r['name']} | {changes} | {s['macro_f1']:.3f}{delta(r, 'macro_f1')} | "
                     f"{s.get('macro_f1_en', 0):.3f}{delta(r, 'macro_f1_en')} | "
                     f"{s.get('macro_f1_vi', 0):.3f}{delta(r, 'macro_f1_vi')} | {worst[1]:.3f} ({worst[0]}) | "
                     f"{_cv_time(r)} |")
    lines += ["", "F1 per label (English / Vietnamese):", "",
              "| variant | " + " | ".join(LABEL_NAMES) + " |", "|---|" + "---:|" * len(LABEL_NAMES)]
    for r in rows:
        s = r["scores"]
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{s.get('f1_en', {}).get(l, 0):.2f} / {s.get('f1_vi', {}).get(l, 0):.2f}" for l in LABEL_NAMES) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="policytag recipes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--backbone", type=Path, default=Path(DEFAULT_BACKBONE))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--crossval", type=Path, default=Path("models/crossval"), help="for the zero-shot blends")
    parser.add_argument("--out", type=Path, default=Path("metrics/recipes.json"))
    parser.add_argument("--report", type=Path, default=Path("reports/recipes.md"))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these variants (and keep the others' "
                                                                   "recorded results)")
    args = parser.parse_args(argv)
    params = read_params(args.params)
    settings = section_params(RecipesParams, params.get("recipes"))
    crossval = section_params(CrossvalParams, params.get("crossval"))
    folds, seed = crossval.folds, crossval.seed
    base = params.get("train") or {}
    variants = [{"name": CURRENT, "params": {}}, *settings.variants]
    dataset = crossval_rows(load_dataset_dict(args.dataset))
    version = directory_hash(args.dataset)
    results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    state_cache: dict = {}
    try:
        for variant in variants:
            name, changes = variant["name"], dict(variant.get("params") or {})
            if args.only and name not in args.only:
                continue
            effective = asdict(TrainParams.from_dict({**base, **changes}))
            key = variant_key(effective, version, folds, seed)
            if key in results:
                continue
            reused = crossval_stage_run(args.crossval, effective, version, folds, seed)
            if reused is not None:
                scores, facts = scores_of_records(reused, dataset), {"reused": str(args.crossval)}
            else:
                scores, facts = run_variant(dataset, effective, folds, seed, args.backbone, state_cache)
            results[key] = {"name": name, "changes": changes, "scores": scores, "dataset_version": version,
                            **facts}
            _write(args.out, results, args.report, version)
            print(f"recipes: {name}: macro-F1 {scores['macro_f1']:.3f} (en {scores.get('macro_f1_en', 0):.3f}, "
                  f"vi {scores.get('macro_f1_vi', 0):.3f})", file=sys.stderr)
        for weight in settings.blends:
            current_key = variant_key(asdict(TrainParams.from_dict(base)), version, folds, seed)
            key = f"blend-{float(weight)}-{current_key}"
            if key not in results and (args.crossval / "zeroshot.jsonl").is_file():
                results[key] = {"name": f"blend_zeroshot_{weight}", "changes": {"transformer_weight": weight},
                                "scores": blend_scores(args.crossval, dataset, float(weight)),
                                "dataset_version": version}
        key = f"thresholds-per-language-{variant_key(asdict(TrainParams.from_dict(base)), version, folds, seed)}"
        if key not in results and (args.crossval / "transformer.jsonl").is_file():
            results[key] = {"name": "thresholds_per_language", "changes": {"thresholds": "per label and language"},
                            "scores": per_language_threshold_scores(args.crossval, dataset), "dataset_version": version}
        _write(args.out, results, args.report, version)
    except (ValueError, OSError) as error:
        print(f"recipes: error: {error}", file=sys.stderr)
        return 1
    return 0


def _write(out: Path, results: dict, report: Path, dataset_version: str) -> None:
    """All results to the metrics file; to the report, grouped by the dataset version they were measured on (this
    one first): variants are comparable only on the same data and folds."""
    write_json(out, results)
    versions = list(dict.fromkeys([dataset_version, *(r.get("dataset_version", "") for r in results.values())]))
    sections = [render({key: r for key, r in results.items() if r.get("dataset_version") == version}, version)
                for version in versions if any(r.get("dataset_version") == version for r in results.values())]
    with atomic_writer(report) as handle:
        handle.write("\n".join(sections))


if __name__ == "__main__":
    sys.exit(main())
