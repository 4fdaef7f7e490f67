"""An article's output as the journals take it: one JSON line per tagged sentence, its summary's line, and its
HTML page when pages are written.

The sentence lines are the bytes `json.dumps(vars(sentence), ensure_ascii=False)` gives, built directly: the
fields that are the same for every sentence of an article (its id, the model version, the carried fields) are
encoded once, the label names once per run, and each sentence's strings with json's own encoder function. That
is several times faster than json.dumps of a dict per row, which matters on a GPU, where building and encoding
rows is most of the CPU's work per sentence. tests/policytag/test_tag_pipeline.py checks it against json.dumps.

Built in the main process when one process segments (policytag.tagging.tagger.tag_stream), in the worker
processes otherwise (policytag.tagging.pipeline); either way policytag.tagging.job writes them in input order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring  # what json.dumps(..., ensure_ascii=False) encodes each str with

from policytag.tagging.pages import article_page
from policytag.tagging.tagger import TaggedArticle


@dataclass(frozen=True)
class ArticleLines:
    article_id: str
    content_hash: str
    model_version: str
    sentence_count: int
    sentence_lines: str
    """The article's sentences, one JSON line each (newline-terminated)."""
    summary_line: str
    page: str | None = None
    """The article's HTML page (policytag.tagging.pages), when pages are written."""


def _number(value: float) -> str:
    """A float as json.dumps writes it (its repr; NaN and the infinities as JSON's non-standard names)."""
    if math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


@lru_cache(maxsize=256)
def _key(label: str) -> str:
    return encode_basestring(label)


def sentence_lines(tagged: TaggedArticle) -> str:
    """The JSON lines of `tagged`'s sentences, byte for byte json.dumps(vars(sentence), ensure_ascii=False) + "\\n"
    each. The article id, model version and carried fields are taken from the first sentence: tag_article gives
    every sentence of an article the same ones."""
    if not tagged.sentences:
        return ""
    first = tagged.sentences[0]
    article_id = encode_basestring(first.article_id)
    tail = (f', "model_version": {encode_basestring(first.model_version)}, "extra": '
            f'{json.dumps(first.extra, ensure_ascii=False)}}}\n')
    lines = []
    for sentence in tagged.sentences:
        chosen = ", ".join(_key(label) for label in sentence.labels)
        scores = ", ".join(f"{_key(label)}: {_number(score)}" for label, score in sentence.scores.items())
        lines.append(f'{{"id": {encode_basestring(sentence.id)}, "article_id": {article_id}, "index": '
                     f'{sentence.index}, "start": {sentence.start}, "end": {sentence.end}, "text": '
                     f'{encode_basestring(sentence.text)}, "lang": {encode_basestring(sentence.lang)}, "labels": '
                     f'[{chosen}], "scores": {{{scores}}}{tail}')
    return "".join(lines)


def article_lines(tagged: TaggedArticle, colours: dict[str, str] | None = None) -> ArticleLines:
    """`tagged` as the journals take it; with `colours` (policytag.tagging.pages.label_colours), its page too."""
    summary = tagged.summary
    return ArticleLines(summary.article_id, summary.content_hash, summary.model_version, len(tagged.sentences),
                        sentence_lines(tagged), json.dumps(vars(summary), ensure_ascii=False) + "\n",
                        article_page(tagged, colours) if colours is not None else None)
