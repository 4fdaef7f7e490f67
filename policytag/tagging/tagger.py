"""Tagging articles: segment exactly as the corpus was, score sentences in large batches, decide labels with the
model's per-label thresholds, and summarise each article.

The scorer is anything with `labels`, `thresholds`, `model_version` and `predict_proba(texts)`: the fp32
`policytag.model.Classifier`, or the quantised fast path of policytag.fast_scorer.

Each summary carries the article's `content_hash` (its text and carried fields): a re-run skips an article only
when an earlier run tagged the same id with the same content hash (and model), so an edited text is tagged again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from policytag.segment import SegmentedArticle
from policytag.tagging.segment_pool import segment_entries
from policytag.scoring import VersionedScorer
from policytag.tagging.inputs import InputArticle, SkippedInput

TOP_SENTENCES = 3


@dataclass
class TaggedSentence:
    id: str
    article_id: str
    index: int
    start: int
    end: int
    text: str
    lang: str
    labels: list[str]
    scores: dict[str, float]
    model_version: str
    extra: dict = field(default_factory=dict)


@dataclass
class ArticleSummary:
    article_id: str
    source: str
    lang: str
    sentences: int
    labels: list[str]
    sentences_per_label: dict[str, int]
    top_sentences: dict[str, list[dict]]
    model_version: str
    content_hash: str = ""
    """content_hash(item) of the input tagged: what resume compares, beside the id and the model version."""
    extra: dict = field(default_factory=dict)


@dataclass
class TaggedArticle:
    summary: ArticleSummary
    sentences: list[TaggedSentence]
    text: str


def content_hash(item: InputArticle) -> str:
    """A short hash of what an article's output is made from (its text and its carried fields)."""
    payload = json.dumps([item.article.text, item.extra], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def summarise(item: InputArticle, lang: str, sentences: list[TaggedSentence], labels: list[str],
              model_version: str) -> ArticleSummary:
    counts = {label: sum(label in s.labels for s in sentences) for label in labels}
    top = {}
    for label in labels:
        chosen = sorted((s for s in sentences if label in s.labels), key=lambda s: -s.scores[label])[:TOP_SENTENCES]
        if chosen:
            top[label] = [{"index": s.index, "score": s.scores[label], "text": s.text} for s in chosen]
    return ArticleSummary(item.article.id, item.article.source, lang, len(sentences),
                          [label for label in labels if counts[label]], counts, top, model_version,
                          content_hash=content_hash(item), extra=item.extra)


def tag_article(item: InputArticle, segmented: SegmentedArticle, scores: np.ndarray, labels: Sequence[str],
                thresholds: np.ndarray, model_version: str) -> TaggedArticle:
    """An article's TaggedArticle from its segmentation and its sentences' scores ([sentences, labels], in
    sentence order): labels where a score reaches its threshold, scores rounded to 4 places, and the summary.
    Every engine (this module's, policytag.tagging.ray_engine's) builds its output with this one function."""
    labels = list(labels)
    scores = np.asarray(scores).reshape(len(segmented.sentences), len(labels))
    decided = (scores >= np.asarray(thresholds)).tolist()
    tagged = [
        TaggedSentence(
            id=sentence.id, article_id=sentence.article_id, index=sentence.index, start=sentence.start,
            end=sentence.end, text=sentence.text, lang=sentence.lang,
            labels=[label for label, on in zip(labels, row_decided) if on],
            scores={label: round(score, 4) for label, score in zip(labels, row_scores)},
            model_version=model_version, extra=item.extra,
        )  # tolist() gives the float of each float32 score, as float() does, for the cost of one call
        for sentence, row_decided, row_scores in zip(segmented.sentences, decided, scores.tolist())
    ]
    return TaggedArticle(summarise(item, segmented.lang, tagged, labels, model_version), tagged, item.article.text)


Scored = tuple[InputArticle, SegmentedArticle, np.ndarray]
"""An article, its segmentation and its sentences' scores ([sentences, labels])."""


def _score(batch: list[tuple[InputArticle, SegmentedArticle]], scorer: VersionedScorer, call_size: int,
           on_scored: Callable[[int], None] | None) -> list[Scored]:
    """The batch's articles with their scores; sentences go to the scorer `call_size` at a time (a long article
    in several calls), and `on_scored` hears of each call's sentences, so progress moves inside a long article
    too."""
    texts = [s.text for _, segmented in batch for s in segmented.sentences]
    parts = []
    for start in range(0, len(texts), max(1, call_size)):
        parts.append(scorer.predict_proba(texts[start : start + call_size]))
        if on_scored:
            on_scored(len(parts[-1]))
    scores = np.concatenate(parts) if parts else np.zeros((0, len(scorer.labels)))
    done, row = [], 0
    for item, segmented in batch:
        rows = len(segmented.sentences)
        done.append((item, segmented, scores[row : row + rows]))
        row += rows
    return done


def segment_stream(items: Iterable[InputArticle | SkippedInput], done: Mapping[str, str] | None = None,
                   workers: int = 1) -> Iterator[tuple[InputArticle, SegmentedArticle] | SkippedInput]:
    """Each input article with its segmentation (and skipped inputs), in input order. `done` maps the ids of
    articles an earlier run tagged (with this model) to their content hash: an article found there with the same
    hash is passed over, one whose content changed is tagged again. A second article with an id already seen is
    skipped with a reason. `workers` > 1 segments in that many processes (policytag.tagging.segment_pool)."""
    return segment_entries(admitted(items, done or {}), workers)


def admitted(items: Iterable[InputArticle | SkippedInput],
             done: Mapping[str, str]) -> Iterator[InputArticle | SkippedInput]:
    """The items to tag (see segment_stream): articles done with the same content passed over, second ids
    skipped."""
    seen: set[str] = set()
    for item in items:
        if isinstance(item, SkippedInput):
            yield item
            continue
        article_id = item.article.id
        if article_id in seen:
            yield SkippedInput(item.article.source, f"{item.article.source}: article id {article_id!r} appears "
                                                    "twice; give each article a unique id")
            continue
        seen.add(article_id)
        if article_id in done and done[article_id] == content_hash(item):
            continue
        yield item


def score_stream(entries: Iterable[tuple[InputArticle, SegmentedArticle] | SkippedInput], scorer: VersionedScorer,
                 batch_sentences: int = 512,
                 on_scored: Callable[[int], None] | None = None) -> Iterator[Scored | SkippedInput]:
    """Segmented articles with their scores (and skipped inputs), in input order. Sentences of several articles
    share one scoring call of about `batch_sentences`, so short articles still fill the batches, and a long
    article is scored in calls of that size; `on_scored(n)` is called as each call's n sentences are scored."""
    batch: list[tuple[InputArticle, SegmentedArticle]] = []
    size = 0
    for entry in entries:
        if isinstance(entry, SkippedInput):
            yield entry
            continue
        batch.append(entry)
        size += len(entry[1].sentences)
        if size >= batch_sentences:
            yield from _score(batch, scorer, batch_sentences, on_scored)
            batch, size = [], 0
    if batch:
        yield from _score(batch, scorer, batch_sentences, on_scored)


def tag_stream(items: Iterable[InputArticle | SkippedInput], scorer: VersionedScorer, batch_sentences: int = 512,
               done: Mapping[str, str] | None = None, segment_workers: int = 1,
               on_scored: Callable[[int], None] | None = None) -> Iterator[TaggedArticle | SkippedInput]:
    """Tagged articles (and skipped inputs) in input order, scored as score_stream scores them; articles in
    `done` with the same content (see segment_stream) are passed over; `segment_workers` processes segment.
    The local engine with worker processes builds its rows there too: policytag.tagging.pipeline."""
    for entry in score_stream(segment_stream(items, done, segment_workers), scorer, batch_sentences, on_scored):
        if isinstance(entry, SkippedInput):
            yield entry
        else:
            yield tag_article(*entry, scorer.labels, scorer.thresholds, scorer.model_version)
