"""The informativeness ranking, on numbers worked out by hand."""

import numpy as np

from policytag.active_learning import informativeness, label_uncertainty, rank, rarity_weights


def test_uncertainty_peaks_on_the_threshold():
    u = label_uncertainty(np.array([[0.3, 0.0, 1.0, 0.65, 0.15]]), np.array([0.3, 0.3, 0.3, 0.3, 0.3]))
    assert np.allclose(u, [[1.0, 0.0, 0.0, 0.5, 0.5]])


def test_rare_labels_weigh_more():
    weights = rarity_weights(np.array([99, 3]))
    assert weights[1] == max(weights) and np.isclose(weights.sum(), 1)
    probabilities = np.array([[0.5, 0.0], [0.0, 0.5]])  # uncertain on the frequent / the rare label
    scores = informativeness(probabilities, np.array([0.5, 0.5]), weights)
    assert scores[1] > scores[0]


def test_diversity_keeps_near_duplicates_apart():
    scores = np.array([0.9, 0.89, 0.5])
    embeddings = np.array([[1.0, 0.0], [0.999, 0.01], [0.0, 1.0]])
    assert rank(scores) == [0, 1, 2]
    assert rank(scores, embeddings, diversity=0.5) == [0, 2, 1]
    assert rank(scores, embeddings, diversity=0.5, limit=2) == [0, 2]
