"""The `policytag tag` command: its arguments, and the job on one machine (inputs -> tagger -> outputs); the loop
that writes, resumes and reports is policytag.tagging.job's, shared with the Ray engine
(policytag.tagging.ray_engine)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from policytag.tagging.job import check_outputs, run_job, segment_workers
from policytag.tagging.outputs import FORMATS


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help=".txt/.html files, folders, .jsonl (id, text), .csv, or - (stdin)")
    parser.add_argument("--out", required=True, type=Path,
                        help="sentences file; article summaries go beside it (tagged.jsonl -> tagged.articles.jsonl, "
                             "t.csv -> t.csv.articles.jsonl); running again resumes")
    parser.add_argument("--format", choices=FORMATS, default=None, help="default: from --out's suffix, else jsonl")
    parser.add_argument("--model", type=Path, default=Path("models/classifier"), help="trained classifier dir")
    parser.add_argument("--html", type=Path, help="also write one page per article and an index here")
    parser.add_argument("--precision", choices=("auto", "fp32", "int8", "bf16"), default="auto",
                        help="auto: int8 on CPU, bf16 on GPU")
    parser.add_argument("--batch-size", type=int, default=None, help="sentences per forward pass")
    parser.add_argument("--id-column", default="id", help="id field of .jsonl/.csv records")
    parser.add_argument("--text-column", default="text", help="text field of .jsonl/.csv records")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="ray: run on a Ray cluster (RAY_ADDRESS, or a local instance)")
    parser.add_argument("--actors", type=int, default=None,
                        help="--engine ray: scoring actors, one model each (default: one per GPU of the cluster, "
                             "else one per 4 CPUs)")
    parser.add_argument("--ray-window", type=int, default=None,
                        help="--engine ray: sentences per round of scoring (default 100000); each round starts "
                             "the actor pool afresh, and a crash loses at most one round")
    parser.add_argument("--segment-workers", type=int, default=None,
                        help="processes that segment articles and build and encode their rows (default: every core "
                             "but one when scoring on a GPU, else 1, since on a CPU the scorer needs the cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_tag(args: argparse.Namespace) -> int:
    """`policytag tag`: the outputs checked, then the chosen engine (this module's local one, or Ray's)."""
    problem = check_outputs(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.engine == "ray":
        from policytag.tagging.ray_engine import run_tag_ray

        return run_tag_ray(args)
    return run_tag_local(args)


def run_tag_local(args: argparse.Namespace) -> int:
    """The local engine: one scorer in this process; articles segmented, and their rows built and encoded, by
    --segment-workers processes (policytag.tagging.pipeline)."""
    from policytag.fast_scorer import load_scorer
    from policytag.model import ClassifierError
    from policytag.tagging.inputs import iter_inputs
    from policytag.tagging.pipeline import tag_lines

    try:
        scorer = load_scorer(args.model, precision=args.precision, batch_size=args.batch_size)
    except (ClassifierError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def results(done, on_scored):
        return tag_lines(iter_inputs(args.inputs, args.id_column, args.text_column), scorer,
                         batch_sentences=scorer.call_size, done=done, workers=segment_workers(args, scorer.on_gpu),
                         on_scored=on_scored, pages=bool(args.html))

    return run_job(args, scorer.labels, scorer.model_version, scorer.description, results)
