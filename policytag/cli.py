"""The `policytag` command: one thin subcommand per stage; the work lives in the modules each one calls."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path


def cmd_segment(args: argparse.Namespace) -> int:
    from policytag.records import atomic_writer, write_jsonl
    from policytag.segment import segment_files

    def show(done) -> None:
        print(f"{done.article.id}: {len(done.sentences)} sentences, {len(done.removed)} furniture lines removed, "
              f"language {done.lang}", file=sys.stderr)

    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        print(f"warning: {message}", file=sys.stderr)

    articles, skipped = segment_files(args.inputs, progress=show, id_field=args.id_column,
                                      text_field=args.text_column, warn=warn)
    sentences = [sentence for done in articles for sentence in done.sentences]
    write_jsonl(args.out, sentences)
    if args.report:
        report = {
            "articles": {done.article.id: {"sentences": len(done.sentences), "furniture_lines": len(done.removed),
                                           "language": done.lang} for done in articles},
            "totals": {"articles": len(articles), "sentences": len(sentences),
                       "furniture_lines": sum(len(done.removed) for done in articles), "skipped": len(skipped)},
            "removed": [asdict(line) for done in articles for line in done.removed],
            "skipped": [asdict(item) for item in skipped],
        }
        if warnings:
            report["warnings"] = warnings
        with atomic_writer(args.report) as handle:
            json.dump(report, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
    print(f"{len(sentences)} sentences from {len(articles)} articles -> {args.out}", file=sys.stderr)
    for item in skipped:
        print(f"skipped: {item.reason}", file=sys.stderr)
    return 1 if skipped else 0


def cmd_tag(args: argparse.Namespace) -> int:
    from policytag.tag_run import run_tag

    try:
        return run_tag(args)
    except KeyboardInterrupt:  # before any article was tagged (the job itself says more when it is stopped)
        print("interrupted before tagging started; run the same command again to tag", file=sys.stderr)
        return 130


STAGE_MODULES = {
    "dataset": ("training.dataset", "join sentences and annotations into a Hugging Face DatasetDict"),
    "backbone": ("training.backbone", "materialise the pretrained encoder as a Hugging Face checkpoint"),
    "train": ("training.train", "fine-tune the classifier; thresholds from its recipe's out-of-fold scores"),
    "baseline": ("training.baseline", "fit the TF-IDF and zero-shot baselines"),
    "crossval": ("training.crossval", "grouped k-fold cross-validation of every model kind (out-of-fold scores)"),
    "evaluate": ("evaluation.evaluate", "metrics, plots and the report for every model"),
    "simulate": ("evaluation.active_learning", "active learning vs random order: the learning-curve simulation"),
    "review-labels": ("evaluation.label_review", "rank likely label errors (cleanlab) and report them"),
    "recipes": ("evaluation.recipes", "compare training recipes by grouped cross-validation (by hand, not in repro)"),
}
"""Subcommands whose arguments the stage module parses itself: `policytag NAME --help` shows them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policytag", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    segment = commands.add_parser("segment", help="split articles into sentence records (JSON Lines)")
    segment.add_argument("inputs", nargs="+", help=".txt/.html files, folders of them, .jsonl (id, text), .csv, or "
                                                   "- (stdin), read as `tag` reads them")
    segment.add_argument("--out", required=True, type=Path, help="sentences file to write (.jsonl)")
    segment.add_argument("--report", type=Path, help="JSON report: counts per article, every furniture line removed")
    segment.add_argument("--id-column", default="id", help="id field of .jsonl/.csv records")
    segment.add_argument("--text-column", default="text", help="text field of .jsonl/.csv records")
    segment.set_defaults(run=cmd_segment)
    from policytag.tag_run import add_tag_arguments

    tag = commands.add_parser("tag", help="tag new articles: labels and scores per sentence, a summary per article")
    add_tag_arguments(tag)
    tag.set_defaults(run=cmd_tag)
    from annotation.cli import add_subcommands as add_annotate_subcommands
    from annotation.ml_backend import add_subcommand as add_serve_ml

    annotate = commands.add_parser("annotate", help="Label Studio: push sentences, pull annotations, suggest what next")
    add_annotate_subcommands(annotate.add_subparsers(dest="action", required=True, metavar="ACTION"))
    add_serve_ml(commands)
    for name, (_, help_text) in STAGE_MODULES.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in STAGE_MODULES:
        import importlib

        return importlib.import_module(STAGE_MODULES[argv[0]][0]).main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
