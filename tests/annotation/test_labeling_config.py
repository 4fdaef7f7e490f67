import xml.etree.ElementTree as ET

from policytag.labels import LABELS, NONE_CHOICE

from policytag.annotation.labeling_config import CONTROL, SENTENCE, instructions_html, labeling_config


def test_choices_come_from_the_schema_with_an_explicit_none():
    view = ET.fromstring(labeling_config())
    control = view.find(f"Choices[@name='{CONTROL}']")
    assert control.get("choice") == "multiple" and control.get("toName") == SENTENCE
    assert [c.get("value") for c in control] == [label.name for label in LABELS] + [NONE_CHOICE]
    assert [c.get("hint") for c in control][:-1] == [label.description for label in LABELS]
    assert len({c.get("hotkey") for c in control}) == len(LABELS) + 1


def test_the_view_shows_the_sentence_its_article_and_the_model_scores():
    values = {tag.get("name"): tag.get("value") for tag in ET.fromstring(labeling_config()) if tag.get("name")}
    assert values[SENTENCE] == "$text"
    assert values["article"] == "$article_html"
    assert values["scores"] == "$scores_html"


def test_instructions_are_the_guidelines_as_html():
    html = instructions_html()
    for label in LABELS:
        assert f"<h2>{label.name}</h2>" in html
    assert "<h2>Several annotators on one sentence</h2>" in html
    assert "<script" not in html
