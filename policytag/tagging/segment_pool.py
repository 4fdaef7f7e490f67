"""Segmenting a stream of input articles in worker processes, in input order, with a bounded number in flight.

On a GPU the scorer takes tens of thousands of sentences a second, and segmentation on one core (mostly language
identification) does a few thousand: with every core but one segmenting, the GPU is kept fed. On a CPU the scorer
needs the cores and segmentation is a small part of the time, so one process (the default) is right there.
Workers are started with "spawn": the parent may hold threads (ONNX Runtime, tokenizers) and a CUDA context,
which a forked child must not inherit.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Iterable, Iterator

from policytag.articles import Article
from policytag.segment import SegmentedArticle, segment_article
from policytag.tagging.inputs import InputArticle, SkippedInput

CHUNK_ARTICLES, CHUNK_CHARACTERS = 64, 1_000_000
"""A worker's task: consecutive articles, up to this many or this much text."""
CHUNKS_PER_WORKER = 4
"""Tasks queued per worker: enough to keep each busy, few enough that memory stays bounded on any input."""

Entry = InputArticle | SkippedInput
Segmented = tuple[InputArticle, SegmentedArticle] | SkippedInput


def _ignore_interrupts() -> None:
    """Ctrl-C reaches every process of the terminal's group: the parent stops the run (and the pool); the workers
    need not each print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _segment_chunk(articles: list[Article]) -> list[SegmentedArticle]:
    return [segment_article(article) for article in articles]


def _chunks(entries: Iterable[Entry]) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    characters = 0
    for entry in entries:
        chunk.append(entry)
        if not isinstance(entry, SkippedInput):
            characters += len(entry.article.text)
        if len(chunk) >= CHUNK_ARTICLES or characters >= CHUNK_CHARACTERS:
            yield chunk
            chunk, characters = [], 0
    if chunk:
        yield chunk


def _in_order(chunk: list[Entry], task: Future | None) -> Iterator[Segmented]:
    done = iter(task.result() if task else ())
    for entry in chunk:
        yield entry if isinstance(entry, SkippedInput) else (entry, next(done))


def segment_entries(entries: Iterable[Entry], workers: int = 1) -> Iterator[Segmented]:
    """Each input article with its segmentation, and each skipped input as it is, in input order; with
    `workers` > 1, articles are segmented in that many processes."""
    if workers <= 1:
        for entry in entries:
            yield entry if isinstance(entry, SkippedInput) else (entry, segment_article(entry.article))
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_ignore_interrupts) as pool:
        in_flight: deque[tuple[list[Entry], Future | None]] = deque()
        for chunk in _chunks(entries):
            articles = [entry.article for entry in chunk if not isinstance(entry, SkippedInput)]
            in_flight.append((chunk, pool.submit(_segment_chunk, articles) if articles else None))
            if len(in_flight) >= workers * CHUNKS_PER_WORKER:
                yield from _in_order(*in_flight.popleft())
        while in_flight:
            yield from _in_order(*in_flight.popleft())
