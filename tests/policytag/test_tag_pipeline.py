"""`policytag tag` with worker processes (policytag.tagging.pipeline): rows built and encoded in the workers give
the bytes one process gives, pages included; resume, Ctrl-C and skipped inputs work as with one process; the
lines encoded directly are json.dumps's bytes; languages identified many texts at once are py3langid's one by
one."""

import json
import math

import numpy as np
import pytest

from policytag.articles import article_from_text
from policytag.cli import main
from policytag.segment import segment_article
from policytag.tagging.inputs import InputArticle
from policytag.tagging.lines import article_lines
from policytag.tagging.outputs import journal_path, summaries_path
from policytag.tagging.tagger import tag_article

FP32 = ("--precision", "fp32")


def tag(*args) -> int:
    return main(["tag", *map(str, args), "--no-progress"])


def outputs(out, pages=None) -> tuple:
    files = (out.read_bytes(), summaries_path(out).read_bytes())
    if pages:
        files += tuple((path.name, path.read_bytes()) for path in sorted(pages.iterdir()))
    return files


@pytest.fixture()
def records(tmp_path, sentences_file):
    """Articles of 1 to 5 corpus sentences, with carried fields and two lines that are skipped between them."""
    from policytag.records import read_sentences

    texts = [s.text for s in read_sentences(sentences_file)]
    lines = [json.dumps({"id": f"r{n}", "text": " ".join(texts[3 * n : 3 * n + 1 + n % 5]), "outlet": f"o{n % 3}",
                         "tags": ["x", n]}, ensure_ascii=False) for n in range(30)]
    lines[7:7] = ["{not json"]
    lines[20:20] = [json.dumps({"id": "r3", "text": "A second r3."})]
    path = tmp_path / "in" / "records.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_lines_are_the_bytes_of_json_dumps():
    article = article_from_text("é \"1\"", "Bộ TT&TT yêu cầu gỡ bỏ.\tTab \\ slash \u2028 line. Short.\n"
                                           "A \x00 control character, an emoji 🙂 and a quote \".", source="x")
    item = InputArticle(article, {"outlet": "Báo", "nested": {"n": [1, 2.5, None, True]}, "ratio": 1e-07})
    segmented = segment_article(article)
    labels = ["censorship_demand", "privacy", "thuế", "a\"b"]
    scores = np.array([[0.12345678, 1.0, 0.0, 1e-9], [math.nan, 0.5, 0.99995, 2e-5], [0.33333, 0.7, 0.1, 0.4]] * 3,
                      dtype=np.float32)[: len(segmented.sentences)]
    tagged = tag_article(item, segmented, scores, labels, np.array([0.5, 0.5, 0.9, 0.3]), "model-ß")
    lines = article_lines(tagged)
    assert len(segmented.sentences) >= 3 and lines.sentence_count == len(segmented.sentences)
    assert lines.sentence_lines == "".join(json.dumps(vars(s), ensure_ascii=False) + "\n" for s in tagged.sentences)
    assert lines.summary_line == json.dumps(vars(tagged.summary), ensure_ascii=False) + "\n"
    assert "NaN" in lines.sentence_lines and lines.page is None


def test_languages_of_many_texts_at_once_are_those_of_one_at_a_time(sentences_file):
    from policytag.language import VECTOR_TEXTS, detect, detect_language, detect_languages, detect_many
    from policytag.records import read_sentences

    sentences = [s.text for s in read_sentences(sentences_file)][::5]
    articles = [" ".join(sentences[n : n + 12]) for n in range(0, 240, 12)]
    odd = ["", "A", "ĐIỀU 5. QUY ĐỊNH CHUNG", "SHOUTING IN CAPITALS ABOUT TAXES", "x" * 3000, "🙂" * 40]
    texts = [text for group in zip(sentences, articles + odd) for text in group] + sentences[len(articles) + 6 :]
    one_by_one = [detect(text) for text in texts]
    for count in (1, VECTOR_TEXTS - 1, VECTOR_TEXTS, VECTOR_TEXTS + 1, len(texts)):  # Python only, then numpy too
        assert detect_many(texts[:count]) == one_by_one[:count]
    fallbacks = ["vi", "en"] * (len(texts) // 2) + ["en"] * (len(texts) % 2)
    assert detect_languages(texts, fallbacks) == [detect_language(t, f) for t, f in zip(texts, fallbacks)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_workers_give_the_bytes_of_one_process(tiny_classifier, raw_dir, records, tmp_path, monkeypatch, capsys, fmt):
    from policytag.tagging import segment_pool

    monkeypatch.setattr(segment_pool, "CHUNK_ARTICLES", 4)  # many tasks, skipped inputs between and inside them
    results = {}
    for workers in (1, 3):
        out, pages = tmp_path / f"w{workers}" / f"tagged.{fmt}", tmp_path / f"pages{workers}"
        args = [records, raw_dir, "--out", out, "--model", tiny_classifier, *FP32, "--segment-workers", workers]
        assert tag(*args, *(["--html", pages] if fmt == "jsonl" else [])) == 1
        err = capsys.readouterr().err
        results[workers] = outputs(out, pages if fmt == "jsonl" else None)
        assert "malformed JSON" in err and "'r3' is already taken" in err and "2 inputs skipped" in err
    assert results[1] == results[3]
    assert len(results[3][1].splitlines()) == 30 + 5  # the records and the seed articles


def interrupt_on_article(monkeypatch, number: int) -> None:
    """Ctrl-C while the number-th article of the run is written."""
    from policytag.tagging.outputs import TagWriter

    write, calls = TagWriter.write, []

    def interrupted_write(self, article):
        calls.append(article)
        if len(calls) == number:
            raise KeyboardInterrupt
        write(self, article)

    monkeypatch.setattr(TagWriter, "write", interrupted_write)


def test_workers_resume_and_ctrl_c(tiny_classifier, raw_dir, records, tmp_path, monkeypatch, capsys):
    model = ("--model", tiny_classifier, *FP32, "--segment-workers", 2)
    clean = tmp_path / "clean" / "t.jsonl"
    assert tag(records, raw_dir, "--out", clean, *model[:-2]) == 1  # one process
    out = tmp_path / "t.jsonl"
    assert tag(records, "--out", out, *model) == 1  # finished; then more inputs, stopped by Ctrl-C
    with monkeypatch.context() as patch:
        interrupt_on_article(patch, 3)
        capsys.readouterr()
        assert tag(records, raw_dir, "--out", out, *model) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("interrupted: 32 articles are done (2 in")
    assert journal_path(out).exists()
    assert tag(records, raw_dir, "--out", out, *model) == 1
    assert "32 articles already done" in capsys.readouterr().err
    assert outputs(out) == outputs(clean) and not journal_path(out).exists()
