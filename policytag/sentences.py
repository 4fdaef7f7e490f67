"""Sentence splitting with character offsets, for English, Vietnamese and other languages written with spaces.

A line (paragraph) always ends a sentence, so headlines and crossheads with no final stop are sentences of their
own. Inside a line, a sentence ends at . ! ? or … (with any closing quotes or brackets) followed by white space and
an upper-case letter, a digit or an opening quote, unless the word before the stop is an abbreviation ("Mr.",
"U.S.", "TP.", an initial) or a number abbreviation followed by a number ("No. 5").
"""

from __future__ import annotations

import re

from policytag.furniture import BULLET
from policytag.text import is_blank

ABBREVIATIONS = {
    # English titles, companies, months, Latin
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gen", "gov", "sen", "rep", "rev", "col", "lt", "sgt",
    "capt", "cmdr", "adm", "pres", "supt", "messrs", "inc", "ltd", "co", "corp", "bros", "dept", "est", "vs", "cf",
    "e.g", "i.e", "a.m", "p.m", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "mt", "ft", "approx", "govt", "int'l", "pub", "stat", "subsec", "para", "paras", "cl", "reg", "ibid",
    # Vietnamese: Thành phố, Tiến sĩ, Thạc sĩ, Phó giáo sư, Giáo sư, Bác sĩ, Kỹ sư, Nghệ sĩ nhân dân / ưu tú
    "tp", "ts", "ths", "pgs", "gs", "bs", "ks", "nsnd", "nsưt", "ttxvn",
}
NUMBER_ABBREVIATIONS = {"no", "nos", "art", "arts", "p", "pp", "vol", "fig", "tr", "q", "k", "đ", "sec", "ch"}
"""Abbreviations only when a number follows: 'No. 5' but 'We told them no. That request ...'."""

ENUMERATOR = re.compile(r"^\s*(\(?[0-9]{1,3}[.)]|\(?[a-zđ][.)]|\([A-Z]{1,4}\)|[IVXLC]{1,5}\.|(điều|khoản|article|art|section|"
                        r"chương|chapter|mục|part|§)\s*[0-9IVXLC]+[a-z]?\.)$", re.IGNORECASE)
"""A list or clause number at the start of a line ("1.", "a)", "(A)", "Điều 16.", "Article 2."): it belongs to
the sentence it introduces and never ends one."""
BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
NEXT_START = re.compile(r"\s+[\"'“‘«(\[]*([^\s\"'“‘«(\[])")


def _word_before(text: str, stop: int) -> str:
    start = stop
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:stop].lstrip("\"'“‘«([").lower()


def is_sentence_end(text: str, stop: int, end: int) -> bool:
    """Does the boundary text[stop:end] (stop marks, closing quotes) end a sentence?"""
    following = NEXT_START.match(text, end)
    if following is None:
        return False
    first = following.group(1)
    opened = following.group(0).strip() != first  # an opening quote or bracket comes first
    if not (first.isupper() or first.isdigit() or opened):
        return False
    if text[stop] != ".":
        return True
    word = _word_before(text, stop)
    if word in ABBREVIATIONS or re.fullmatch(r"([^\W\d_]\.)+[^\W\d_]", word) or re.fullmatch(r"[^\W\d_]", word):
        return False  # Mr. / U.S. / initials such as "J."
    return not (word in NUMBER_ABBREVIATIONS and first.isdigit())


def split_line(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end] (one line), white space and bullet marks trimmed off each; a span
    that shows nothing (invisible characters only) is none."""
    spans = []
    cursor = start
    for match in BOUNDARY.finditer(text, start, end):
        if ENUMERATOR.match(text[cursor:match.end()]):
            continue
        if is_sentence_end(text, match.start(), match.end()):
            spans.append((cursor, match.end()))
            cursor = match.end()
    spans.append((cursor, end))
    trimmed = []
    for span_start, span_end in spans:
        piece = text[span_start:span_end]
        bullet = BULLET.match(piece.lstrip())
        lead = len(piece) - len(piece.lstrip()) + (bullet.end() if bullet else 0)
        span_start, span_end = span_start + lead, span_end - (len(piece) - len(piece.rstrip()))
        if span_end > span_start and not is_blank(text[span_start:span_end]):  # zero-width spaces are no sentence
            trimmed.append((span_start, span_end))
    return trimmed
