"""What analysts hand to `policytag tag`, read as a stream of articles: .txt/.html files, folders of them, JSON
Lines (one article or sentence per line with `id` and `text`; other fields carried through), CSV with a text
column, or `-` for standard input. Nothing is loaded whole, so a 1 GB file is read in bounded memory; a bad item
is yielded as a SkippedInput with its name and reason, and the stream goes on."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from policytag.articles import ARTICLE_SUFFIXES, Article, ArticleError, article_from_text, read_article, slugify


@dataclass(frozen=True)
class InputArticle:
    article: Article
    extra: dict = field(default_factory=dict)
    """Fields of a JSON Lines or CSV record other than id and text, carried through to the output."""


@dataclass(frozen=True)
class SkippedInput:
    source: str
    reason: str


TABLE_SUFFIXES = (".jsonl", ".ndjson", ".csv")


def _record(record: dict, source: str, id_field: str, text_field: str, fallback_id: str):
    text = record.get(text_field)
    if not isinstance(text, str):
        return SkippedInput(source, f"{source}: no {text_field!r} text field; give each record a {text_field!r} "
                                    f"string (or pass --text-column)")
    article_id = str(record.get(id_field) or fallback_id)
    extra = {k: v for k, v in record.items() if k not in (id_field, text_field)}
    try:
        return InputArticle(article_from_text(article_id, text, source=source, html=False), extra)
    except ArticleError as error:
        return SkippedInput(source, str(error))


def read_jsonl_articles(handle, name: str, id_field: str, text_field: str) -> Iterator[InputArticle | SkippedInput]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        source = f"{name}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield SkippedInput(source, f"{source}: malformed JSON ({error.msg}); fix or remove that line")
            continue
        if not isinstance(record, dict):
            yield SkippedInput(source, f"{source}: expected a JSON object with {id_field!r} and {text_field!r}")
            continue
        yield _record(record, source, id_field, text_field, f"{slugify(Path(name).stem)}-{number}")


def read_csv_articles(handle, name: str, id_field: str, text_field: str) -> Iterator[InputArticle | SkippedInput]:
    csv.field_size_limit(1 << 30)
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        yield SkippedInput(name, f"{name}: no {text_field!r} column (columns: {', '.join(reader.fieldnames or [])}); "
                                 f"pass --text-column NAME")
        return
    for number, row in enumerate(reader, 2):
        yield _record(row, f"{name}:{number}", id_field, text_field, f"{slugify(Path(name).stem)}-{number}")


def _open_text(path: Path):
    return path.open(encoding="utf-8-sig", newline="", errors="strict")


def iter_inputs(inputs: list[str], id_field: str = "id", text_field: str = "text",
                stdin=None) -> Iterator[InputArticle | SkippedInput]:
    """Every article of every input, in order; folders are walked for .txt and .html files."""
    for name in inputs:
        if name == "-":
            stream = stdin or sys.stdin
            first = stream.readline()
            if first.lstrip().startswith("{"):
                yield from read_jsonl_articles(_chain(first, stream), "<stdin>", id_field, text_field)
            else:
                text = first + stream.read()
                try:
                    yield InputArticle(article_from_text("stdin", text, source="<stdin>"))
                except ArticleError as error:
                    yield SkippedInput("<stdin>", str(error))
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES)
        else:
            files = [path]
        for file in files:
            yield from _iter_file(file, id_field, text_field)


def _iter_file(path: Path, id_field: str, text_field: str) -> Iterator[InputArticle | SkippedInput]:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        reader = read_csv_articles if suffix == ".csv" else read_jsonl_articles
        try:
            with _open_text(path) as handle:
                yield from reader(handle, str(path), id_field, text_field)
        except UnicodeDecodeError as error:
            yield SkippedInput(str(path), f"{path}: not valid UTF-8 (at byte {error.start} of a block); "
                                          "re-save it as UTF-8; records before that point were tagged")
        except OSError as error:
            yield SkippedInput(str(path), f"{path}: cannot read ({error.strerror}); check the path")
        return
    try:
        yield InputArticle(read_article(path))
    except ArticleError as error:
        yield SkippedInput(str(path), str(error))


def _chain(first: str, rest):
    yield first
    yield from rest
