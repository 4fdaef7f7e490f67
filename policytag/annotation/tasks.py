"""Label Studio task payloads for sentences: the task data the labeling config shows, predictions and results.

Pure functions: no server here (policytag.annotation.push sends what these build).
"""

from __future__ import annotations

from html import escape
from typing import Mapping

from policytag.labels import LABEL_NAMES, NONE_CHOICE, validate_labels
from policytag.records import Sentence

from policytag.annotation.labeling_config import CONTROL, SENTENCE

Scores = Mapping[str, float]
Thresholds = Mapping[str, float] | float

CONTEXT_BEFORE = (3, 1000)
CONTEXT_AFTER = (6, 2000)
"""Whole paragraphs of article shown before and after a sentence, at most (paragraphs, characters): the sentence
stays near the top of the view, and a long article is not copied whole into every one of its sentences' tasks."""
NO_SUGGESTION_HTML = '<div class="pt-scores"><p>No model suggestion for this sentence yet.</p></div>'


def threshold_of(thresholds: Thresholds, label: str) -> float:
    return thresholds if isinstance(thresholds, (int, float)) else thresholds.get(label, 0.5)


def check_scores(sentence_id: str, scores: Scores) -> dict[str, float]:
    """Scores in schema order; every schema label must have one, and no other name may appear."""
    validate_labels(list(scores))
    missing = [name for name in LABEL_NAMES if name not in scores]
    if missing:
        raise ValueError(f"sentence {sentence_id}: no score for {', '.join(missing)}")
    return {name: float(scores[name]) for name in LABEL_NAMES}


def chosen_labels(scores: Scores, thresholds: Thresholds = 0.5) -> list[str]:
    """Labels whose score reaches their threshold, in schema order."""
    return [name for name in LABEL_NAMES if scores[name] >= threshold_of(thresholds, name)]


def decision_confidence(scores: Scores, thresholds: Thresholds = 0.5) -> float:
    """How sure the model is of its least sure label decision: 0 when a score sits on its threshold, 1 when every
    score is 0 or 1. This is the prediction's overall score, so sorting by it puts the most informative first."""
    confidences = []
    for name in LABEL_NAMES:
        score, threshold = scores[name], threshold_of(thresholds, name)
        if score >= threshold:
            confidences.append((score - threshold) / (1 - threshold) if threshold < 1 else 1.0)
        else:
            confidences.append((threshold - score) / threshold)
    return round(min(confidences), 6)


def choices_result(choices: list[str]) -> dict:
    """One result of the labels control, as Label Studio stores it in annotations and predictions."""
    return {"from_name": CONTROL, "to_name": SENTENCE, "type": "choices", "value": {"choices": list(choices)}}


def labels_to_choices(labels: list[str] | tuple[str, ...]) -> list[str]:
    """Schema labels as choices: the labels in schema order, or the explicit "none" choice when there are none."""
    return validate_labels(labels) or [NONE_CHOICE]


def prediction(scores: Scores, thresholds: Thresholds, model_version: str) -> dict:
    """One Label Studio prediction: the chosen labels as one result, one overall score, the model version."""
    return {
        "model_version": model_version,
        "score": decision_confidence(scores, thresholds),
        "result": [choices_result(labels_to_choices(chosen_labels(scores, thresholds)))],
    }


def scores_html(scores: Scores, thresholds: Thresholds, model_version: str) -> str:
    """The per-label scores as a small table; the labels the model chose are marked."""
    rows = []
    for name in LABEL_NAMES:
        on = scores[name] >= threshold_of(thresholds, name)
        rows.append(f'<tr class="{"pt-on" if on else "pt-off"}"><td>{"✔" if on else ""}</td><td>{escape(name)}</td>'
                    f"<td>{scores[name]:.2f}</td><td>≥ {threshold_of(thresholds, name):.2f}</td></tr>")
    return (f'<div class="pt-scores"><p>Model {escape(model_version)}</p><table><tr><th></th><th>label</th>'
            f"<th>score</th><th>threshold</th></tr>{''.join(rows)}</table></div>")


def article_html(text: str, start: int, end: int) -> str:
    """The article's paragraphs around text[start:end], that span wrapped in <mark>, everything escaped."""
    paragraphs = []  # (start, end) of each non-empty line
    offset = 0
    for line in text.split("\n"):
        if line.strip():
            paragraphs.append((offset, offset + len(line)))
        offset += len(line) + 1
    first = next((i for i, (_, e) in enumerate(paragraphs) if e > start), len(paragraphs) - 1)
    last = next((i for i in range(len(paragraphs) - 1, -1, -1) if paragraphs[i][0] < end), first)
    own_first, own_last = first, last
    while (first > 0 and own_first - first < CONTEXT_BEFORE[0]
           and start - paragraphs[first - 1][0] <= CONTEXT_BEFORE[1]):
        first -= 1
    while (last < len(paragraphs) - 1 and last - own_last < CONTEXT_AFTER[0]
           and paragraphs[last + 1][1] - end <= CONTEXT_AFTER[1]):
        last += 1
    parts = ['<div class="pt-article">']
    if first > 0:
        parts.append(f'<p class="pt-omitted">[{first} earlier paragraph{"s" if first > 1 else ""} not shown]</p>')
    for p_start, p_end in paragraphs[first:last + 1]:
        a, b = max(p_start, min(start, p_end)), max(p_start, min(end, p_end))
        marked = f'<mark id="pt-sentence">{escape(text[a:b])}</mark>' if a < b else ""
        parts.append(f"<p>{escape(text[p_start:a])}{marked}{escape(text[b:p_end])}</p>")
    if last < len(paragraphs) - 1:
        rest = len(paragraphs) - 1 - last
        parts.append(f'<p class="pt-omitted">[{rest} later paragraph{"s" if rest > 1 else ""} not shown]</p>')
    parts.append("</div>")
    return "".join(parts)


def task_data(sentence: Sentence, article_text: str | None, scores_view: str = NO_SUGGESTION_HTML) -> dict:
    """The data of one task. Without the article's text (None) the sentence is shown alone, still marked."""
    if article_text is None:
        article_text, start, end = sentence.text, 0, len(sentence.text)
    elif article_text[sentence.start:sentence.end] != sentence.text:
        raise ValueError(f"sentence {sentence.id}: its offsets do not match article {sentence.article_id}; "
                         "the sentences file is older than the article: segment the articles again")
    else:
        start, end = sentence.start, sentence.end
    return {
        "sentence_id": sentence.id,
        "article_id": sentence.article_id,
        "index": sentence.index,
        "text": sentence.text,
        "lang": sentence.lang,
        "article_html": article_html(article_text, start, end),
        "scores_html": scores_view,
    }
