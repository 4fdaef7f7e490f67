"""Main text of an HTML page: one line per block, page chrome (navigation, headers, footers, forms) dropped.

The page's headline is its <h1>; a page without one is headed by its <title>, so that no page loses its headline.
The <title> is also returned on its own, for the article's `title`."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag

DROPPED_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "aside", "form", "iframe", "svg",
                "button", "select", "head", "menu", "dialog")
BLOCK_TAGS = {"p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul",
              "ol", "blockquote", "figure", "figcaption", "table", "tr", "td", "th", "pre", "dd", "dt", "dl", "br",
              "hr", "title", "address"}


def html_to_text(html: str) -> str:
    return html_document(html)[1]


def html_document(html: str) -> tuple[str, str]:
    """(title, text): the page's <title> (white space collapsed; empty if none) and its main text."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = next((tag for tag in soup.find_all("title") if tag.find_parent("svg") is None), None)
    page_title = re.sub(r"\s+", " ", title_tag.get_text(" ")).strip() if title_tag is not None else ""
    for tag in soup.find_all(DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo", "complementary"]}):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    title = soup.find("h1")
    blocks: list[str] = []
    if title is not None and root.find("h1") is None:
        blocks.append(title.get_text(" ", strip=True))
    elif title is None and page_title:
        blocks.append(page_title)
    current: list[str] = []

    def flush() -> None:
        line = re.sub(r"\s+", " ", "".join(current)).strip()
        if line:
            blocks.append(line)
        current.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # skip comments, CDATA, doctype
                    current.append(str(child))
            elif isinstance(child, Tag):
                is_block = child.name in BLOCK_TAGS
                if is_block:
                    flush()
                if child.name == "li":
                    current.append("• ")
                walk(child)
                if is_block:
                    flush()

    walk(root)
    flush()
    return page_title, "\n\n".join(blocks) + "\n"
