"""The local engine's stream, from input articles to the lines the journals take: segment, score, build rows,
encode, in one process or, with --segment-workers N > 1, with N worker processes doing all but the scoring.

With workers, the main process keeps only what has to happen in one place, in input order: reading the inputs,
scoring (one model, one GPU) and writing. Workers segment chunks of articles (policytag.tagging.segment_pool),
the main process scores their sentences in large batches, and the scored chunks go back to the workers, which
build the rows and the summary (policytag.tagging.tagger.tag_article, as every engine does) and encode them as
JSON lines (policytag.tagging.lines), pages too when asked. On an H100 the scorer takes about 32,000 sentences/s;
with 15 processes segmenting, building rows and encoding JSON in the main process held `policytag tag` to
7,300-9,500.
The output is byte for byte the same whatever the number of workers.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from policytag.scoring import VersionedScorer
from policytag.tagging.inputs import InputArticle, SkippedInput
from policytag.tagging.lines import ArticleLines, article_lines
from policytag.tagging.pages import label_colours
from policytag.tagging.segment_pool import CHUNKS_PER_WORKER, chunked, in_order, segment_chunk, worker_pool
from policytag.tagging.tagger import Scored, admitted, score_stream, tag_article, tag_stream


def lines_chunk(scored: list[Scored], labels: Sequence[str], thresholds: np.ndarray, model_version: str,
                colours: dict[str, str] | None) -> list[ArticleLines]:
    """A worker's task: each scored article's rows and summary, encoded (and its page, with `colours`)."""
    return [article_lines(tag_article(item, segmented, scores, labels, thresholds, model_version), colours)
            for item, segmented, scores in scored]


def tag_lines(items: Iterable[InputArticle | SkippedInput], scorer: VersionedScorer, batch_sentences: int = 512,
              done: Mapping[str, str] | None = None, workers: int = 1,
              on_scored: Callable[[int], None] | None = None,
              pages: bool = False) -> Iterator[ArticleLines | SkippedInput]:
    """Each article's lines (and each skipped input) in input order, tagged as tag_stream tags them (`done`,
    `batch_sentences` and `on_scored` as there); with `pages`, each article's HTML page too. `workers` > 1:
    segmentation, rows and encoding in that many processes."""
    colours = label_colours(list(scorer.labels)) if pages else None
    if workers <= 1:
        for entry in tag_stream(items, scorer, batch_sentences, done, 1, on_scored):
            yield entry if isinstance(entry, SkippedInput) else article_lines(entry, colours)
        return
    limit = workers * CHUNKS_PER_WORKER
    encode = partial(lines_chunk, labels=list(scorer.labels), thresholds=np.asarray(scorer.thresholds),
                     model_version=scorer.model_version, colours=colours)
    with worker_pool(workers) as pool:
        segmented = in_order(pool, segment_chunk, chunked(admitted(items, done or {})), limit)
        yield from in_order(pool, encode, chunked(score_stream(segmented, scorer, batch_sentences, on_scored)), limit)
