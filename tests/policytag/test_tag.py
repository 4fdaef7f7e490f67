"""`policytag tag` end to end on a tiny real classifier: inputs of every kind, outputs, resume, skips, pages."""

import csv
import json

import pyarrow.parquet as pq
import pytest

from policytag.cli import main
from policytag.tagging.pages import page_name
from policytag.tagging.outputs import summaries_path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tag(*args) -> int:
    return main(["tag", *map(str, args), "--no-progress"])


@pytest.fixture()
def inputs(tmp_path, raw_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "vi.txt").write_text("Bộ TT&TT yêu cầu Facebook gỡ bỏ nội dung xấu độc. Người dùng phải xác thực danh "
                                   "tính bằng số điện thoại.\n", encoding="utf-8")
    (folder / "page.html").write_text("<html><body><nav>Home</nav><p>TikTok must verify the age of children. "
                                      "The ministry <b>fined</b> it.</p></body></html>", encoding="utf-8")
    (folder / "records.jsonl").write_text(
        json.dumps({"id": "r1", "text": "Platforms must pay tax in Vietnam.", "outlet": "X"}) + "\n"
        + "{not json\n"
        + json.dumps({"id": "r2", "body": "no text field"}) + "\n"
        + json.dumps({"id": "r3", "text": "Copyright owners asked YouTube to take down pirated films."}) + "\n",
        encoding="utf-8")
    with (folder / "table.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "date"])
        writer.writerow(["c1", "Data of Vietnamese users must be stored in Vietnam.", "2021-01-01"])
    (folder / "empty.txt").write_text("", encoding="utf-8")
    return folder


def test_tag_everything(tiny_classifier, inputs, raw_dir, tmp_path):
    out = tmp_path / "out" / "tagged.jsonl"
    code = tag(raw_dir, inputs, inputs / "records.jsonl", inputs / "table.csv", "--out", out, "--model",
               tiny_classifier, "--html", tmp_path / "pages")
    assert code == 1  # inputs were skipped, so the run says so at the end
    sentences = read_jsonl(out)
    summaries = read_jsonl(summaries_path(out))
    articles = {s["article_id"] for s in summaries}
    assert {"r1", "r3", "c1", "vi", "page"} <= articles and len(articles) == 10
    assert len(sentences) == 107 + 2 + 1 + 1 + 1 + 2
    labels = json.loads((tiny_classifier / "thresholds.json").read_text())["labels"]
    assert all(set(row["scores"]) == set(labels) for row in sentences)
    r1 = next(s for s in sentences if s["article_id"] == "r1")
    assert r1["extra"] == {"outlet": "X"} and r1["lang"] == "en"
    assert next(s for s in sentences if s["article_id"] == "vi")["lang"] == "vi"
    assert next(s for s in sentences if s["article_id"] == "c1")["extra"] == {"date": "2021-01-01"}
    for summary in summaries:
        mine = [s for s in sentences if s["article_id"] == summary["article_id"]]
        assert summary["sentences"] == len(mine)
        assert summary["sentences_per_label"] == {l: sum(l in s["labels"] for s in mine) for l in labels}
    pages = sorted(p.name for p in (tmp_path / "pages").iterdir())
    assert "index.html" in pages and len(pages) == 11
    assert not list(out.parent.glob("*.partial"))


def test_labels_follow_thresholds(tiny_classifier, raw_dir, tmp_path):
    out = tmp_path / "tagged.jsonl"
    assert tag(raw_dir, "--out", out, "--model", tiny_classifier, "--precision", "fp32") == 0
    thresholds = json.loads((tiny_classifier / "thresholds.json").read_text())
    cut = dict(zip(thresholds["labels"], thresholds["thresholds"]))
    rows = read_jsonl(out)
    assert any(r["labels"] for r in rows) and any(not r["labels"] for r in rows)
    for row in rows:
        for label, score in row["scores"].items():
            if abs(score - cut[label]) > 1e-3:  # scores are written rounded to 4 places
                assert (label in row["labels"]) == (score >= cut[label])


def test_resume_skips_done_articles_and_keeps_them(tiny_classifier, raw_dir, inputs, tmp_path):
    out = tmp_path / "tagged.jsonl"
    assert tag(raw_dir, "--out", out, "--model", tiny_classifier) == 0
    first = read_jsonl(out)
    # an interrupted second run: journals hold two done articles and a half-written third
    journal = out.with_name(out.name + ".partial")
    summaries_journal = summaries_path(out).with_name(summaries_path(out).name + ".partial")
    summaries = read_jsonl(summaries_path(out))
    done = {s["article_id"] for s in summaries[:2]}
    kept = [s for s in first if s["article_id"] in done]
    half = [s for s in first if s["article_id"] == summaries[2]["article_id"]][:3]
    journal.write_text("".join(json.dumps(r) + "\n" for r in kept + half) + '{"cut', encoding="utf-8")
    summaries_journal.write_text("".join(json.dumps(s) + "\n" for s in summaries[:2]), encoding="utf-8")
    out.unlink()
    assert tag(raw_dir, "--out", out, "--model", tiny_classifier) == 0
    resumed = read_jsonl(out)
    key = lambda r: (r["article_id"], r["index"])
    assert sorted(map(key, resumed)) == sorted(map(key, first))
    # a finished run plus new inputs: only the new articles are tagged, the old ones are kept
    assert tag(raw_dir, inputs / "vi.txt", "--out", out, "--model", tiny_classifier) == 0
    again = read_jsonl(out)
    assert len(again) == len(first) + 2
    assert len(read_jsonl(summaries_path(out))) == 6


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_formats(tiny_classifier, raw_dir, tmp_path, fmt):
    out = tmp_path / f"tagged.{fmt}"
    assert tag(raw_dir, "--out", out, "--model", tiny_classifier) == 0
    if fmt == "csv":
        with out.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == 107
    assert {"id", "article_id", "text", "labels", "model_version"} <= set(rows[0])
    assert any(key.startswith("score_") for key in rows[0])
    assert tag(raw_dir, "--out", out, "--model", tiny_classifier) == 0  # resumes from the finished table
    assert len(pq.read_table(out) if fmt == "parquet" else list(csv.DictReader(out.open()))) == 107


def test_stdin_and_missing_model(tiny_classifier, tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Vietnam asked Facebook to remove posts. It refused.\n"))
    out = tmp_path / "stdin.jsonl"
    assert tag("-", "--out", out, "--model", tiny_classifier) == 0
    assert [r["text"] for r in read_jsonl(out)] == ["Vietnam asked Facebook to remove posts.", "It refused."]
    assert tag("-", "--out", tmp_path / "x.jsonl", "--model", tmp_path / "no-model") == 2
    assert "holds no classifier" in capsys.readouterr().err


def test_html_escapes_text(tiny_classifier, tmp_path):
    article = tmp_path / "xss.txt"
    article.write_text('<script>alert("x")</script> is what a post said. Officials & "platforms" met.\n',
                       encoding="utf-8")
    pages = tmp_path / "pages"
    assert tag(article, "--out", tmp_path / "t.jsonl", "--model", tiny_classifier, "--html", pages) == 0
    page = (pages / page_name("xss")).read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp;" in page


def test_segmenting_in_worker_processes_gives_the_same_output(tiny_classifier, inputs, raw_dir, tmp_path,
                                                               monkeypatch):
    from policytag.tagging import segment_pool

    monkeypatch.setattr(segment_pool, "CHUNK_ARTICLES", 3)  # several tasks, skipped inputs between them
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"workers-{workers}" / "tagged.jsonl"
        assert tag(raw_dir, inputs, "--out", out, "--model", tiny_classifier, "--segment-workers", workers) == 1
        outputs[workers] = (out.read_bytes(), summaries_path(out).read_bytes())
    assert outputs[1] == outputs[2] and len(read_jsonl(tmp_path / "workers-2" / "tagged.jsonl")) > 107


def test_a_summary_reaches_the_journal_only_after_its_sentences_are_synced(tiny_classifier, raw_dir, tmp_path,
                                                                          monkeypatch):
    from policytag.tagging import outputs as tag_outputs
    from policytag.fast_scorer import load_scorer
    from policytag.tagging.inputs import iter_inputs
    from policytag.tagging.tagger import tag_stream

    articles = list(tag_stream(iter_inputs([str(raw_dir)]), load_scorer(tiny_classifier, precision="fp32")))
    monkeypatch.setattr(tag_outputs, "SYNC_SECONDS", 3600)  # no sync due while the test runs
    out = tmp_path / "tagged.jsonl"
    writer = tag_outputs.TagWriter(out)
    writer.open()
    writer.write(articles[0])
    writer.write(articles[1])
    journal = out.with_name(out.name + ".partial")
    summaries_journal = summaries_path(out).with_name(summaries_path(out).name + ".partial")
    assert len(read_jsonl(journal)) == len(articles[0].sentences) + len(articles[1].sentences)
    assert summaries_journal.read_text(encoding="utf-8") == ""  # not synced yet: not done
    writer.sync()
    assert [row["article_id"] for row in read_jsonl(summaries_journal)] == [a.summary.article_id for a in articles[:2]]
    writer.write(articles[2])  # then the run dies: article 2 has sentences in the journal but no summary
    again = tag_outputs.TagWriter(out)
    assert set(again.open()) == {a.summary.article_id for a in articles[:2]}  # article 2 is done again on resume
    assert {row["article_id"] for row in read_jsonl(journal)} == {a.summary.article_id for a in articles[:2]}
    again.close()
