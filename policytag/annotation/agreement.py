"""Inter-annotator agreement: Krippendorff's alpha (nominal) per label, on each label's yes/no decision.

For every label, the reliability data is annotators x sentences, 1 where the annotator chose the label, 0 where they
did not (a "none" answer is 0 for every label), missing where they did not annotate the sentence. Alpha is computed
over the sentences two or more annotators labelled; it is undefined (null) when there are none, or when every
decision on the label is the same (no variation to agree on). Each annotator counts once per sentence, with their
latest annotation, as in policytag.annotations. An adjudicator (an annotator named `adjudicator`, who decides
ties after seeing both sides) is not an independent annotator: their annotations count in the labels but not in
alpha.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from policytag.annotations import latest_per_annotator
from policytag.labels import LABEL_NAMES
from policytag.records import Annotation, atomic_writer


def nominal_alpha(reliability_data) -> float | None:
    """Krippendorff's alpha, nominal, of a coders x units array (NaN = missing); None where it is undefined."""
    import krippendorff

    data = np.asarray(reliability_data, dtype=float)
    values = np.unique(data[~np.isnan(data)])
    if len(values) < 2:
        return None
    try:
        alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    except ValueError:  # no unit with two or more values
        return None
    return None if math.isnan(alpha) else float(alpha)


ADJUDICATORS = frozenset({"adjudicator"})


def agreement(annotations: list[Annotation]) -> dict:
    """Alpha per label and the counts it rests on, as a JSON-ready dict (the metrics file's content)."""
    adjudicated = {a.sentence_id for a in annotations if a.annotator in ADJUDICATORS}
    by_sentence = latest_per_annotator([a for a in annotations if a.annotator not in ADJUDICATORS])
    shared = sorted(sid for sid, by_annotator in by_sentence.items() if len(by_annotator) >= 2)
    annotators = sorted({name for sid in shared for name in by_sentence[sid]})
    row = {name: position for position, name in enumerate(annotators)}
    alphas = {}
    for label in LABEL_NAMES:
        data = np.full((len(annotators), len(shared)), np.nan)
        for column, sid in enumerate(shared):
            for annotator, annotation in by_sentence[sid].items():
                data[row[annotator], column] = float(label in annotation.labels)
        alpha = nominal_alpha(data)
        alphas[label] = None if alpha is None else round(alpha, 4)
    defined = [value for value in alphas.values() if value is not None]
    return {
        "alpha": alphas,
        "alpha_mean": round(sum(defined) / len(defined), 4) if defined else None,
        "sentences": len(by_sentence),
        "sentences_with_2plus_annotators": len(shared),
        "annotators": len({name for by_annotator in by_sentence.values() for name in by_annotator}),
        "annotators_on_shared_sentences": len(annotators),
        "sentences_adjudicated": len(adjudicated),
    }


def write_agreement(annotations: list[Annotation], path: str | Path) -> dict:
    """Compute agreement and write it as a DVC metrics file (JSON)."""
    metrics = agreement(annotations)
    with atomic_writer(path) as handle:
        json.dump(metrics, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return metrics


def main(argv: list[str] | None = None) -> int:
    """python -m policytag.annotation.agreement [ANNOTATION_DIR] [METRICS_FILE]: agreement of the annotation files."""
    import argparse

    from policytag.annotations import read_annotation_dir

    parser = argparse.ArgumentParser(prog="python -m policytag.annotation.agreement", description=main.__doc__)
    parser.add_argument("annotations", nargs="?", default="data/annotations", type=Path)
    parser.add_argument("metrics", nargs="?", default="metrics/agreement.json", type=Path)
    args = parser.parse_args(argv)
    metrics = write_agreement(read_annotation_dir(args.annotations), args.metrics)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
