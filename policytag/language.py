"""Language of a sentence, with its article's language as the prior for text too short to tell."""

from __future__ import annotations

from functools import lru_cache

MIN_CONFIDENCE = 0.8
MIN_CHARACTERS = 20


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> tuple[str, float]:
    """ISO 639-1 code and its probability."""
    lang, probability = _identifier().classify(text)
    return lang, float(probability)


def detect_language(text: str, fallback: str) -> str:
    """The sentence's own language when it is long and clear enough, else `fallback` (the article's)."""
    if len(text) < MIN_CHARACTERS:
        return fallback
    lang, probability = detect(text)
    return lang if probability >= MIN_CONFIDENCE else fallback
