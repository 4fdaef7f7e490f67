"""Issue 15, the input side: what enters policytag is read whole and safe, or skipped by name and line; nothing
before or after a bad record is lost, and an id means one thing."""

import codecs
import io
import json

import pytest

from policytag.articles import read_article
from policytag.cli import main
from policytag.segment import segment_article
from policytag.tagging.inputs import InputArticle, SkippedInput, iter_inputs


def read(inputs, stdin=None):
    warnings = []
    items = list(iter_inputs([str(i) for i in inputs], stdin=stdin, warn=warnings.append))
    done = {item.article.id: item for item in items if isinstance(item, InputArticle)}
    skipped = [item for item in items if isinstance(item, SkippedInput)]
    return done, skipped, warnings


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def lines(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def test_a_lone_surrogate_is_replaced_and_reported(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(lines({"id": "a", "text": "Fine."}, '{"id": "b", "text": "Bad \\ud800 text.", "note": "x\\udfff"}',
                          {"id": "c", "text": "After it."}), encoding="utf-8")
    done, skipped, warnings = read([path])
    assert skipped == [] and list(done) == ["a", "b", "c"]
    assert done["b"].article.text == "Bad \ufffd text." and done["b"].extra == {"note": "x\ufffd"}
    assert len(warnings) == 2 and all(f"{path}:2" in w and "lone surrogate" in w for w in warnings)
    [sentence] = segment_article(done["b"].article).sentences  # its id can be made: it used to raise
    assert sentence.text == "Bad \ufffd text."


def test_an_undecodable_line_costs_that_line_only(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines({"id": "a", "text": "One."}, {"id": "b", "text": "Two."}).encode("utf-8")
                     + '{"id": "c", "text": "Café."}\n'.encode("latin-1")
                     + lines({"id": "d", "text": "Four."}).encode("utf-8"))
    done, skipped, _ = read([path])
    assert list(done) == ["a", "b", "d"]
    [bad] = skipped
    assert bad.source == f"{path}:3" and "not valid UTF-8 (byte 0xe9)" in bad.reason and "re-save" in bad.reason
    table = tmp_path / "in.csv"
    table.write_bytes(b"id,text\nx,Fine.\ny,Caf\xe9.\nz,Also fine.\n")
    done, skipped, _ = read([table])
    assert list(done) == ["x", "z"] and [s.source for s in skipped] == [f"{table}:3"]


def test_stdin_jsonl_after_blank_lines():
    stdin = io.StringIO("\n  \n" + lines({"id": "a", "text": "One."}, {"text": "No id."}))
    done, skipped, _ = read(["-"], stdin=stdin)
    assert skipped == [] and list(done) == ["a", "<stdin>:4"]


def test_ids_one_policy(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_text(lines({"id": 0, "text": "Zero is an id."}, {"id": 1, "text": "One."},
                          {"id": "1", "text": "Also one."}, {"text": "Without an id."},
                          {"id": "ids.jsonl:4", "text": "Takes a generated id."}, {"id": 2.5, "text": "Float."},
                          {"id": "", "text": "Blank id."}), encoding="utf-8")
    done, skipped, _ = read([path])
    assert list(done) == ["0", "1", "ids.jsonl:4", "ids.jsonl:7"]
    reasons = {s.source.rsplit(":", 1)[1]: s.reason for s in skipped}
    assert set(reasons) == {"3", "5", "6"}
    assert "article id '1' is already taken by" in reasons["3"] and 'and "1" are one id' in reasons["3"]
    assert "has the form FILE:LINE" in reasons["5"] and "give a string or an integer" in reasons["6"]


def test_nan_in_a_carried_field_is_written_as_null(tiny_classifier, tmp_path):
    path = tmp_path / "nan.jsonl"
    path.write_text('{"id": "a", "text": "Platforms must pay tax.", "score": NaN, "more": [Infinity, 1e999, 2]}\n',
                    encoding="utf-8")
    done, _, warnings = read([path])
    assert done["a"].extra == {"score": None, "more": [None, None, 2]} and len(warnings) == 3
    out = tmp_path / "out" / "tagged.jsonl"
    assert main(["tag", str(path), "--out", str(out), "--model", str(tiny_classifier), "--precision", "fp32",
                 "--no-progress"]) == 0
    for written in out.parent.glob("*.jsonl"):
        rows = [strict_json(line) for line in written.read_text(encoding="utf-8").splitlines()]
        assert rows and all(row["extra"]["score"] is None for row in rows)


def test_a_lone_surrogate_does_not_stop_tagging(tiny_classifier, tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_text(lines({"id": "a", "text": "Fine text here."}, '{"id": "b", "text": "Bad \\ud800 text."}'),
                    encoding="utf-8")
    out = tmp_path / "tagged.jsonl"
    assert main(["tag", str(path), "--out", str(out), "--model", str(tiny_classifier), "--precision", "fp32",
                 "--no-progress"]) == 0
    assert [strict_json(line)["article_id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["a", "b"]
    assert f"{path}:2: 1 lone surrogate(s)" in capsys.readouterr().err


def test_invisible_text_is_empty(tmp_path):
    (tmp_path / "blank.txt").write_text("\u00a0\u200b\n\u2060\ufeff \u3164\n", encoding="utf-8")
    (tmp_path / "mixed.txt").write_text("A real sentence.\n\u200b\u200b\nAnother one.\n", encoding="utf-8")
    records = tmp_path / "r.jsonl"
    records.write_text(lines({"id": "z", "text": "\u200b\u00a0"}), encoding="utf-8")
    done, skipped, _ = read([tmp_path / "blank.txt", tmp_path / "mixed.txt", records])
    assert list(done) == ["mixed"]
    assert sorted(s.source for s in skipped) == [str(tmp_path / "blank.txt"), f"{records}:1"]
    assert all("empty article" in s.reason for s in skipped)
    sentences = segment_article(done["mixed"].article).sentences
    assert [s.text for s in sentences] == ["A real sentence.", "Another one."]


TEXT = "Bộ Thông tin yêu cầu gỡ bỏ nội dung. The ministry asked Facebook to verify users.\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom(tmp_path, codec):
    path = tmp_path / "a.txt"
    path.write_bytes(TEXT.encode(codec))
    assert read_article(path).text == TEXT
    records = tmp_path / "r.jsonl"
    records.write_bytes(lines({"id": "r", "text": TEXT}).encode(codec))
    done, skipped, _ = read([records])
    assert skipped == [] and done["r"].article.text == TEXT


def test_utf16_jsonl_with_bom(tmp_path):
    records = tmp_path / "r.jsonl"
    records.write_bytes(codecs.BOM_UTF16_LE + lines({"id": "r", "text": TEXT}).encode("utf-16-le"))
    done, skipped, _ = read([records])
    assert skipped == [] and done["r"].article.text == TEXT


def test_html_title_is_kept(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Ministry fines TikTok | News</title></head><body><p>The ministry fined "
                    "it.</p></body></html>", encoding="utf-8")
    with_h1 = tmp_path / "h1.html"
    with_h1.write_text("<html><head><title>Ministry fines TikTok | News</title></head><body><h1>Ministry fines "
                       "TikTok</h1><p>The ministry fined it.</p></body></html>", encoding="utf-8")
    done, _, _ = read([page, with_h1])
    assert done["page"].article.text == "Ministry fines TikTok | News\n\nThe ministry fined it.\n"
    assert done["h1"].article.text == "Ministry fines TikTok\n\nThe ministry fined it.\n"  # no second headline
    assert done["page"].extra == done["h1"].extra == {"title": "Ministry fines TikTok | News"}


def test_segment_reads_records_as_tag_does(tmp_path):
    records = tmp_path / "r.jsonl"
    records.write_text(lines({"id": "r1", "text": "First record. It has two sentences."},
                             {"id": "r2", "text": "Second record."}), encoding="utf-8")
    table = tmp_path / "t.csv"
    table.write_text("key,body\nc1,A table row.\n", encoding="utf-8")
    out = tmp_path / "sentences.jsonl"
    assert main(["segment", str(records), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["article_id"], r["text"]) for r in rows] == [
        ("r1", "First record."), ("r1", "It has two sentences."), ("r2", "Second record.")]
    assert main(["segment", str(table), "--out", str(out), "--id-column", "key", "--text-column", "body"]) == 0
    assert [json.loads(line)["article_id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["c1"]


def _damage(directory, name):
    path = directory / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_damaged_model_file_is_named(tiny_classifier, tmp_path, capsys, name, precision):
    import shutil

    model = tmp_path / "classifier"
    shutil.copytree(tiny_classifier, model)
    _damage(model, name)
    article = tmp_path / "a.txt"
    article.write_text("Vietnam asked Facebook to remove posts.\n", encoding="utf-8")
    code = main(["tag", str(article), "--out", str(tmp_path / "t.jsonl"), "--model", str(model), "--precision",
                 precision, "--no-progress"])
    error = capsys.readouterr().err
    assert code == 2
    assert f"{model / name} is damaged or truncated" in error and "Traceback" not in error
    assert "install onnxruntime" not in error
