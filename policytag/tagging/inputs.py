"""What analysts hand to `policytag tag` (and `policytag segment`), read as a stream of articles: .txt/.html files,
folders of them, JSON Lines (one article or sentence per line with `id` and `text`; other fields carried through),
CSV with a text column, or `-` for standard input. Nothing is loaded whole, so a 1 GB file is read in bounded
memory; a bad item is yielded as a SkippedInput with its name and reason, and the stream goes on.

This is where text enters policytag, so it is made safe here, once: text goes through
policytag.articles.article_from_text (lone surrogates replaced, invisible-only text empty), carried fields have
lone surrogates replaced and NaN/infinities made null, and each repair is reported through `warn`, naming the input
and the record. A line that cannot be decoded is skipped with its line number; the lines around it are read.

Ids, one policy for every input: an article's id is a string. A record's id may be a JSON string or integer (1 and
"1" are the same id; 0 is an id like any other); a record without one is named after its place, "FILE:LINE" (for
example "table.csv:7", "<stdin>:3"), and ids of that form are reserved for this, so a generated id never takes
the id of a real record. A file's id is the slug of its name. An id met a second time is reported and that
article skipped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from policytag.articles import (
    ARTICLE_SUFFIXES, ENCODING_NAMES, RESAVE, UNDECODABLE, Article, ArticleError, article_from_text, read_article,
    sniff_encoding,
)
from policytag.text import LONE_SURROGATE, sanitise_value


@dataclass(frozen=True)
class InputArticle:
    article: Article
    extra: dict = field(default_factory=dict)
    """Fields of a JSON Lines or CSV record other than id and text, carried through to the output (for an HTML
    file: its <title>, as "title")."""


@dataclass(frozen=True)
class SkippedInput:
    source: str
    reason: str


TABLE_SUFFIXES = (".jsonl", ".ndjson", ".csv")
STDIN = "<stdin>"
GENERATED_ID = re.compile(r".*\.(jsonl|ndjson|csv):[0-9]+|<stdin>:[0-9]+", re.IGNORECASE)
"""The form of the ids given to records without one; no real record may take it."""
Warn = Callable[[str], None]


def print_warning(message: str) -> None:
    print(f"policytag: warning: {message}", file=sys.stderr, flush=True)


def record_id(value, source: str, id_field: str) -> str | None:
    """A record's id as a string (None when the record has none), or ArticleError saying why it cannot be one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        kind = "NaN" if isinstance(value, float) and math.isnan(value) else type(value).__name__
        raise ArticleError(f"{source}: the {id_field!r} field is a {kind} ({value!r}); give a string or an integer")
    article_id = str(value)
    if GENERATED_ID.fullmatch(article_id):
        raise ArticleError(f"{source}: id {article_id!r} has the form FILE:LINE, which names records without an id; "
                           "give the record another id")
    return article_id


def generated_id(name: str, line: int) -> str:
    return f"{STDIN if name == STDIN else Path(name).name}:{line}"


def _record(record: dict, source: str, id_field: str, text_field: str, fallback_id: str,
            warn: Warn) -> InputArticle | SkippedInput:
    text = record.get(text_field)
    if not isinstance(text, str):
        return SkippedInput(source, f"{source}: no {text_field!r} text field; give each record a {text_field!r} "
                                    f"string (or pass --text-column)")
    notes: list[str] = []
    try:
        article_id = sanitise_value(record_id(record.get(id_field), source, id_field), f"{source} id", notes)
        extra = {key: sanitise_value(value, f"{source} field {key!r}", notes)
                 for key, value in record.items() if key not in (id_field, text_field)}
        article = article_from_text(article_id or fallback_id, text, source=source, html=False)
    except ArticleError as error:
        return SkippedInput(source, str(error))
    for note in notes:
        warn(note)
    return InputArticle(article, extra)


def _undecodable(line: str, source: str, encoding: str) -> SkippedInput | None:
    """A SkippedInput for a line that holds bytes its file's encoding cannot decode (see articles.UNDECODABLE)."""
    bad = LONE_SURROGATE.search(line)
    if bad is None:
        return None
    return SkippedInput(source, f"{source}: not valid {ENCODING_NAMES.get(encoding, encoding)} (byte "
                                f"0x{ord(bad.group()) - 0xDC00:02x}); {RESAVE}; the other lines are read")


def read_jsonl_articles(handle, name: str, id_field: str, text_field: str, encoding: str = "utf-8",
                        warn: Warn = print_warning, first_line: int = 1) -> Iterator[InputArticle | SkippedInput]:
    for number, line in enumerate(handle, first_line):
        if not line.strip():
            continue
        source = f"{name}:{number}"
        bad = _undecodable(line, source, encoding)
        if bad:
            yield bad
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield SkippedInput(source, f"{source}: malformed JSON ({error.msg}); fix or remove that line")
            continue
        if not isinstance(record, dict):
            yield SkippedInput(source, f"{source}: expected a JSON object with {id_field!r} and {text_field!r}")
            continue
        yield _record(record, source, id_field, text_field, generated_id(name, number), warn)


def read_csv_articles(handle, name: str, id_field: str, text_field: str, encoding: str = "utf-8",
                      warn: Warn = print_warning) -> Iterator[InputArticle | SkippedInput]:
    csv.field_size_limit(1 << 30)
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        yield SkippedInput(name, f"{name}: no {text_field!r} column (columns: {', '.join(reader.fieldnames or [])}); "
                                 f"pass --text-column NAME")
        return
    line = reader.line_num + 1
    for row in reader:
        source = f"{name}:{line}"  # the line the row starts on
        bad = _undecodable("".join(value for value in row.values() if isinstance(value, str)), source, encoding)
        yield bad or _record(row, source, id_field, text_field, generated_id(name, line), warn)
        line = reader.line_num + 1


def _open_text(path: Path):
    """The file as text in the encoding it is in (see articles.sniff_encoding); undecodable bytes are marked, not
    fatal, so that one bad line costs that line only."""
    raw = path.open("rb", buffering=1 << 16)
    encoding = sniff_encoding(raw.peek(65536)[:65536]) or "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, errors=UNDECODABLE, newline=""), encoding


def iter_inputs(inputs: list[str], id_field: str = "id", text_field: str = "text", stdin=None,
                warn: Warn = print_warning) -> Iterator[InputArticle | SkippedInput]:
    """Every article of every input, in order; folders are walked for .txt and .html files. Repairs made on the
    way in go to `warn` (default: a line on stderr); an article whose id was already met is skipped."""
    seen: dict[str, str] = {}
    for item in _iter_all(inputs, id_field, text_field, stdin, warn):
        if isinstance(item, InputArticle):
            for message in item.article.warnings:
                warn(message)
            first = seen.get(item.article.id)
            if first is None:
                seen[item.article.id] = item.article.source
            else:
                as_text = " (ids compare as text: 1 and \"1\" are one id)" if item.article.id.isdigit() else ""
                item = SkippedInput(item.article.source, f"{item.article.source}: article id {item.article.id!r} is "
                                                         f"already taken by {first}{as_text}; give each article a "
                                                         "unique id")
        yield item


def _iter_all(inputs: list[str], id_field: str, text_field: str, stdin,
              warn: Warn) -> Iterator[InputArticle | SkippedInput]:
    for name in inputs:
        if name == "-":
            stream = stdin or sys.stdin
            if hasattr(stream, "buffer"):  # a real standard input: read its bytes as a file's are read
                encoding = sniff_encoding(stream.buffer.peek(65536)[:65536]) or "utf-8-sig"
                stream = io.TextIOWrapper(stream.buffer, encoding=encoding, errors=UNDECODABLE, newline="")
            yield from _iter_stdin(stream, id_field, text_field, warn)
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES)
        else:
            files = [path]
        for file in files:
            yield from _iter_file(file, id_field, text_field, warn)


def _iter_stdin(stream, id_field: str, text_field: str, warn: Warn) -> Iterator[InputArticle | SkippedInput]:
    """JSON Lines when the first line that is not blank starts with "{", else one prose article."""
    lines = []
    for line in stream:
        lines.append(line)
        if line.strip():
            break
    if lines and lines[-1].lstrip().startswith("{"):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        yield from read_jsonl_articles(_chain(lines[-1:], stream), STDIN, id_field, text_field, encoding, warn,
                                       first_line=len(lines))
        return
    text = "".join(lines) + stream.read()
    bad = _undecodable(text, STDIN, getattr(stream, "encoding", None) or "utf-8") if hasattr(stream, "buffer") else None
    if bad:
        yield bad
        return
    try:
        yield InputArticle(article_from_text("stdin", text, source=STDIN))
    except ArticleError as error:
        yield SkippedInput(STDIN, str(error))


def _iter_file(path: Path, id_field: str, text_field: str, warn: Warn) -> Iterator[InputArticle | SkippedInput]:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        reader = read_csv_articles if suffix == ".csv" else read_jsonl_articles
        try:
            handle, encoding = _open_text(path)
        except OSError as error:
            yield SkippedInput(str(path), f"{path}: cannot read ({error.strerror}); check the path")
            return
        try:
            with handle:
                yield from reader(handle, str(path), id_field, text_field, encoding, warn)
        except OSError as error:
            yield SkippedInput(str(path), f"{path}: cannot read ({error.strerror}) after the records read so far; "
                                          "check the file and run again (done articles are kept)")
        except csv.Error as error:
            yield SkippedInput(str(path), f"{path}: malformed CSV ({error}); fix the file and run again (done "
                                          "articles are kept)")
        return
    try:
        article = read_article(path)
    except ArticleError as error:
        yield SkippedInput(str(path), str(error))
        return
    yield InputArticle(article, {"title": article.title} if article.title else {})


def _chain(first: list[str], rest):
    yield from first
    yield from rest
