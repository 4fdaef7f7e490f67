"""The `review-labels` stage: which gold labels are probably wrong?

Out-of-fold probabilities of a cross-validated model (models/crossval/<model>.jsonl: every sentence scored by a
model that never saw it) go to cleanlab's multi-label label-issue search (`find_label_issues`, confident learning)
and its per-sentence label quality scores. The suspects, worst first, are written as a review queue
(data/queue/label-review.jsonl: sentence, its gold labels, the model's opinion) that
`policytag annotate review` pushes to Label Studio, and as a Markdown report; the count goes to a metrics file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.records import atomic_writer, read_jsonl, write_jsonl
from policytag.training.artifacts import write_json
from policytag.training.out_of_fold import OutOfFoldError, read_out_of_fold


def find_suspects(records: list[dict], probabilities: np.ndarray, top: int = 20) -> list[dict]:
    """The sentences cleanlab's find_label_issues flags, plus the `top` of lowest label quality, worst first.

    Confident learning estimates how many labels of each class are wrong from the off-diagonal of the confident
    joint; on a small corpus that estimate is often zero, so the queue also takes the lowest-quality sentences
    (each marked whether find_label_issues flagged it)."""
    import warnings

    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    given = [[LABEL_NAMES.index(name) for name in r["labels"]] for r in records]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes with few examples: that is this corpus
        flagged = {int(i) for i in find_label_issues(labels=given, pred_probs=probabilities)}
        quality = get_label_quality_scores(given, probabilities)
    worst = [int(i) for i in np.argsort(quality, kind="stable")[:top]]
    suspects = []
    for row in sorted(flagged | set(worst), key=lambda i: (quality[i], i)):
        record = records[int(row)]
        thresholds = record.get("thresholds") or {name: 0.5 for name in LABEL_NAMES}
        opinion = [name for name in LABEL_NAMES if record["probabilities"][name] >= thresholds[name]]
        suspects.append({
            "sentence_id": record["id"], "label_quality": round(float(quality[row]), 4), "flagged": row in flagged,
            "gold": record["labels"], "model": opinion,
            "added_by_model": [n for n in opinion if n not in record["labels"]],
            "dropped_by_model": [n for n in record["labels"] if n not in opinion],
            "scores": record["probabilities"], "thresholds": thresholds,
        })
    return suspects


def report(suspects: list[dict], texts: dict[str, str], model: str, total: int) -> str:
    flagged = sum(item["flagged"] for item in suspects)
    lines = [f"# Label review: likely label errors\n",
             f"cleanlab on the out-of-fold probabilities of `{model}` ({total} sentences, each scored by a model "
             f"trained without it): `find_label_issues` flags **{flagged}** sentences; the review queue below "
             f"holds those and the lowest label-quality scores, **{len(suspects)}** in all, worst first. Not a "
             "verdict: an annotator decides, in Label Studio (`policytag annotate review`).\n",
             "| # | quality | flagged | gold | model | sentence |", "|---|---|---|---|---|---|"]
    for number, item in enumerate(suspects, 1):
        text = texts.get(item["sentence_id"], "").replace("|", "\\|")
        lines.append(f"| {number} | {item['label_quality']:.3f} | {'yes' if item['flagged'] else ''} | "
                     f"{', '.join(item['gold']) or 'none'} | "
                     f"{', '.join(item['model']) or 'none'} | {text} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crossval", type=Path, default=Path("models/crossval"))
    parser.add_argument("--model", default="transformer", help="which cross-validated model's scores to use")
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    parser.add_argument("--queue", type=Path, default=Path("data/queue/label-review.jsonl"))
    parser.add_argument("--report", type=Path, default=Path("reports/label-review.md"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/label-review.json"))
    parser.add_argument("--top", type=int, default=20, help="queue this many lowest-quality sentences as well")
    args = parser.parse_args(argv)
    try:
        run = read_out_of_fold(args.crossval / f"{args.model}.jsonl")
    except OutOfFoldError as error:
        print(f"review-labels: error: {error}", file=sys.stderr)
        return 1
    records = run.records
    suspects = find_suspects(records, run.scores, args.top)
    texts = {row["id"]: row["text"] for row in read_jsonl(args.sentences)}
    for item in suspects:
        item["text"] = texts.get(item["sentence_id"], "")
    write_jsonl(args.queue, suspects)
    with atomic_writer(args.report) as handle:
        handle.write(report(suspects, texts, args.model, len(records)))
    per_label = {name: sum(name in s["added_by_model"] or name in s["dropped_by_model"] for s in suspects)
                 for name in LABEL_NAMES}
    write_json(args.metrics, {"model": args.model, "sentences": len(records),
                              "label_issues": sum(item["flagged"] for item in suspects), "review_queue": len(suspects),
                              "issues_per_label": per_label})
    print(f"review-labels: {sum(item['flagged'] for item in suspects)} label issues flagged among {len(records)} "
          f"sentences; review queue of {len(suspects)} -> {args.queue}, {args.report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
