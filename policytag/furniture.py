"""Page furniture: the lines of a saved news page that are not the article.

General rules that hold for news pages, not rules per file: navigation bullets, site self-references (cookies,
newsletters, log-in, "click here"), bylines, datelines, photo credits, reading-time stamps, bare links, repeated
lines, name-only credit lines, and the tail of the page after a heading such as "Related news" or "Tags:".
Each rule gives a reason, so the segment report says why every removed line went.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str


def split_lines(text: str) -> list[Line]:
    """Non-blank lines with the offsets of their text, surrounding whitespace excluded."""
    lines = []
    for match in re.finditer(r"[^\n]+", text):
        stripped = match.group().strip()
        if stripped:
            start = match.start() + (len(match.group()) - len(match.group().lstrip()))
            lines.append(Line(start, start + len(stripped), stripped))
    return lines


BULLET = re.compile(r"^[•·▪◦●*\-–—]\s*")
SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\]]*$")
SITE_TALK = re.compile(
    r"(?i)\b(skip to|sidebar|sitemap|click here|go to top|back to top|all rights reserved|this (web)?site|"
    r"our (web)?site|your (browser|inbox|mailbox|preferences)|dear (visitor|reader)|thanks? (you )?for visiting|"
    r"privacy overview|share (this|on)|follow us|not now|no thanks|min read)\b|©"
)
SITE_WORDS = re.compile(r"(?i)\b(cookies?|newsletters?|subscribe|sign[ -]?up|log[ -]?in|login|register|advertise)")
"""Words that are site chrome on a short line ("Log in", "Necessary Cookies") but may be news in a sentence."""
BYLINE = re.compile(r"^(by|written by|reporting by|bởi)\s+[A-ZĐ][\w’'.-]*(\s+[A-ZĐ][\w’'.-]*){0,3}\b", re.IGNORECASE)
CREDIT = re.compile(r"(?i)\b(photo|photograph|image|video|credit|ảnh)\s*(by|:)\s*\S|^\((reporting|editing|writing) by")
MONTHS = (r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|"
          r"nov(ember)?|dec(ember)?)")
DATELINE = re.compile(
    rf"(?i)^((mon|tues|wednes|thurs|fri|satur|sun)day,?\s*)?({MONTHS}\.?\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{MONTHS}\.?"
    rf"\s+\d{{4}}|\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}|ngày\s+\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}})"
    rf"([\s,|-]*\d{{1,2}}:\d{{2}}(\s*[ap]\.?m\.?)?(\s*[A-Z]{{2,4}})?)?$"
)
LINK = re.compile(r"^(https?://|www\.)\S+$|^[\w-]+(\.[\w-]+)+/\S*$")
TAIL_HEADINGS = {
    "related", "related news", "related articles", "related stories", "related posts", "more news", "more stories",
    "more jobs", "more courses", "read more", "read next", "recommended", "you may also like", "most viewed",
    "most read", "most popular", "trending", "recent", "recent posts", "latest news", "primary sidebar", "sidebar",
    "footer", "tags", "categories", "share", "reactions", "comments", "about the author", "e-mail newsletter",
    "newsletter", "tin liên quan", "bài liên quan", "đọc thêm", "xem thêm", "tin cùng chuyên mục",
}
TAIL_PREFIX = re.compile(r"(?i)^(tags|categories|share|reactions|related news|read more)\s*:")
MENU_MAX_WORDS = 4
TAIL_MIN_BODY_WORDS = 60
"""A tail heading only ends the article after this much body text, so a menu entry near the top cannot."""


def is_name_list(text: str) -> bool:
    """'Quang Phong – Thu Hang', 'Flag, Vietnam Flag': capitalised names separated by dashes or commas."""
    parts = [p.strip() for p in re.split(r"\s[–—-]\s|,|\||/", text) if p.strip()]
    if len(parts) < 2:
        return False
    def is_name(word: str) -> bool:
        return word[:1].isupper() and not (len(word) > 1 and word.isupper())  # "Phong", not "CHAPTER"

    return all(1 <= len(p.split()) <= 4 and all(map(is_name, p.split())) for p in parts)


def furniture_reason(line: Line) -> str | None:
    """Why this line, taken alone, is page furniture; None if it may be article text."""
    text = line.text
    words = text.split()
    if BULLET.match(text) and not SENTENCE_END.search(text):
        return "navigation or teaser bullet"
    if SITE_TALK.search(text) or (SITE_WORDS.search(text) and len(words) <= 6 and not SENTENCE_END.search(text)):
        return "site notice"
    if BYLINE.match(text) and len(words) <= 14:
        return "byline"
    if CREDIT.search(text) and len(words) <= 40:
        return "photo caption or credit"
    if DATELINE.match(text):
        return "date"
    if LINK.match(text):
        return "bare link"
    if not SENTENCE_END.search(text) and len(words) <= 12 and is_name_list(text):
        return "name list"
    return None


def is_tail_heading(text: str) -> bool:
    return text.strip(" :").lower() in TAIL_HEADINGS or bool(TAIL_PREFIX.match(text))


def find_furniture(lines: list[Line]) -> dict[int, str]:
    """Index of each furniture line -> the reason it is furniture."""
    reasons: dict[int, str] = {}
    counts = Counter(line.text for line in lines)
    seen: set[str] = set()
    body_words = 0
    for index, line in enumerate(lines):
        if body_words >= TAIL_MIN_BODY_WORDS and is_tail_heading(line.text):
            for rest in range(index, len(lines)):
                reasons[rest] = "page tail (after '" + line.text.strip(" :") + "')"
            break
        reason = furniture_reason(line)
        if reason is None and line.text in seen:
            reason = "repeated line"
        elif reason is None and counts[line.text] > 1 and len(line.text.split()) <= 4:
            reason = "repeated short line (site name or menu)"
        seen.add(line.text)
        if reason:
            reasons[index] = reason
        elif SENTENCE_END.search(line.text):
            body_words += len(line.text.split())
    _extend_menus(lines, reasons)
    return reasons


def _is_menu_like(text: str) -> bool:
    return len(text.split()) <= MENU_MAX_WORDS and not SENTENCE_END.search(text)


def _extend_menus(lines: list[Line], reasons: dict[int, str]) -> None:
    """Short unpunctuated lines next to furniture are more of the same menu ('Articles', 'Job Posts')."""
    changed = True
    while changed:
        changed = False
        for index, line in enumerate(lines):
            if index in reasons or not _is_menu_like(line.text):
                continue
            if (index - 1) in reasons or (index + 1) in reasons:
                reasons[index] = "menu entry next to other furniture"
                changed = True
