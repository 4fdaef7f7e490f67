"""Text normalisation shared by training and tagging.

The encoder's tokenizer does not compose decomposed text: a Vietnamese word whose tone marks are separate
combining characters (as some sites and keyboards write it) loses or moves them, so "cầu" is read as "câu" and
"nội" as "n", "ọ", "i". Every piece of text is therefore brought to NFC before it reaches the tokenizer, both when
training and when tagging.

NFC, not NFKC: it only composes what is canonically equivalent, so it changes no visible character; the
tokenizer's own normaliser still applies its compatibility mappings afterwards. Articles read through
policytag.articles are already stored in NFC, so there this is a no-op; it guards every other way text reaches
the model.

Text is also made safe once, where it enters policytag (policytag.articles.article_from_text, the record reader
policytag.tagging.inputs, the ML backend): lone surrogates become U+FFFD and are reported, and text that shows nothing
(white space, zero-width and other invisible characters) counts as empty.
"""

from __future__ import annotations

import math
import re
import unicodedata


def normalise_text(text: str) -> str:
    """Return `text` in Unicode Normalization Form C (canonical composition)."""
    return unicodedata.normalize("NFC", text)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""Half of a UTF-16 surrogate pair on its own: valid in JSON ("\\ud800") and in a Python str, but no character, and
not encodable as UTF-8, so one such code point would stop every writer downstream."""
BLANK_CHARACTERS = frozenset("\u115f\u1160\u180e\u2800\u3164\uffa0")
"""Letters and symbols that render as nothing (Hangul fillers, the Mongolian vowel separator, the blank Braille
pattern), on top of white space, format characters (zero-width space, joiners, marks of direction, BOM, soft
hyphen) and control characters."""


def replace_lone_surrogates(text: str) -> tuple[str, int]:
    """`text` with every lone surrogate replaced by U+FFFD, and how many were replaced."""
    return LONE_SURROGATE.subn("\ufffd", text)


def is_blank_character(character: str) -> bool:
    return (character.isspace() or character in BLANK_CHARACTERS
            or unicodedata.category(character) in ("Cf", "Cc", "Zs", "Zl", "Zp"))


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: empty, or only white space and invisible characters (NBSP, zero-width
    space, ...). Such text is no sentence and no article."""
    return all(map(is_blank_character, text))


def sanitise_value(value, where: str, notes: list[str]):
    """A JSON-like value (str, number, list, dict) made safe to write as JSON text: lone surrogates in strings
    replaced by U+FFFD, NaN and infinities (which JSON has not) made null; each change is described in `notes`
    naming `where` (the record and field)."""
    if isinstance(value, str):
        clean, count = replace_lone_surrogates(value)
        if count:
            notes.append(f"{where}: {count} lone surrogate(s) (half of a UTF-16 pair, no character) replaced with "
                         "U+FFFD")
        return clean
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{where}: {value} is not a JSON number; written as null")
        return None
    if isinstance(value, dict):
        return {sanitise_value(key, f"{where} key", notes) if isinstance(key, str) else key:
                sanitise_value(item, f"{where}.{key}", notes) for key, item in value.items()}
    if isinstance(value, list):
        return [sanitise_value(item, f"{where}[{index}]", notes) for index, item in enumerate(value)]
    return value
