"""Reading articles as users give them: plain text or HTML, in any of the encodings people really save.

An article's `text` is what every offset in policytag points into: the file decoded (UTF-8, with or without BOM,
or UTF-16 with a BOM), line ends made LF and Unicode normalised to NFC; for HTML, the main text extracted as one
block per line. Bad input raises ArticleError with one message naming the file and the fix.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from policytag.text import normalise_text as normalise_nfc

ARTICLE_SUFFIXES = (".txt", ".html", ".htm")


class ArticleError(ValueError):
    """An input file that cannot be read as an article; str(error) names the file and what to do."""


@dataclass(frozen=True)
class Article:
    id: str
    text: str
    source: str = ""
    """Where the text came from (a file path or a record name), for messages."""


def slugify(text: str, max_length: int = 80) -> str:
    """Lower-case ASCII slug: 'Vietnam's Ambition!' -> 'vietnams-ambition'; Vietnamese letters lose their marks."""
    ascii_text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii").lower()
    ascii_text = re.sub(r"['’]", "", ascii_text)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:max_length].rstrip("-") or "article"


def normalise_text(text: str) -> str:
    """LF line ends and NFC: the form in which policytag stores and offsets every text."""
    return normalise_nfc(text.replace("\r\n", "\n").replace("\r", "\n"))


def decode_bytes(data: bytes, source: str) -> str:
    """Decode a file's bytes to text, or raise ArticleError saying why it is not a text article."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ArticleError(f"{source}: starts with a UTF-16 byte-order mark but is not valid UTF-16; "
                               "re-save it as UTF-8 text or leave it out") from None
    else:
        if b"\x00" in data[:65536]:
            raise ArticleError(f"{source}: binary file (it contains NUL bytes), not a text or HTML article; "
                               "convert it to UTF-8 text or leave it out")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ArticleError(
                f"{source}: not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
                "re-save it as UTF-8, for example: iconv -f WINDOWS-1252 -t UTF-8 FILE > FILE.utf8"
            ) from None
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 100):
        raise ArticleError(f"{source}: looks binary ({controls} control characters), not a text or HTML article; "
                           "convert it to UTF-8 text or leave it out")
    return text


def looks_like_html(text: str) -> bool:
    head = text[:1000].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or bool(re.search(r"<(body|article|p|div)[\s>]", head))


def article_from_text(article_id: str, text: str, source: str = "", html: bool | None = None) -> Article:
    """Build an Article from text already in memory (HTML detected unless `html` says)."""
    if html is None:
        html = looks_like_html(text)
    if html:
        from policytag.html_text import html_to_text

        text = html_to_text(text)
    text = normalise_text(text)
    if not text.strip():
        raise ArticleError(f"{source or article_id}: empty article (no text{' after HTML extraction' if html else ''}); "
                           "give a file with the article's text or leave it out")
    return Article(id=article_id, text=text, source=source or article_id)


def read_article(path: str | Path, article_id: str | None = None) -> Article:
    """Read one .txt or .html file; the article id defaults to the slug of the file name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ArticleError(f"{path}: cannot read ({error.strerror}); check the path and its permissions") from None
    if not data.strip():
        raise ArticleError(f"{path}: empty file; give a file with the article's text or leave it out")
    text = decode_bytes(data, str(path))
    html = path.suffix.lower() in (".html", ".htm") or looks_like_html(text)
    return article_from_text(article_id or slugify(path.stem), text, source=str(path), html=html)


def find_article_files(paths: list[str | Path]) -> list[Path]:
    """Files named directly, and every .txt/.html file under folders named, in a stable order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES))
        else:
            found.append(path)
    return found
