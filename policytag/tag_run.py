"""The `policytag tag` job on one machine: inputs -> tagger -> outputs, with progress and a report of skips."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from policytag.tag_outputs import FORMATS, TagWriter, summaries_path


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help=".txt/.html files, folders, .jsonl (id, text), .csv, or - (stdin)")
    parser.add_argument("--out", required=True, type=Path,
                        help="sentences file; article summaries go beside it as NAME.articles.jsonl")
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
                        help="processes that segment articles (default: every core but one when scoring on a GPU, "
                             "else 1, since on a CPU the scorer needs the cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = args.out.suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "jsonl"


def segment_workers(args: argparse.Namespace, scoring_on_gpu: bool) -> int:
    """--segment-workers, else every core but one when a GPU scores (segmentation would hold it back), else 1."""
    from policytag.fast_scorer import available_cores

    if args.segment_workers is not None:
        return max(1, args.segment_workers)
    return max(1, available_cores() - 1) if scoring_on_gpu else 1


def run_tag(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from policytag.fast_scorer import load_scorer
    from policytag.model import ClassifierError
    from policytag.tag_html import HtmlReport
    from policytag.tag_inputs import SkippedInput, iter_inputs
    from policytag.tagger import tag_stream

    if args.engine == "ray":
        from policytag.tag_ray import run_tag_ray

        return run_tag_ray(args)
    try:
        scorer = load_scorer(args.model, precision=args.precision, batch_size=args.batch_size)
    except (ClassifierError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    writer = TagWriter(args.out, output_format(args))
    done_before = writer.open()
    html = HtmlReport(args.html, scorer.labels) if args.html else None
    skipped: list[SkippedInput] = []
    sentences = articles = 0
    started = time.perf_counter()
    progress = tqdm(unit=" sentences", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for result in tag_stream(iter_inputs(args.inputs, args.id_column, args.text_column), scorer,
                                 batch_sentences=scorer.call_size, skip_article_ids=done_before,
                                 segment_workers=segment_workers(args, scorer.on_gpu)):
            if isinstance(result, SkippedInput):
                skipped.append(result)
                progress.write(f"skipped: {result.reason}")
                continue
            writer.write(result)
            if html:
                html.write(result)
            articles += 1
            sentences += len(result.sentences)
            progress.update(len(result.sentences))
            progress.set_postfix(articles=articles)
    finally:
        progress.close()
        writer.close()
    return finish(args, html, sentences, articles, started, scorer.description, done_before, skipped)


def finish(args: argparse.Namespace, html, sentences: int, articles: int, started: float, description: str,
           done_before: set[str], skipped: list) -> int:
    """The index page, the closing summary and the skipped inputs; 1 if anything was skipped (both engines)."""
    if html:
        with summaries_path(args.out).open(encoding="utf-8") as handle:
            html.close(json.loads(line) for line in handle)
    seconds = time.perf_counter() - started
    print(f"tagged {sentences} sentences of {articles} articles in {seconds:.1f} s "
          f"({sentences / max(seconds, 1e-9):.0f} sentences/s, {description}); "
          f"{len(done_before)} articles already done; {len(skipped)} inputs skipped -> {args.out}", file=sys.stderr)
    for item in skipped:
        print(f"skipped: {item.reason}", file=sys.stderr)
    return 1 if skipped else 0
