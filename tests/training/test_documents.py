"""The sources file: one row per document, checked, with clear errors naming the file and the row."""

import csv

import pytest

from policytag.training.documents import COLUMNS, SourcesError, read_sources


def write(path, rows, header=COLUMNS):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


ROW = {"id": "a", "file": "a.txt", "title": "A", "publisher": "P", "url": "", "date": "", "language": "en",
       "licence": "CC BY 4.0", "register": "report", "retrieved_from": "", "translation_of": ""}


def test_translations_join_their_source_group(tmp_path):
    documents = read_sources(write(tmp_path / "s.csv", [ROW, {**ROW, "id": "vi-a", "register": "translation",
                                                                 "translation_of": "a", "language": "vi"}]))
    assert documents["a"].group == "a" and documents["vi-a"].group == "a" and documents["vi-a"].is_translation


def test_the_repository_sources_file_is_valid(repo):
    documents = read_sources(repo / "data" / "raw" / "sources.csv")
    for document in documents.values():
        assert (repo / "data" / "raw" / document.file).is_file(), f"{document.id}: {document.file} missing"


@pytest.mark.parametrize("change, message", [
    ({"register": "blog"}, "register 'blog' is not one of"),
    ({"licence": ""}, "no licence"),
    ({"register": "translation"}, "a translation needs translation_of"),
    ({"id": ""}, "empty id"),
])
def test_bad_rows_are_clear_errors(tmp_path, change, message):
    with pytest.raises(SourcesError, match=message) as error:
        read_sources(write(tmp_path / "s.csv", [{**ROW, **change}]))
    assert "s.csv:2" in str(error.value)


def test_missing_column_duplicate_id_and_dangling_translation(tmp_path):
    with pytest.raises(SourcesError, match="missing column"):
        read_sources(write(tmp_path / "a.csv", [ROW], header=COLUMNS[:-1]))
    with pytest.raises(SourcesError, match="appears twice"):
        read_sources(write(tmp_path / "b.csv", [ROW, ROW]))
    with pytest.raises(SourcesError, match="not an original document"):
        read_sources(write(tmp_path / "c.csv", [{**ROW, "id": "t", "register": "translation",
                                                  "translation_of": "gone"}]))
    with pytest.raises(SourcesError, match="not found"):
        read_sources(tmp_path / "none.csv")
