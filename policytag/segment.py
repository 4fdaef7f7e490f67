"""From an article to its sentence records: furniture removed, sentences split, languages detected, ids given."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from policytag.articles import Article
from policytag.furniture import Line, find_furniture, split_lines
from policytag.language import detect, detect_language
from policytag.records import Sentence, sentence_id
from policytag.sentences import split_line


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


@dataclass(frozen=True)
class SkippedInput:
    source: str
    reason: str


def segment_files(paths: list, progress=None) -> tuple[list[SegmentedArticle], list[SkippedInput]]:
    """Segment every article file under `paths`; a bad file is skipped with its reason, the rest go on."""
    from policytag.articles import ArticleError, find_article_files, read_article

    done: list[SegmentedArticle] = []
    skipped: list[SkippedInput] = []
    seen_ids: dict[str, str] = {}
    for path in find_article_files(paths):
        try:
            article = read_article(path)
        except ArticleError as error:
            skipped.append(SkippedInput(str(path), str(error)))
            continue
        if article.id in seen_ids:
            skipped.append(SkippedInput(str(path), f"{path}: article id {article.id!r} is already taken by "
                                                   f"{seen_ids[article.id]}; rename one of the files"))
            continue
        seen_ids[article.id] = str(path)
        done.append(segment_article(article))
        if progress:
            progress(done[-1])
    return done, skipped
