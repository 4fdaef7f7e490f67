"""From an article to its sentence records: furniture removed, sentences split, languages detected, ids given."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from policytag.articles import Article
from policytag.furniture import Line, find_furniture, split_lines
from policytag.language import detect, detect_language
from policytag.records import Sentence, sentence_id
from policytag.sentences import split_line
from policytag.tag_inputs import SkippedInput


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
    """Segment every article of `paths`, read as `policytag tag` reads its inputs (policytag.tag_inputs: .txt and
    .html files, folders of them, .jsonl/.csv records, "-"); a bad input is skipped with its reason, the rest go
    on. `warn` hears of repairs made on the way in (default: a line on stderr)."""
    from policytag.tag_inputs import iter_inputs, print_warning

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
