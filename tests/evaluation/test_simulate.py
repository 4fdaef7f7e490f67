"""The simulation on synthetic data where informativeness matters: a rare label hidden in a large easy pool."""

import numpy as np

from policytag.evaluation.simulate import labels_to_reach, simulate
from policytag.training.metrics import macro_f1


def test_active_order_needs_fewer_labels_than_random():
    rng = np.random.default_rng(0)
    n, labels = 400, 6
    centres = rng.normal(0, 1, (labels, 16)) * 3
    gold = np.zeros((n, labels))
    gold[:, 0] = rng.random(n) < 0.5
    for column in range(1, labels):
        gold[:, column] = rng.random(n) < 0.04  # rare labels
    vectors = gold @ centres + rng.normal(0, 1.0, (n, 16))
    pool, test = list(range(300)), list(range(300, 400))
    settings = {"initial": 10, "batch": 10, "budget": 150, "diversity": 0.3, "target_fraction": 0.9,
                "repetitions": 3, "seed": 1}
    result = simulate(vectors, gold, pool, test, settings)
    needed = result["labels_to_target"]
    assert needed["active"] is not None
    assert needed["random"] is None or needed["active"] < needed["random"]
    assert result["curves"]["active"][0]["labels"] == 10


def test_helpers():
    gold = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    # label 2 has no positive
    assert macro_f1(gold, np.array([[1, 1], [0, 0], [0, 0]], dtype=float), present_only=True) == 2 / 3
    assert labels_to_reach([(10, 0.2), (20, 0.5), (30, 0.7)], 0.5) == 20
    assert labels_to_reach([(10, 0.2)], 0.5) is None
