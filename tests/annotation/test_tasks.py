import pytest

from policytag.labels import LABEL_NAMES, NONE_CHOICE, UnknownLabelError
from policytag.records import Sentence

from policytag.annotation.labeling_config import CONTROL
from policytag.annotation.tasks import (article_html, check_scores, chosen_labels, decision_confidence, labels_to_choices,
                              prediction, scores_html, task_data)

ARTICLE = "Headline <with> markup\n\nFirst paragraph. The platform must obey & comply.\nLast line."


def scores(**given):
    return {name: given.get(name, 0.0) for name in LABEL_NAMES}


def test_the_sentence_is_marked_inside_its_escaped_article():
    start = ARTICLE.index("The platform")
    end = ARTICLE.index("comply.") + len("comply.")
    html = article_html(ARTICLE, start, end)
    assert '<p>First paragraph. <mark id="pt-sentence">The platform must obey &amp; comply.</mark></p>' in html
    assert "<p>Headline &lt;with&gt; markup</p>" in html and "<p>Last line.</p>" in html


def test_a_long_article_is_cut_to_the_paragraphs_around_the_sentence():
    text = "\n".join(f"Paragraph {i}." for i in range(100))
    start = text.index("Paragraph 50.")
    html = article_html(text, start, start + len("Paragraph 50."))
    assert "[47 earlier paragraphs not shown]" in html and "<p>Paragraph 47.</p>" in html
    assert "<p>Paragraph 56.</p>" in html and "Paragraph 57." not in html
    assert "[43 later paragraphs not shown]" in html


def test_task_data_refuses_offsets_that_do_not_match_the_article():
    sentence = Sentence("a:1", "a", 0, 0, 8, "Headline", "en")
    assert task_data(sentence, ARTICLE)["article_html"].count("<mark") == 1
    assert task_data(sentence, None)["article_html"] == '<div class="pt-article"><p><mark id="pt-sentence">' \
                                                       'Headline</mark></p></div>'
    with pytest.raises(ValueError, match="segment the articles again"):
        task_data(Sentence("a:1", "a", 0, 1, 9, "Headline", "en"), ARTICLE)


def test_prediction_chooses_labels_at_their_thresholds_or_none():
    given = scores(privacy=0.7, sovereignty=0.4)
    assert chosen_labels(given, 0.5) == ["privacy"]
    assert chosen_labels(given, {"sovereignty": 0.3}) == ["privacy", "sovereignty"]
    result = prediction(scores(), 0.5, "m1")
    assert result["model_version"] == "m1" and result["score"] == 1.0
    assert result["result"] == [{"from_name": CONTROL, "to_name": "sentence", "type": "choices",
                                 "value": {"choices": [NONE_CHOICE]}}]


def test_the_overall_score_is_the_least_sure_label_decision():
    assert decision_confidence(scores(privacy=0.5), 0.5) == 0.0
    assert decision_confidence(scores(privacy=0.75), 0.5) == 0.5
    assert decision_confidence(scores(privacy=1.0, taxation=0.2), 0.5) == pytest.approx(0.6)


def test_scores_must_name_every_schema_label_and_nothing_else():
    with pytest.raises(UnknownLabelError):
        check_scores("s", {**scores(), "surveillance": 0.3})
    with pytest.raises(ValueError, match="no score for taxation"):
        check_scores("s", {k: v for k, v in scores().items() if k != "taxation"})


def test_labels_become_choices_in_schema_order():
    assert labels_to_choices(["sovereignty", "privacy"]) == ["privacy", "sovereignty"]
    assert labels_to_choices([]) == [NONE_CHOICE]


def test_scores_view_marks_the_chosen_labels():
    html = scores_html(scores(privacy=0.91), 0.5, "m<1>")
    assert "m&lt;1&gt;" in html and '<tr class="pt-on"><td>✔</td><td>privacy</td><td>0.91</td>' in html
