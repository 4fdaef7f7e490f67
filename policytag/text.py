"""Text normalisation shared by training and tagging.

The encoder's tokenizer does not compose decomposed text: a Vietnamese word whose tone marks are separate
combining characters (as some sites and keyboards write it) loses or moves them, so "cầu" is read as "câu" and
"nội" as "n", "ọ", "i". Every piece of text is therefore brought to NFC before it reaches the tokenizer, both when
training and when tagging.

NFC, not NFKC: it only composes what is canonically equivalent, so it changes no visible character; the
tokenizer's own normaliser still applies its compatibility mappings afterwards. Articles read through
policytag.articles are already stored in NFC, so there this is a no-op; it guards every other way text reaches
the model.
"""

from __future__ import annotations

import unicodedata


def normalise_text(text: str) -> str:
    """Return `text` in Unicode Normalization Form C (canonical composition)."""
    return unicodedata.normalize("NFC", text)
