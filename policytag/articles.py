"""Reading articles as users give them: plain text or HTML, in any of the encodings people really save.

An article's `text` is what every offset in policytag points into: the file decoded (UTF-8, with or without BOM,
or UTF-16, with a BOM or recognised by its zero bytes), lone surrogates replaced by U+FFFD, line ends made LF and
Unicode normalised to NFC; for HTML, the main text extracted as one block per line, headed by the page's <title>
when the page has no <h1>. Text that shows nothing (white space and invisible characters only) is an empty article.
Bad input raises ArticleError with one message naming the file and the fix.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from policytag.text import is_blank, replace_lone_surrogates
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
    title: str = ""
    """The page's <title> for an HTML article (else empty)."""
    warnings: tuple[str, ...] = ()
    """What was repaired on the way in (lone surrogates replaced), each naming the source; for the reader to report."""


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


UNDECODABLE = "policytag-undecodable"
"""Codec error handler that turns each byte it cannot decode into the lone surrogate U+DC00 + byte (as
"surrogateescape" does, for every byte and every codec): decoding goes on, and a reader finds the bad places by
their surrogates, which no valid decoding yields."""
codecs.register_error(UNDECODABLE, lambda error: ("".join(chr(0xDC00 + byte) for byte in
                                                          error.object[error.start:error.end]), error.end))
UTF16_ZERO_SHARE = 0.3
"""UTF-16 without a byte-order mark is recognised when at least this share of its high bytes are zero (Latin
text: every ASCII character, space and line end) and almost none of its low bytes."""


def sniff_encoding(head: bytes) -> str | None:
    """The encoding of a file that starts with `head` (its first 64 KiB, say): "utf-8-sig" (UTF-8, a BOM or
    none), "utf-16" (with a BOM), "utf-16-le" / "utf-16-be" (no BOM, told by where the zero bytes are), or None
    for binary data (zero bytes that are not UTF-16's)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" not in head:
        return "utf-8-sig"
    even, odd = head[0::2], head[1::2]
    if len(odd) < 2:
        return None
    share = lambda units: units.count(0) / len(units)  # noqa: E731
    if share(odd) >= UTF16_ZERO_SHARE and share(even) <= 0.02:
        return "utf-16-le"
    if share(even) >= UTF16_ZERO_SHARE and share(odd) <= 0.02:
        return "utf-16-be"
    return None


ENCODING_NAMES = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16"}
RESAVE = "re-save it as UTF-8, for example: iconv -f WINDOWS-1252 -t UTF-8 FILE > FILE.utf8"


def decode_bytes(data: bytes, source: str) -> str:
    """Decode a file's bytes to text, or raise ArticleError saying why it is not a text article."""
    encoding = sniff_encoding(data[:65536])
    if encoding is None:
        raise ArticleError(f"{source}: binary file (it contains NUL bytes), not a text or HTML article; "
                           "convert it to UTF-8 text or leave it out")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[:error.start].decode(encoding, "replace").count("\n") + 1
        if encoding == "utf-16":
            raise ArticleError(f"{source}: starts with a UTF-16 byte-order mark but is not valid UTF-16 (line "
                               f"{line}); re-save it as UTF-8 text or leave it out") from None
        raise ArticleError(f"{source}: not valid {ENCODING_NAMES[encoding]} (byte 0x{data[error.start]:02x} on "
                           f"line {line}, at offset {error.start}); {RESAVE}") from None
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 100):
        raise ArticleError(f"{source}: looks binary ({controls} control characters), not a text or HTML article; "
                           "convert it to UTF-8 text or leave it out")
    return text


def looks_like_html(text: str) -> bool:
    head = text[:1000].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or bool(re.search(r"<(body|article|p|div)[\s>]", head))


def article_from_text(article_id: str, text: str, source: str = "", html: bool | None = None) -> Article:
    """Build an Article from text already in memory (HTML detected unless `html` says). This is where text enters
    policytag: lone surrogates are replaced by U+FFFD (and reported in `warnings`), and text that shows nothing is
    an empty article."""
    where = source or article_id
    text, surrogates = replace_lone_surrogates(text)
    warnings = (f"{where}: {surrogates} lone surrogate(s) (half of a UTF-16 pair, no character) replaced with "
                "U+FFFD",) if surrogates else ()
    if html is None:
        html = looks_like_html(text)
    title = ""
    if html:
        from policytag.html_text import html_document

        title, text = html_document(text)
    text = normalise_text(text)
    if is_blank(text):
        raise ArticleError(f"{where}: empty article (no visible text{' after HTML extraction' if html else ''}); "
                           "give a file with the article's text or leave it out")
    return Article(id=article_id, text=text, source=where, title=normalise_text(title), warnings=warnings)


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
