"""From an article to its sentence records: furniture removed, sentences split, languages detected, ids given."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from policytag.articles import Article
from policytag.furniture import Line, find_furniture, split_lines
from policytag.language import detect, detect_language
from policytag.records import Sentence, atomic_writer, sentence_id, write_jsonl
from policytag.sentences import split_line
from policytag.tagging.inputs import SkippedInput


@dataclass(frozen=True)
class RemovedLine:
    article_id: str
    start: int
    end: int
    text: str
    reason: str


@dataclass(frozen=True)
class SegmentedArticle:
    article: Article
    lang: str
    sentences: list[Sentence]
    removed: list[RemovedLine]


def segment_article(article: Article) -> SegmentedArticle:
    lines = split_lines(article.text)
    furniture = find_furniture(lines)
    content: list[Line] = [line for index, line in enumerate(lines) if index not in furniture]
    article_lang, _ = detect(" ".join(line.text for line in content) or article.text)
    seen: Counter[str] = Counter()
    sentences = []
    for line in content:
        for start, end in split_line(article.text, line.start, line.end):
            text = article.text[start:end]
            sentences.append(Sentence(
                id=sentence_id(article.id, text, seen[text]),
                article_id=article.id,
                index=len(sentences),
                start=start,
                end=end,
                text=text,
                lang=detect_language(text, article_lang),
            ))
            seen[text] += 1
    removed = [RemovedLine(article.id, lines[i].start, lines[i].end, lines[i].text, reason)
               for i, reason in sorted(furniture.items())]
    return SegmentedArticle(article, article_lang, sentences, removed)


def segment_files(paths: list, progress=None, id_field: str = "id", text_field: str = "text",
                  warn=None) -> tuple[list[SegmentedArticle], list[SkippedInput]]:
    """Segment every article of `paths`, read as `policytag tag` reads its inputs (policytag.tagging.inputs: .txt and
    .html files, folders of them, .jsonl/.csv records, "-"); a bad input is skipped with its reason, the rest go
    on. `warn` hears of repairs made on the way in (default: a line on stderr)."""
    from policytag.tagging.inputs import iter_inputs, print_warning

    done: list[SegmentedArticle] = []
    skipped: list[SkippedInput] = []
    for item in iter_inputs([str(path) for path in paths], id_field, text_field, warn=warn or print_warning):
        if isinstance(item, SkippedInput):
            skipped.append(item)
            continue
        done.append(segment_article(item.article))
        if progress:
            progress(done[-1])
    return done, skipped


def run_segment(inputs: list, out: Path, report_path: Path | None = None, id_field: str = "id",
                text_field: str = "text") -> int:
    """The segment stage: `inputs` -> the sentences file `out` (JSON Lines) and, when asked, a JSON report of
    counts per article, every furniture line removed, the inputs skipped and the warnings. Exit code 1 if any
    input was skipped."""

    def show(done) -> None:
        print(f"{done.article.id}: {len(done.sentences)} sentences, {len(done.removed)} furniture lines removed, "
              f"language {done.lang}", file=sys.stderr)

    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        print(f"warning: {message}", file=sys.stderr)

    articles, skipped = segment_files(inputs, progress=show, id_field=id_field, text_field=text_field,
                                      warn=warn)
    sentences = [sentence for done in articles for sentence in done.sentences]
    write_jsonl(out, sentences)
    if report_path:
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
        with atomic_writer(report_path) as handle:
            json.dump(report, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
    print(f"{len(sentences)} sentences from {len(articles)} articles -> {out}", file=sys.stderr)
    for item in skipped:
        print(f"skipped: {item.reason}", file=sys.stderr)
    return 1 if skipped else 0
