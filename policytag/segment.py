"""From an article to its sentence records: furniture removed, sentences split, languages detected, ids given."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from policytag.articles import Article
from policytag.furniture import Line, find_furniture, split_lines
from policytag.language import detect_languages, detect_many
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
    return segment_articles([article])[0]


def segment_articles(articles: Sequence[Article]) -> list[SegmentedArticle]:
    """Each article's furniture removed, sentences split, languages detected and ids given. Languages are
    detected for all the articles at once, then for all their sentences at once (policytag.language.detect_many:
    the same results as one by one, faster the more texts there are)."""
    splits = []
    for article in articles:
        lines = split_lines(article.text)
        furniture = find_furniture(lines)
        content: list[Line] = [line for index, line in enumerate(lines) if index not in furniture]
        spans = [span for line in content for span in split_line(article.text, line.start, line.end)]
        splits.append((lines, furniture, content, spans))
    article_langs = [lang for lang, _ in detect_many([" ".join(line.text for line in content) or article.text
                                                     for article, (_, _, content, _) in zip(articles, splits)])]
    texts = [article.text[start:end] for article, (_, _, _, spans) in zip(articles, splits) for start, end in spans]
    fallbacks = [lang for lang, (_, _, _, spans) in zip(article_langs, splits) for _ in spans]
    sentence_langs = iter(detect_languages(texts, fallbacks))
    done = []
    for article, article_lang, (lines, furniture, _, spans) in zip(articles, article_langs, splits):
        seen: Counter[str] = Counter()
        sentences = []
        for start, end in spans:
            text = article.text[start:end]
            sentences.append(Sentence(
                id=sentence_id(article.id, text, seen[text]),
                article_id=article.id,
                index=len(sentences),
                start=start,
                end=end,
                text=text,
                lang=next(sentence_langs),
            ))
            seen[text] += 1
        removed = [RemovedLine(article.id, lines[i].start, lines[i].end, lines[i].text, reason)
                   for i, reason in sorted(furniture.items())]
        done.append(SegmentedArticle(article, article_lang, sentences, removed))
    return done


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
