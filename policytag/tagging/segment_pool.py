"""The tagger's worker processes: a pool, a stream cut into chunks that run through it in input order with a
bounded number in flight, and the first of their two tasks, segmenting articles (the second, building and
encoding rows after scoring, is policytag.tagging.pipeline's).

On a GPU the scorer takes tens of thousands of sentences a second, and segmentation on one core (mostly language
identification) does a few thousand: with every core but one working, the GPU is kept fed. On a CPU the scorer
needs the cores and segmentation is a small part of the time, so one process (the default) is right there.
Workers are started with "spawn": the parent may hold threads (ONNX Runtime, tokenizers) and a CUDA context,
which a forked child must not inherit.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

from policytag.segment import SegmentedArticle, segment_articles
from policytag.tagging.inputs import InputArticle, SkippedInput

CHUNK_ARTICLES, CHUNK_CHARACTERS = 64, 1_000_000
"""A worker's task: consecutive articles, up to this many or this much text."""
CHUNKS_PER_WORKER = 4
"""Tasks queued per worker: enough to keep each busy, few enough that memory stays bounded on any input."""

Entry = InputArticle | SkippedInput
Segmented = tuple[InputArticle, SegmentedArticle] | SkippedInput
T = TypeVar("T")


def _ignore_interrupts() -> None:
    """Ctrl-C reaches every process of the terminal's group: the parent stops the run (and the pool); the workers
    need not each print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """`workers` spawned processes; on the way out (an error, Ctrl-C, a generator closed early) the tasks not
    started are cancelled, and the ones running are waited for."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_interrupts)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _article(entry) -> InputArticle | None:
    if isinstance(entry, InputArticle):
        return entry
    return None if isinstance(entry, SkippedInput) else entry[0]


def chunked(entries: Iterable[T]) -> Iterator[list[T]]:
    """Consecutive entries (input articles, or tuples that start with one, and skipped inputs), up to
    CHUNK_ARTICLES or CHUNK_CHARACTERS of article text a chunk."""
    chunk: list[T] = []
    characters = 0
    for entry in entries:
        chunk.append(entry)
        article = _article(entry)
        if article is not None:
            characters += len(article.article.text)
        if len(chunk) >= CHUNK_ARTICLES or characters >= CHUNK_CHARACTERS:
            yield chunk
            chunk, characters = [], 0
    if chunk:
        yield chunk


def _merged(chunk: list, results: Iterable) -> Iterator:
    done = iter(results)
    for entry in chunk:
        yield entry if isinstance(entry, SkippedInput) else next(done)


def in_order(pool: ProcessPoolExecutor, task: Callable[[list], list], chunks: Iterable[list],
             in_flight_limit: int) -> Iterator:
    """Each chunk's entries in input order, each one that is not a SkippedInput replaced by its result:
    `task(entries)` runs in the pool and returns one result per entry. At most `in_flight_limit` chunks are
    submitted and not yet yielded; a finished chunk at the head is yielded at once."""
    in_flight: deque[tuple[list, Future | None]] = deque()
    for chunk in chunks:
        work = [entry for entry in chunk if not isinstance(entry, SkippedInput)]
        in_flight.append((chunk, pool.submit(task, work) if work else None))
        while in_flight and (len(in_flight) >= in_flight_limit or in_flight[0][1] is None
                             or in_flight[0][1].done()):
            done, future = in_flight.popleft()
            yield from _merged(done, future.result() if future else ())
    while in_flight:
        done, future = in_flight.popleft()
        yield from _merged(done, future.result() if future else ())


def segment_chunk(items: list[InputArticle]) -> list[tuple[InputArticle, SegmentedArticle]]:
    """A worker's task: each article with its segmentation. The item goes back with it: pickled together, the
    article's text travels once, and travels once again when the pair goes back to a worker to build rows."""
    return list(zip(items, segment_articles([item.article for item in items])))


def segment_entries(entries: Iterable[Entry], workers: int = 1) -> Iterator[Segmented]:
    """Each input article with its segmentation, and each skipped input as it is, in input order; with
    `workers` > 1, articles are segmented in that many processes, else here, a chunk at a time all the same
    (languages are identified faster for many texts at once)."""
    if workers <= 1:
        for chunk in chunked(entries):
            articles = [entry for entry in chunk if not isinstance(entry, SkippedInput)]
            yield from _merged(chunk, segment_chunk(articles))
        return
    with worker_pool(workers) as pool:
        yield from in_order(pool, segment_chunk, chunked(entries), workers * CHUNKS_PER_WORKER)
