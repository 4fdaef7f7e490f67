"""Self-contained HTML pages of tagged articles: each sentence highlighted in its labels' colours, scores on hover,
and an index page (index.html). Every piece of text is escaped.

A page's file name is the article id's slug plus a short hash of the exact id ("Bà" -> ba-<hash>.html), so that ids
that slugify alike ("Bà", "ba", "BA!") get pages of their own, no article page is ever named index.html, and an
article keeps its page name from run to run."""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

from policytag.records import atomic_writer
from policytag.tagging.tagger import TaggedArticle

COLOURS = ["#f4a3a3", "#a3c8f4", "#f4d58d", "#b9e4a8", "#d6b4f0", "#9fe0d9", "#f0b8d9", "#cfcfcf"]
STYLE = """
body{font:16px/1.6 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
.legend span,.tags span{display:inline-block;padding:0 .5em;margin:0 .3em .3em 0;border-radius:.3em;font-size:.85em}
.s{border-radius:.2em;padding:.05em 0}
.s[data-labels]:hover{outline:2px solid #333}
article{white-space:pre-wrap}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
.meta{color:#666;font-size:.9em}
"""


def label_colours(labels: list[str]) -> dict[str, str]:
    return {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(labels)}


def _background(colours: list[str]) -> str:
    if len(colours) == 1:
        return f"background:{colours[0]}"
    stops = ",".join(f"{c} {100 * i // len(colours)}% {100 * (i + 1) // len(colours)}%" for i, c in enumerate(colours))
    return f"background:linear-gradient(180deg,{stops})"


def _legend(colours: dict[str, str]) -> str:
    return "".join(f'<span style="background:{c}">{html.escape(label)}</span>' for label, c in colours.items())


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def article_page(tagged: TaggedArticle, colours: dict[str, str]) -> str:
    text, pieces, cursor = tagged.text, [], 0
    for sentence in tagged.sentences:
        pieces.append(html.escape(text[cursor:sentence.start]))
        hover = "\n".join(f"{label}: {score:.3f}{' ✓' if label in sentence.labels else ''}"
                          for label, score in sorted(sentence.scores.items(), key=lambda kv: -kv[1]))
        attributes = f'class="s" title="{html.escape(hover)}"'
        if sentence.labels:
            attributes += (f' data-labels="{html.escape(" ".join(sentence.labels))}" '
                           f'style="{_background([colours[label] for label in sentence.labels])}"')
        pieces.append(f"<span {attributes}>{html.escape(sentence.text)}</span>")
        cursor = sentence.end
    pieces.append(html.escape(text[cursor:]))
    summary = tagged.summary
    counts = "".join(f'<span style="background:{colours[label]}">{html.escape(label)} '
                     f'{summary.sentences_per_label[label]}</span>' for label in summary.labels) or "no labels"
    body = (f'<p class="meta"><a href="index.html">all articles</a> · {html.escape(summary.source)} · '
            f'language {html.escape(summary.lang)} · model {html.escape(summary.model_version)}</p>'
            f'<h1>{html.escape(summary.article_id)}</h1><p class="tags">{counts}</p>'
            f'<p class="legend">Legend: {_legend(colours)} (hover a sentence for its scores)</p>'
            f"<article>{''.join(pieces)}</article>")
    return _page(summary.article_id, body)


def page_name(article_id: str) -> str:
    """slug-<8 hex digits of the id's SHA-256>.html: readable, stable, and distinct for distinct ids."""
    from policytag.articles import slugify

    digest = hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:8]
    return f"{slugify(article_id, max_length=60)}-{digest}.html"


class HtmlReport:
    """Writes one page per article as it comes, and at the end an index of every article done (this run's and
    earlier runs' alike, from the summaries)."""

    def __init__(self, directory: Path, labels: list[str]):
        self.directory = Path(directory)
        self.colours = label_colours(labels)

    def write(self, article_id: str, page: str) -> None:
        """An article's page, as article_page made it (with label_colours of the same labels)."""
        with atomic_writer(self.directory / page_name(article_id)) as handle:
            handle.write(page)

    def close(self, summaries) -> None:
        rows = []
        for summary in summaries:
            name = page_name(summary["article_id"])
            link = (f'<a href="{html.escape(name)}">{html.escape(summary["article_id"])}</a>'
                    if (self.directory / name).exists() else html.escape(summary["article_id"]))
            labels = "".join(f'<span style="background:{self.colours.get(label, COLOURS[-1])}">'
                             f'{html.escape(label)} {summary["sentences_per_label"][label]}</span>'
                             for label in summary["labels"])
            rows.append(f'<tr><td>{link}</td><td>{summary["sentences"]}</td><td class="tags">{labels}</td></tr>')
        body = (f"<h1>Tagged articles</h1><p class=\"legend\">{_legend(self.colours)}</p><table><tr><th>article</th>"
                f"<th>sentences</th><th>labels (sentences)</th></tr>{''.join(rows)}</table>")
        with atomic_writer(self.directory / "index.html") as handle:
            handle.write(_page("Tagged articles", body))
