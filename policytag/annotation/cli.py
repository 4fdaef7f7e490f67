"""`policytag annotate push|pull|suggest|review|apply-review`: the command-line side of policytag.annotation.push and
policytag.annotation.pull (and `start|stop|status`, the local session: policytag.annotation.start).

policytag/cli.py calls add_subcommands() on its `annotate` parser's subparsers; each subcommand sets `run` to a
function of the parsed arguments that returns the exit status. `python -m policytag.annotation push|pull ...` runs the
same.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from policytag.annotation.connection import DEFAULT_TITLE, KEY_VARIABLE, URL_VARIABLE, LabelStudioError

SENTENCES = Path("data/sentences.jsonl")
RAW = Path("data/raw")
ANNOTATIONS = Path("data/annotations")
REVIEW = Path("data/annotations/review/ties.jsonl")
QUEUE = Path("data/queue/suggested.jsonl")
REVIEW_QUEUE = Path("data/queue/label-review.jsonl")
"""In a subfolder: policytag.annotations.read_annotation_dir reads every *.jsonl directly in data/annotations."""
METRICS = Path("metrics/agreement.json")
SERVER = (f"the server and token come from ${URL_VARIABLE} and ${KEY_VARIABLE}, else from the local session of "
          "`policytag annotate start`")


def add_subcommands(subparsers) -> None:
    """Add `push` and `pull` to an argparse subparsers object (e.g. the one of `policytag annotate`)."""
    push = subparsers.add_parser("push", help="import sentences (and predictions) into Label Studio",
                                 description=f"Import sentences not yet in the project as tasks; {SERVER}.")
    push.add_argument("--sentences", type=Path, default=SENTENCES, help=f"sentences file (default {SENTENCES})")
    push.add_argument("--raw", type=Path, default=RAW, help=f"article folder, for the view (default {RAW})")
    push.add_argument("--project", default=DEFAULT_TITLE, help=f"project title (default {DEFAULT_TITLE})")
    push.add_argument("--predictions", type=Path,
                      help='JSON Lines of per-sentence scores: {"sentence_id": ..., "scores": {label: score}}')
    push.add_argument("--model-version", default="", help="tag of the predictions' model (needed with them)")
    push.add_argument("--threshold", type=float, default=0.5, help="score at which a label is chosen (0.5)")
    push.add_argument("--thresholds", type=Path, help='JSON file of per-label thresholds ({label: t} or '
                      '{"thresholds": {label: t}}); labels it lacks use --threshold')
    push.add_argument("--annotations", type=Path, nargs="+", default=[], metavar="FILE",
                      help="annotation files (e.g. data/annotations/gold.jsonl) to add as annotations for review")
    push.add_argument("--annotators-per-task", type=int, metavar="N",
                      help="how many annotators Label Studio gives each task (2+ to measure agreement); "
                           "default: 1 for a new project, unchanged for an existing one")
    push.set_defaults(run=main_push)

    pull = subparsers.add_parser("pull", help="export annotations from Label Studio into data/annotations",
                                 description=f"Export, check and normalise the project's annotations; {SERVER}.")
    pull.add_argument("--sentences", type=Path, default=SENTENCES, help=f"sentences file (default {SENTENCES})")
    pull.add_argument("--project", default=DEFAULT_TITLE, help=f"project title (default {DEFAULT_TITLE})")
    pull.add_argument("--out", type=Path, default=ANNOTATIONS, help=f"annotation folder (default {ANNOTATIONS})")
    pull.add_argument("--review", type=Path, default=REVIEW, help=f"tied sentences to review (default {REVIEW})")
    pull.add_argument("--metrics", type=Path, default=METRICS, help=f"agreement metrics (default {METRICS})")
    pull.set_defaults(run=main_pull)

    suggest = subparsers.add_parser(
        "suggest", help="rank unannotated sentences by informativeness and push them, with predictions, in that order",
        description=f"Score sentences that have no annotation with the current classifier, order them by "
                    f"informativeness (label uncertainty weighted toward rare labels, near-duplicates spread out), "
                    f"write the queue and push it to Label Studio in that order; {SERVER}.")
    suggest.add_argument("--model", type=Path, default=Path("models/classifier"), help="classifier directory")
    suggest.add_argument("--sentences", type=Path, default=SENTENCES, help=f"sentences file (default {SENTENCES})")
    suggest.add_argument("--annotations", type=Path, default=ANNOTATIONS, help="annotation folder: what is done")
    suggest.add_argument("--raw", type=Path, default=RAW, help=f"article folder, for the view (default {RAW})")
    suggest.add_argument("--project", default=DEFAULT_TITLE, help=f"project title (default {DEFAULT_TITLE})")
    suggest.add_argument("--limit", type=int, help="queue at most this many sentences (default: all)")
    suggest.add_argument("--diversity", type=float, default=0.5,
                         help="how much similarity to already-queued sentences lowers a sentence's rank (0.5)")
    suggest.add_argument("--queue", type=Path, default=QUEUE, help=f"ranked queue to write (default {QUEUE})")
    suggest.add_argument("--no-push", action="store_true", help="write the queue only; do not contact Label Studio")
    suggest.set_defaults(run=main_suggest)

    review = subparsers.add_parser(
        "review", help="push the likely label errors (policytag review-labels) to Label Studio for a second look",
        description=f"Push the sentences of the label-review queue to a review project, each with the model's "
                    f"opinion as a prediction and its current annotations, worst first; {SERVER}.")
    review.add_argument("--queue", type=Path, default=REVIEW_QUEUE, help=f"review queue (default {REVIEW_QUEUE})")
    review.add_argument("--sentences", type=Path, default=SENTENCES, help=f"sentences file (default {SENTENCES})")
    review.add_argument("--annotations", type=Path, default=ANNOTATIONS, help="annotation folder (current labels)")
    review.add_argument("--raw", type=Path, default=RAW, help=f"article folder, for the view (default {RAW})")
    review.add_argument("--project", default=f"{DEFAULT_TITLE} label review", help="review project title")

    review.set_defaults(run=main_review)

    apply = subparsers.add_parser(
        "apply-review", help="apply a reviewer's decisions on the label-review queue, and log them",
        description="Each decision (JSON Lines: sentence_id, labels, reason) corrects a single annotator's "
                    "annotation or becomes the adjudicator's vote where several annotated; every decision is logged. "
                    f"{SERVER}.")
    apply.add_argument("decisions", type=Path, help="the reviewer's decisions (JSON Lines)")
    apply.add_argument("--annotations", type=Path, default=ANNOTATIONS, help="annotation folder (current labels)")
    apply.add_argument("--project", default=DEFAULT_TITLE, help=f"the annotation project (default {DEFAULT_TITLE})")
    apply.add_argument("--log", type=Path, default=ANNOTATIONS / "review" / "label-review-decisions.jsonl",
                       help="where the decisions and what they changed are logged")
    apply.set_defaults(run=main_apply_review)

    from policytag.annotation.start import add_subcommands as add_session_subcommands

    add_session_subcommands(subparsers)  # start, stop, status: the local session


def main_apply_review(args: argparse.Namespace) -> int:
    from policytag.annotation.connection import connect
    from policytag.annotation.review_decisions import apply_decisions, read_decisions
    from policytag.records import read_jsonl, write_jsonl

    def run() -> tuple[str, int]:
        decisions = read_decisions(args.decisions)
        log = apply_decisions(connect(), decisions, args.annotations, args.project)
        previous = list(read_jsonl(args.log)) if args.log.exists() else []
        write_jsonl(args.log, previous + log)
        changed = sum(entry["action"] != "kept" for entry in log)
        return (f"{len(log)} decisions: {changed} changed, {len(log) - changed} kept -> {args.log}; "
                "now run `policytag annotate pull`"), 0

    return _main("apply-review", run)


def main_push(args: argparse.Namespace) -> int:
    from policytag.records import read_annotations

    from policytag.annotation.connection import connect
    from policytag.annotation.push import push, read_articles, read_predictions

    def run() -> tuple[str, int]:
        sentences = _read_sentences(args.sentences)
        thresholds = _thresholds(args.thresholds, args.threshold)
        predictions = read_predictions(args.predictions) if args.predictions else None
        annotations = [a for path in args.annotations for a in read_annotations(path)]
        started = time.perf_counter()
        result = push(connect(), sentences, read_articles(args.raw), title=args.project, predictions=predictions,
                      thresholds=thresholds, model_version=args.model_version, annotations=annotations,
                      annotators_per_task=args.annotators_per_task, progress=_progress)
        return f"{result.summary()} in {time.perf_counter() - started:.1f} s", 0

    return _main("push", run)


def main_pull(args: argparse.Namespace) -> int:
    from policytag.annotation.connection import connect
    from policytag.annotation.pull import pull, review_and_agreement

    def run() -> tuple[str, int]:
        sentences = _read_sentences(args.sentences)
        started = time.perf_counter()
        result = pull(connect(), sentences, args.out, title=args.project)
        for problem in result.problems:
            _progress(f"{problem.kind}: {problem.message}")
        ties, metrics = review_and_agreement(args.out, args.review, args.metrics, sentences)
        alphas = ", ".join(f"{name} {'n/a' if value is None else value}" for name, value in metrics["alpha"].items())
        _progress(f"{len(ties)} sentences with tied labels -> {args.review}")
        _progress(f"agreement on {metrics['sentences_with_2plus_annotators']} sentences with 2+ annotators "
                  f"(alpha: {alphas}) -> {args.metrics}")
        summary = f"{result.summary()} in {time.perf_counter() - started:.1f} s"
        if result.invalid:  # everything is written; these need a fix in Label Studio
            return (f"{summary}; {len(result.invalid)} annotations need fixing in Label Studio "
                    f"(see {args.out / 'pull-report.json'})"), 1
        return summary, 0

    return _main("pull", run)


def main_suggest(args: argparse.Namespace) -> int:
    from policytag.annotation.suggest import suggest, write_queue
    from policytag.model import Classifier, ClassifierError

    def run() -> tuple[str, int]:
        sentences = _read_sentences(args.sentences)
        try:
            classifier = Classifier.load(args.model)
        except ClassifierError as error:
            raise ValueError(str(error)) from None
        started = time.perf_counter()
        queue = suggest(sentences, classifier, args.annotations, diversity=args.diversity, limit=args.limit)
        write_queue(args.queue, queue)
        message = f"{len(queue)} sentences ranked -> {args.queue} in {time.perf_counter() - started:.1f} s"
        if args.no_push or not queue:
            return message, 0
        from policytag.annotation.connection import connect
        from policytag.annotation.push import push, read_articles

        by_id = {s.id: s for s in sentences}
        result = push(connect(), [by_id[item.sentence_id] for item in queue], read_articles(args.raw),
                      title=args.project, predictions={item.sentence_id: item.scores for item in queue},
                      thresholds=dict(zip(classifier.labels, map(float, classifier.thresholds))),
                      model_version=classifier.model_version, progress=_progress)
        return f"{message}; {result.summary()}", 0

    return _main("suggest", run)


def main_review(args: argparse.Namespace) -> int:
    from policytag.annotation.connection import connect
    from policytag.annotation.push import push, read_articles
    from policytag.annotations import read_annotation_dir
    from policytag.records import read_jsonl

    def run() -> tuple[str, int]:
        if not args.queue.exists():
            raise ValueError(f"{args.queue}: no review queue; run `dvc repro review-labels` first")
        queue = list(read_jsonl(args.queue))
        by_id = {s.id: s for s in _read_sentences(args.sentences)}
        missing = [item["sentence_id"] for item in queue if item["sentence_id"] not in by_id]
        if missing:
            raise ValueError(f"{args.queue}: {len(missing)} sentences are not in {args.sentences} (e.g. "
                             f"{missing[0]}); rerun `dvc repro review-labels`")
        wanted = {item["sentence_id"] for item in queue}
        current = [a for a in read_annotation_dir(args.annotations) if a.sentence_id in wanted]
        result = push(connect(), [by_id[item["sentence_id"]] for item in queue], read_articles(args.raw),
                      title=args.project, predictions={item["sentence_id"]: item["scores"] for item in queue},
                      thresholds=queue[0]["thresholds"] if queue else 0.5, model_version="label-review",
                      annotations=current, progress=_progress)
        return result.summary(), 0

    return _main("review", run)


def _main(command: str, run) -> int:
    """Run, print its summary; bad input or an unusable server is one line on stderr and exit status 1."""
    try:
        message, status = run()
    except (LabelStudioError, ValueError, OSError) as error:
        print(f"policytag annotate {command}: error: {error}", file=sys.stderr)
        return 1
    print(f"policytag annotate {command}: {message}", file=sys.stderr)
    return status


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def _read_sentences(path: Path):
    from policytag.records import read_sentences

    if not path.exists():
        raise ValueError(f"{path}: no such sentences file; run `dvc repro segment` (or policytag segment) first")
    return read_sentences(path)


def _thresholds(path: Path | None, default: float):
    if path is None:
        return default
    value = json.loads(path.read_text(encoding="utf-8"))
    value = value.get("thresholds", value) if isinstance(value, dict) else value
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object of per-label thresholds")
    from policytag.labels import LABEL_NAMES, validate_labels

    validate_labels(list(value))
    return {name: float(value.get(name, default)) for name in LABEL_NAMES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policytag.annotation", description="Label Studio push and pull.")
    add_subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.run(args)
