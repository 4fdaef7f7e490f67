import math

import pytest

from policytag.records import Annotation

from policytag.annotation.agreement import agreement, nominal_alpha

NAN = math.nan


def test_nominal_alpha_matches_krippendorffs_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units, nominal alpha 0.743.
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
    assert nominal_alpha(data) == pytest.approx(0.743, abs=5e-4)


def test_nominal_alpha_of_yes_no_decisions_by_hand():
    # Two coders, three units, one disagreement: 1 - (n - 1) * D / (n0 * n1) = 1 - 5 * 1 / (3 * 3) = 4/9.
    assert nominal_alpha([[1, 1, 0], [1, 0, 0]]) == pytest.approx(4 / 9)
    assert nominal_alpha([[1, 0], [1, 0]]) == 1.0


@pytest.mark.parametrize("data", [[[0, 0], [0, 0]], [[1, NAN], [NAN, 0]], [[NAN, NAN], [NAN, NAN]]])
def test_nominal_alpha_is_undefined_without_variation_or_pairs(data):
    assert nominal_alpha(data) is None


def test_agreement_per_label_counts_each_annotator_once_with_the_latest_annotation():
    annotations = [
        Annotation("s1", "a", ["privacy"]), Annotation("s1", "b", ["privacy"]),
        Annotation("s2", "a", []), Annotation("s2", "b", ["privacy"]),
        Annotation("s3", "a", ["taxation"]), Annotation("s3", "b", []),
        Annotation("s3", "b", ["taxation"]),  # b changed their mind: this one counts
        Annotation("s4", "a", ["privacy"]),  # one annotator: not a shared sentence
    ]
    metrics = agreement(annotations)
    assert metrics["sentences"] == 4 and metrics["sentences_with_2plus_annotators"] == 3
    assert metrics["alpha"]["privacy"] == pytest.approx(4 / 9, abs=1e-4)  # pairs (1,1) (0,1) (0,0)
    assert metrics["alpha"]["taxation"] == 1.0
    assert metrics["alpha"]["child_safety"] is None
    assert metrics["alpha_mean"] == pytest.approx((4 / 9 + 1) / 2, abs=1e-4)


def test_the_adjudicator_counts_in_the_labels_but_not_in_agreement():
    independent = [Annotation("s1", "a", ["privacy"]), Annotation("s1", "b", []),
                   Annotation("s2", "a", ["privacy"]), Annotation("s2", "b", ["privacy"]),
                   Annotation("s3", "a", []), Annotation("s3", "b", [])]
    with_adjudicator = independent + [Annotation("s1", "adjudicator", ["privacy"])]
    assert agreement(with_adjudicator)["alpha"] == agreement(independent)["alpha"]
    assert agreement(with_adjudicator)["sentences_adjudicated"] == 1
