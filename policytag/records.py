"""Records that travel between stages, and their JSON Lines files (written atomically)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article: `raw[start:end] == text`, where raw is the article's text as read by
    policytag.articles.read_article (decoded, BOM removed, line ends made LF, NFC)."""

    id: str
    article_id: str
    index: int
    start: int
    end: int
    text: str
    lang: str


def sentence_id(article_id: str, text: str, occurrence: int = 0) -> str:
    """A sentence's id depends on its article and its own text alone, so it survives edits elsewhere in the article.

    `occurrence` tells apart identical sentences of one article (0 for the first, 1 for the second, ...).
    """
    normalised = " ".join(unicodedata.normalize("NFC", text).split())
    # surrogatepass: text is sanitised where it enters (policytag.text), but an id must exist for any str
    digest = hashlib.sha1(f"{article_id}\n{normalised}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{article_id}:{digest}" + (f"-{occurrence + 1}" if occurrence else "")


@dataclass
class Annotation:
    """One annotator's decision on one sentence: the line format of data/annotations/*.jsonl.

    `labels` empty means the annotator chose "none". `source` tells seed articles from pool articles.
    """

    sentence_id: str
    annotator: str
    labels: list[str]
    text: str = ""
    article_id: str = ""
    source: str = "seed"
    extra: dict = field(default_factory=dict)


class JsonlError(ValueError):
    """A JSON Lines file that cannot be read; the message names the file and the line."""


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise JsonlError(f"{path}:{number}: malformed JSON ({error.msg}); fix or remove that line") from None
            if not isinstance(value, dict):
                raise JsonlError(f"{path}:{number}: expected a JSON object per line")
            yield value


def write_jsonl(path: str | os.PathLike, records: Iterable) -> int:
    """Write records (dataclasses or dicts) to path atomically; return how many were written."""
    count = 0
    with atomic_writer(path) as handle:
        for record in records:
            value = asdict(record) if hasattr(record, "__dataclass_fields__") else record
            handle.write(json.dumps(value, ensure_ascii=False, allow_nan=False) + "\n")  # NaN is no JSON
            count += 1
    return count


def write_json(path: str | os.PathLike, value, indent: int = 1, sort_keys: bool = False) -> None:
    """`value` as indented UTF-8 JSON with a final newline, written atomically (a reader never sees half a file)."""
    with atomic_writer(path) as handle:
        json.dump(value, handle, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
        handle.write("\n")


def read_sentences(path: str | os.PathLike) -> list[Sentence]:
    return [Sentence(**row) for row in read_jsonl(path)]


def read_annotations(path: str | os.PathLike) -> list[Annotation]:
    return [Annotation(**row) for row in read_jsonl(path)]


class atomic_writer:
    """Open a temporary file beside `path` for writing text; replace `path` with it only on success."""

    def __init__(self, path: str | os.PathLike, mode: str = "w"):
        self.path = Path(path)
        self.mode = mode

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        encoding = None if "b" in self.mode else "utf-8"
        self.handle = os.fdopen(fd, self.mode, encoding=encoding)
        return self.handle

    def __exit__(self, exc_type, exc, tb):
        self.handle.close()
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
        return False


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike):
    """Build a directory in a temporary folder beside `target` (yielded); on success it replaces `target`, readable
    by everyone, and on failure it is removed, leaving `target` as it was: a crash never leaves half a model."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield build
        for folder, _, files in os.walk(build):  # mkdtemp and some writers make private files
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o644)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        build.rename(target)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
