"""The `simulate` stage: does the active-learning order reach a given macro-F1 with fewer labels than random order?

A simulation on the gold labels: the test split is held out for scoring; the rest is the pool. Both strategies start
from the same few random labelled sentences; each round a learner is retrained on what is labelled, scored on the
test split (macro-F1 over the labels present there), and asks for `batch` more sentences, whose gold labels answer
it: in random order, or in policytag's active-learning order (policytag/active_learning.py: uncertainty weighted
toward rare labels, near-duplicates spread out, as `policytag annotate suggest` ranks). The learner is a
frozen-encoder head: the backbone's e5 sentence embeddings (computed once) with one class-balanced logistic
regression per label. Repeated over several seeds; the learning curves are DVC plots, and the number of labels each
strategy needs to reach the target (a fraction of the macro-F1 of the learner trained on the whole pool) is a metric.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from policytag.active_learning import informativeness, rank, rarity_weights
from policytag.records import atomic_writer
from policytag.training.artifacts import write_json
from policytag.training.metrics import macro_f1
from policytag.training.params import SimulateParams, load_section

STRATEGIES = ("active", "random")


def fit_head(vectors: np.ndarray, gold: np.ndarray, seed: int):
    """One logistic regression per label; a label with a single class so far predicts that class's prior."""
    from sklearn.linear_model import LogisticRegression

    models = []
    for column in range(gold.shape[1]):
        target = gold[:, column]
        if target.min() == target.max():
            models.append(float(target[0]))
        else:
            models.append(LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0,
                                             random_state=seed).fit(vectors, target))
    return models


def predict(models, vectors: np.ndarray) -> np.ndarray:
    return np.column_stack([np.full(len(vectors), m) if isinstance(m, float) else m.predict_proba(vectors)[:, 1]
                            for m in models])


def next_batch(strategy: str, models, vectors: np.ndarray, gold: np.ndarray, labelled: list[int],
               unlabelled: list[int], batch: int, diversity: float, rng: np.random.Generator) -> list[int]:
    if strategy == "random":
        return [int(i) for i in rng.permutation(unlabelled)[:batch]]
    probabilities = predict(models, vectors[unlabelled])
    weights = rarity_weights(gold[labelled].sum(axis=0))
    value = informativeness(probabilities, np.full(gold.shape[1], 0.5), weights)
    return [unlabelled[i] for i in rank(value, vectors[unlabelled], diversity=diversity, limit=batch)]


def learning_curve(strategy: str, vectors: np.ndarray, gold: np.ndarray, pool: list[int], test: list[int],
                   start: list[int], batch: int, budget: int, diversity: float, seed: int) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    labelled, unlabelled = list(start), [i for i in pool if i not in set(start)]
    curve = []
    while True:
        models = fit_head(vectors[labelled], gold[labelled], seed)
        predicted = (predict(models, vectors[test]) >= 0.5).astype(float)
        curve.append((len(labelled), macro_f1(gold[test], predicted, present_only=True)))
        if not unlabelled or len(labelled) >= budget:
            return curve
        chosen = next_batch(strategy, models, vectors, gold, labelled, unlabelled, batch, diversity, rng)
        labelled += chosen
        unlabelled = [i for i in unlabelled if i not in set(chosen)]


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((labels for labels, score in curve if score >= target), None)


def simulate(vectors: np.ndarray, gold: np.ndarray, pool: list[int], test: list[int], settings: dict) -> dict:
    full = macro_f1(gold[test], (predict(fit_head(vectors[pool], gold[pool], 0), vectors[test]) >= 0.5).astype(float),
                    present_only=True)
    target = settings["target_fraction"] * full
    runs = {strategy: [] for strategy in STRATEGIES}
    for repetition in range(settings["repetitions"]):
        seed = settings["seed"] + repetition
        start = [int(i) for i in np.random.default_rng(seed).permutation(pool)[: settings["initial"]]]
        for strategy in STRATEGIES:
            runs[strategy].append(learning_curve(strategy, vectors, gold, pool, test, start, settings["batch"],
                                                 settings.get("budget") or len(pool), settings["diversity"], seed))
    curves = {}
    for strategy, repetitions in runs.items():
        length = min(len(curve) for curve in repetitions)
        curves[strategy] = [{"labels": repetitions[0][step][0],
                             "macro_f1": round(float(np.mean([curve[step][1] for curve in repetitions])), 4)}
                            for step in range(length)]
    needed = {strategy: labels_to_reach([(p["labels"], p["macro_f1"]) for p in curve], target)
              for strategy, curve in curves.items()}
    return {"full_pool_macro_f1": round(full, 4), "target_macro_f1": round(target, 4), "labels_to_target": needed,
            "pool": len(pool), "test": len(test), "curves": curves, "settings": settings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--backbone", type=Path, default=Path("models/backbone"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--plots", type=Path, default=Path("plots/active_learning"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/active_learning.json"))
    from policytag.training.encoder import Encoder, add_embeddings_option, use_embeddings

    add_embeddings_option(parser)
    args = parser.parse_args(argv)
    from policytag.training.data import load_dataset_dict

    if args.embeddings:
        use_embeddings(args.embeddings)

    settings = asdict(load_section(args.params, SimulateParams))
    dataset = load_dataset_dict(args.dataset)
    rows = [row for split in ("train", "validation", "test") for row in dataset[split]]
    test_size = len(dataset["test"])
    gold = np.array([row["labels"] for row in rows], dtype=float)
    vectors = Encoder(args.backbone).encode([row["text"] for row in rows], "query: ")
    pool, test = list(range(len(rows) - test_size)), list(range(len(rows) - test_size, len(rows)))
    result = simulate(vectors, gold, pool, test, settings)
    for strategy, curve in result["curves"].items():
        with atomic_writer(args.plots / f"{strategy}.json") as handle:
            json.dump(curve, handle, indent=1)
    _picture(result, args.plots.parent / "active_learning.png")
    summary = {key: value for key, value in result.items() if key != "curves"}
    write_json(args.metrics, summary)
    print(f"simulate: target macro-F1 {result['target_macro_f1']} ({settings['target_fraction']:.0%} of "
          f"{result['full_pool_macro_f1']} with all {len(pool)} pool labels): active learning needs "
          f"{result['labels_to_target']['active']} labels, random order {result['labels_to_target']['random']}",
          file=sys.stderr)
    return 0


def _picture(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for strategy, curve in result["curves"].items():
        axes.plot([p["labels"] for p in curve], [p["macro_f1"] for p in curve], marker="o", markersize=3,
                  label=f"{strategy} order")
    axes.axhline(result["target_macro_f1"], color="grey", linestyle="--", linewidth=1, label="target")
    axes.set_xlabel("labelled sentences")
    axes.set_ylabel("test macro-F1")
    axes.set_title(f"Active learning vs random order (mean of {result['settings']['repetitions']} runs)")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
