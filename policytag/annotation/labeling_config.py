"""The Label Studio labeling interface, generated from the label schema (policytag.labels), and its instructions.

One task is one sentence. The annotator sees the sentence, then the sentence highlighted in its article
(`$article_html`), then the current model's per-label scores (`$scores_html`), and picks labels in one multi-choice
control named CONTROL with the six labels of the schema plus the explicit "none" choice. The task data that fills
these fields is built by policytag.annotation.tasks.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources

from policytag.labels import LABELS, NONE_CHOICE

CONTROL = "labels"
"""Name of the Choices control; annotation results carry it as `from_name`."""
SENTENCE = "sentence"
"""Name of the object the choices are about (`to_name` in results)."""
NONE_HINT = "No label applies: the sentence is about none of the six topics, or it is page furniture."
GUIDELINES = "guidelines.md"

STYLE = """
.pt-article { max-height: 24em; overflow-y: auto; padding: 0.5em 1em; border: 1px solid #ddd; line-height: 1.5; }
.pt-article mark { background: #ffe066; padding: 0 2px; font-weight: 600; }
.pt-article .pt-omitted { color: #888; font-style: italic; }
.pt-scores table { border-collapse: collapse; }
.pt-scores td, .pt-scores th { padding: 1px 8px; text-align: left; }
.pt-scores .pt-on { font-weight: 600; }
"""


def labeling_config() -> str:
    """The XML labeling config; labels, their order and their hints come from policytag.labels."""
    view = ET.Element("View")
    ET.SubElement(view, "Style").text = STYLE
    ET.SubElement(view, "Header", value="Sentence", size="5")
    ET.SubElement(view, "Text", name=SENTENCE, value="$text")
    ET.SubElement(view, "Header", value="In its article", size="5")
    ET.SubElement(view, "HyperText", name="article", value="$article_html", inline="true", selectionEnabled="false")
    ET.SubElement(view, "Header", value="Model suggestion", size="5")
    ET.SubElement(view, "HyperText", name="scores", value="$scores_html", inline="true", selectionEnabled="false")
    ET.SubElement(view, "Header", value="Labels: every one that applies, or none", size="5")
    choices = ET.SubElement(
        view, "Choices", name=CONTROL, toName=SENTENCE, choice="multiple", showInline="false", required="true",
        requiredMessage="Choose at least one label, or none.",
    )
    for number, label in enumerate(LABELS, 1):
        ET.SubElement(choices, "Choice", value=label.name, hint=label.description, hotkey=str(number))
    ET.SubElement(choices, "Choice", value=NONE_CHOICE, hint=NONE_HINT, hotkey="0")
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def guidelines_markdown() -> str:
    return resources.files("policytag.annotation").joinpath(GUIDELINES).read_text(encoding="utf-8")


def instructions_html() -> str:
    """policytag/annotation/guidelines.md as HTML, for the project's instructions (Label Studio's
    `expert_instruction`)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).render(guidelines_markdown())
