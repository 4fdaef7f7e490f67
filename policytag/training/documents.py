"""The sources file (data/raw/sources.csv): one row per document of the corpus, and what the splits need from it.

Every document under data/raw has a row: its id (the article id the segment stage gives it, the slug of the file
name), file, title, publisher, url, date, language, licence, register and where the copy was taken from. A
translation (register `translation`) names the document it translates in `translation_of`; it belongs to that
document's group, so that no split or fold has a document on one side and its translation on the other.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("id", "file", "title", "publisher", "url", "date", "language", "licence", "register", "retrieved_from",
           "translation_of")
REGISTERS = ("news", "report", "statute", "encyclopedia", "translation")
TRANSLATION = "translation"


class SourcesError(ValueError):
    """A sources file that cannot be used; the message names the file, the row and the fix."""


@dataclass(frozen=True)
class Document:
    id: str
    file: str
    title: str
    publisher: str
    url: str
    date: str
    language: str
    licence: str
    register: str
    retrieved_from: str
    translation_of: str = ""

    @property
    def is_translation(self) -> bool:
        return self.register == TRANSLATION

    @property
    def group(self) -> str:
        """The document group that splits keep together: a translation goes with the document it translates."""
        return self.translation_of or self.id


def read_sources(path: str | Path) -> dict[str, Document]:
    """Document id -> Document, checked: known columns and registers, unique ids, translations that point to a
    document of the file, every document with a licence."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or ())]
            if missing:
                raise SourcesError(f"{path}: missing column(s) {', '.join(missing)}; the header must name "
                                   f"{', '.join(COLUMNS)}")
            rows = list(reader)
    except FileNotFoundError:
        raise SourcesError(f"{path} not found: every corpus needs a sources file with one row per document "
                           f"({', '.join(COLUMNS)})") from None
    except UnicodeDecodeError:
        raise SourcesError(f"{path}: not valid UTF-8; re-save it as UTF-8") from None
    documents: dict[str, Document] = {}
    for number, row in enumerate(rows, 2):
        values = {column: (row.get(column) or "").strip() for column in COLUMNS}
        where = f"{path}:{number} ({values['id'] or 'no id'})"
        if not values["id"]:
            raise SourcesError(f"{where}: empty id; give the document's article id (its file name's slug)")
        if values["id"] in documents:
            raise SourcesError(f"{where}: id {values['id']!r} appears twice; keep one row per document")
        if values["register"] not in REGISTERS:
            raise SourcesError(f"{where}: register {values['register']!r} is not one of {', '.join(REGISTERS)}")
        if not values["licence"]:
            raise SourcesError(f"{where}: no licence; record the licence (only openly licensed or public-domain "
                               "text belongs in the corpus)")
        if (values["register"] == TRANSLATION) != bool(values["translation_of"]):
            raise SourcesError(f"{where}: a translation needs translation_of (the id of the document it "
                               "translates), and only a translation has one")
        documents[values["id"]] = Document(**values)
    for document in documents.values():
        source = documents.get(document.translation_of) if document.translation_of else None
        if document.translation_of and (source is None or source.is_translation):
            raise SourcesError(f"{path}: {document.id} translates {document.translation_of!r}, which is not an "
                               "original document of the file")
    return documents
