"""The part of the `policytag tag` job that both engines share (policytag.tagging.run's local one and
policytag.tagging.ray_engine's): the checks of --out and --html before any work, the loop that takes tagged articles
to the journals and the pages with a progress bar and a list of skipped inputs, what an interruption leaves, and the
closing report.

An engine hands run_job a function that, given the articles already done (id -> content hash, for this model)
and a progress callback (sentences scored), yields ArticleLines (policytag.tagging.lines: an article's encoded
rows, summary and, when --html is given, page) or SkippedInput, in input order. Ctrl-C ends the
run with one line and exit code 130; it and any exception leave the journals (OUT.partial) for the next run to
resume, and the final --out as it was (policytag.tagging.outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from policytag.tagging.inputs import SkippedInput
from policytag.tagging.outputs import FORMATS, SUMMARIES_SUFFIX, TagOutputError, TagWriter, journal_path, summaries_path
from policytag.tagging.lines import ArticleLines

Results = Callable[[Mapping[str, str], Callable[[int], None]], Iterator[ArticleLines | SkippedInput]]
INTERRUPTED = 130
"""The exit code of a run ended by Ctrl-C (128 + SIGINT), as shells report it."""


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.out).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "jsonl"


def segment_workers(args: argparse.Namespace, scoring_on_gpu: bool) -> int:
    """--segment-workers, else every core but one when a GPU scores (segmentation would hold it back), else 1."""
    from policytag.cpu import available_cores

    if args.segment_workers is not None:
        return max(1, args.segment_workers)
    return max(1, available_cores() - 1) if scoring_on_gpu else 1


def _writable_folder(path: Path, option: str) -> str | None:
    """None if `path` (a file or folder to make) can be made: its nearest existing ancestor is a writable folder."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{option} {path}: {ancestor} is a file, not a folder; choose another path"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{option} {path}: cannot write in {ancestor} (permission denied); choose a folder you can write to"
    return None


def check_outputs(args: argparse.Namespace) -> str | None:
    """What is wrong with --out and --html, found before the model is loaded or any input read; None if nothing."""
    out = Path(args.out)
    fmt = output_format(args)
    summaries = summaries_path(out)
    if out.is_dir():
        return f"--out {out} is a folder; give the file to write, e.g. --out {out / ('tagged.' + fmt)}"
    if out.name.lower().endswith(SUMMARIES_SUFFIX):
        return (f"--out {out}: names ending in {SUMMARIES_SUFFIX} are for the article summaries written beside "
                f"an output; choose another name, e.g. --out {out.with_name('tagged.' + fmt)}")
    for path in (summaries, journal_path(out), journal_path(summaries)):
        if path.is_dir():
            return f"--out {out}: {path} (written beside it) is a folder; move it away or choose another --out"
    problem = _writable_folder(out, "--out")
    if problem:
        return problem
    written = {path.resolve() for path in (out, summaries, journal_path(out), journal_path(summaries))}
    for name in args.inputs:
        if name != "-" and Path(name).resolve() in written:
            return f"--out {out} would overwrite the input {name}; choose another --out"
    if not journal_path(summaries).exists():  # no run to go on with: the two files are one output's, or none
        if summaries.exists() and not out.exists():
            return (f"--out {out}: {summaries} exists without {out.name}, so it is another output's or {out.name} "
                    f"was removed; move or delete {summaries.name}, or choose another --out")
        if out.exists() and not summaries.exists():
            legacy = out.with_name(out.name.split(".")[0] + SUMMARIES_SUFFIX)
            hint = (f" (if {legacy.name} holds its summaries, as policytag named them before, rename it to "
                    f"{summaries.name})" if legacy.exists() else "")
            return (f"--out {out} exists without its summaries {summaries.name}, so it cannot be resumed and would "
                    f"be replaced{hint}; move {out.name} away or choose another --out")
    if args.html:
        html = Path(args.html)
        if html.exists() and not html.is_dir():
            return f"--html {html} is a file; give a folder for the pages, e.g. --html {html.with_suffix('')}-pages"
        return _writable_folder(html / "index.html", "--html")
    return None


def run_job(args: argparse.Namespace, labels: Sequence[str], model_version: str, description: str,
            results: Results) -> int:
    """Tag with `results` into --out (and --html), resuming what is done; the exit code (see report)."""
    from tqdm import tqdm

    from policytag.tagging.pages import HtmlReport

    writer = TagWriter(args.out, output_format(args))
    try:
        done = writer.open()
    except TagOutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    same_model = {article_id: digest for article_id, (digest, version) in done.items() if version == model_version}
    html = HtmlReport(args.html, list(labels)) if args.html else None
    skipped: list[SkippedInput] = []
    sentences = articles = replaced = 0
    started = time.perf_counter()
    progress = tqdm(unit=" sentences", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for result in results(same_model, progress.update):
            if isinstance(result, SkippedInput):
                skipped.append(result)
                progress.write(f"skipped: {result.reason}")
                continue
            if html:  # the page first: an article counts as done once its summary is written
                html.write(result.article_id, result.page)
            writer.write(result)
            replaced += result.article_id in done
            articles += 1
            sentences += result.sentence_count
            progress.set_postfix(articles=articles)
        progress.close()
        writer.close()
    except BaseException as error:
        progress.close()
        writer.abort()
        if isinstance(error, KeyboardInterrupt):
            print(f"interrupted: {len(writer.done)} articles are done ({articles} in this run) and kept in "
                  f"{writer.sentences_journal}; run the same command again to go on from there", file=sys.stderr)
            return INTERRUPTED
        raise
    if html:
        with writer.summaries.open(encoding="utf-8") as handle:
            html.close(json.loads(line) for line in handle)
    seconds = time.perf_counter() - started
    print(f"tagged {sentences} sentences of {articles} articles in {seconds:.1f} s "
          f"({sentences / max(seconds, 1e-9):.0f} sentences/s, {description}); "
          + (f"{replaced} changed articles tagged again (old rows replaced); " if replaced else "")
          + f"{len(done) - replaced} articles already done; {len(skipped)} inputs skipped -> {args.out}",
          file=sys.stderr)
    for item in skipped:
        print(f"skipped: {item.reason}", file=sys.stderr)
    return 1 if skipped else 0
