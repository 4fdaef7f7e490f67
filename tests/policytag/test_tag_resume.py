"""`policytag tag` loses nothing and means one thing (issue 15): each output has its own summaries, resume goes by
article id and content hash, pages never overwrite each other, nothing partial is published, and a run killed at
random points and resumed ends byte for byte where an uninterrupted run does, in every output format."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from policytag.cli import main
from policytag.fast_scorer import CACHE_ENV
from policytag.tagging.pages import page_name
from policytag.tagging.outputs import journal_path, summaries_path

REPO = Path(__file__).resolve().parents[2]
FP32 = ("--precision", "fp32")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tag(*args) -> int:
    return main(["tag", *map(str, args), "--no-progress"])


def write_records(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture()
def in123(tmp_path):
    return write_records(tmp_path / "in" / "in123.jsonl", [
        {"id": "n1", "text": "Vietnam asked Facebook to remove posts. It refused."},
        {"id": "n2", "text": "Platforms must pay tax in Vietnam."},
        {"id": "n3", "text": "Data of Vietnamese users must be stored in Vietnam. The law starts in 2023."}])


@pytest.fixture(scope="module")
def many(sentences_file, raw_dir, tmp_path_factory) -> list[str]:
    """A few dozen small articles (3 corpus sentences each, one malformed line between them) and the five seed
    articles (about 20 sentences each): the inputs of the kill-and-resume runs."""
    from policytag.records import read_sentences

    texts = [s.text for s in read_sentences(sentences_file)]
    records = [{"id": f"a{n:02d}", "text": " ".join(texts[3 * n : 3 * n + 3]), "outlet": f"o{n % 4}"}
               for n in range(36)]
    path = write_records(tmp_path_factory.mktemp("many") / "records.jsonl", records)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    return [str(path), str(raw_dir)]


# -- 1. each output has its own summaries file -------------------------------------------------------------------

def test_summaries_are_named_from_the_whole_output_name(tiny_classifier, in123, tmp_path):
    assert summaries_path(Path("tagged.jsonl")).name == "tagged.articles.jsonl"
    assert summaries_path(Path("news.jan.jsonl")) != summaries_path(Path("news.all.jsonl"))
    assert summaries_path(Path("t.csv")) != summaries_path(Path("t.parquet"))
    outputs = [tmp_path / "news.all.jsonl", tmp_path / "news.jan.jsonl", tmp_path / "t.csv", tmp_path / "t.parquet"]
    for out in outputs:
        assert tag(in123, "--out", out, "--model", tiny_classifier, *FP32) == 0
    assert len({summaries_path(out) for out in outputs}) == 4
    for out in outputs:
        assert [s["article_id"] for s in read_jsonl(summaries_path(out))] == ["n1", "n2", "n3"]
    assert len(read_jsonl(tmp_path / "news.jan.jsonl")) == 5


# -- 2. resume by article id and content hash ---------------------------------------------------------------------

def test_changed_standard_input_is_tagged_again_and_replaces_the_old_rows(tiny_classifier, tmp_path, monkeypatch,
                                                                         capsys):
    import io

    out = tmp_path / "t.jsonl"
    monkeypatch.setattr("sys.stdin", io.StringIO("Vietnam asked Facebook to remove posts. It refused.\n"))
    assert tag("-", "--out", out, "--model", tiny_classifier, *FP32) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("Platforms must pay tax in Vietnam.\n"))
    capsys.readouterr()
    assert tag("-", "--out", out, "--model", tiny_classifier, *FP32) == 0
    err = capsys.readouterr().err
    assert "tagged 1 sentences of 1 articles" in err and "1 changed articles tagged again" in err
    assert [r["text"] for r in read_jsonl(out)] == ["Platforms must pay tax in Vietnam."]
    assert [s["sentences"] for s in read_jsonl(summaries_path(out))] == [1]
    before = out.read_bytes()
    monkeypatch.setattr("sys.stdin", io.StringIO("Platforms must pay tax in Vietnam.\n"))
    assert tag("-", "--out", out, "--model", tiny_classifier, *FP32) == 0
    assert "tagged 0 sentences" in capsys.readouterr().err and out.read_bytes() == before


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_an_edited_file_is_tagged_again_and_the_rest_kept(tiny_classifier, tmp_path, fmt):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.txt").write_text("Vietnam asked Facebook to remove posts. It refused.\n", encoding="utf-8")
    (folder / "y.txt").write_text("Platforms must pay tax in Vietnam.\n", encoding="utf-8")
    out = tmp_path / f"t.{fmt}"
    assert tag(folder, "--out", out, "--model", tiny_classifier, *FP32) == 0
    (folder / "y.txt").write_text("Copyright owners asked YouTube to take down films. The court agreed.\n",
                                  encoding="utf-8")
    assert tag(folder, "--out", out, "--model", tiny_classifier, *FP32) == 0
    clean = tmp_path / "clean" / f"t.{fmt}"
    assert tag(folder / "x.txt", folder / "y.txt", "--out", clean, "--model", tiny_classifier, *FP32) == 0
    # the same rows as a fresh run of the edited folder, none twice; y's new version after x
    assert out.read_bytes() == clean.read_bytes()
    assert summaries_path(out).read_bytes() == summaries_path(clean).read_bytes()


# -- 4. pages never overwrite each other ---------------------------------------------------------------------------

def test_pages_have_unique_stable_names_and_the_index_links_each_article(tiny_classifier, tmp_path):
    ids = ["Bà", "ba", "BA!", "index"]
    records = write_records(tmp_path / "ids.jsonl", [{"id": i, "text": f"Article {n} asked Facebook to remove posts."}
                                                     for n, i in enumerate(ids)])
    pages = tmp_path / "pages"
    assert tag(records, "--out", tmp_path / "t.jsonl", "--model", tiny_classifier, "--html", pages, *FP32) == 0
    assert len({page_name(i) for i in ids} | {"index.html"}) == 5
    assert sorted(p.name for p in pages.iterdir()) == sorted([page_name(i) for i in ids] + ["index.html"])
    assert page_name("Bà") == page_name("Bà") and page_name("Bà").startswith("ba-")
    index = (pages / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', index)
    assert len(links) == 4
    for href, text in links:
        assert f"<h1>{text}</h1>" in (pages / href).read_text(encoding="utf-8")
    assert "<h1>Tagged articles</h1>" in index


# -- 6. outputs checked first; nothing partial is published ---------------------------------------------------------

@pytest.mark.parametrize("case, message", [
    ("out-folder", "is a folder"), ("html-file", "is a file"), ("summaries-name", "are for the article summaries"),
    ("out-is-input", "would overwrite the input"), ("orphan-summaries", "exists without t.jsonl"),
    ("out-without-summaries", "exists without its summaries")])
def test_bad_outputs_are_refused_before_any_work(in123, tmp_path, capsys, case, message):
    out, extra = tmp_path / "t.jsonl", []
    if case == "out-folder":
        out.mkdir()
    elif case == "html-file":
        (tmp_path / "pages").write_text("x")
        extra = ["--html", tmp_path / "pages"]
    elif case == "summaries-name":
        out = tmp_path / "r.articles.jsonl"
    elif case == "out-is-input":
        out = in123
    elif case == "orphan-summaries":  # another output's (or t.jsonl was removed): it would be replaced
        summaries_path(out).write_text("{}\n")
    else:  # a table of another tool's, or an output whose summaries were removed: it would be replaced
        out = tmp_path / "t.csv"
        out.write_text("id,text\n")
    # the model does not exist: the check comes first, before the model is loaded or any input read
    assert tag(in123, "--out", out, "--model", tmp_path / "no-model", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "holds no classifier" not in err and len(err.strip().splitlines()) == 1


def interrupt_on_article(monkeypatch, number: int, error: BaseException):
    from policytag.tagging import outputs as tag_outputs

    write, calls = tag_outputs.TagWriter.write, []

    def failing_write(self, article):
        calls.append(article)
        if len(calls) == number:
            raise error
        write(self, article)

    monkeypatch.setattr(tag_outputs.TagWriter, "write", failing_write)


def test_ctrl_c_and_errors_keep_the_journals_and_never_publish(tiny_classifier, in123, raw_dir, tmp_path,
                                                                monkeypatch, capsys):
    model = ("--model", tiny_classifier, *FP32)
    clean = tmp_path / "clean" / "t.csv"
    assert tag(in123, raw_dir, "--out", clean, *model) == 0
    out = tmp_path / "t.csv"
    assert tag(in123, "--out", out, *model) == 0  # a finished output, then a run with more inputs is stopped
    finished = out.read_bytes(), summaries_path(out).read_bytes()
    with monkeypatch.context() as patch:
        interrupt_on_article(patch, 3, KeyboardInterrupt())
        capsys.readouterr()
        assert tag(in123, raw_dir, "--out", out, *model) == 130
    err = capsys.readouterr().err.strip().splitlines()  # (the model loader's own bar may come first)
    assert err[-1].startswith("interrupted: 5 articles are done (2 in this run)") and "Traceback" not in str(err)
    assert (out.read_bytes(), summaries_path(out).read_bytes()) == finished  # not replaced by the partial result
    assert len(read_jsonl(journal_path(summaries_path(out)))) == 5
    with monkeypatch.context() as patch:
        interrupt_on_article(patch, 2, RuntimeError("a bug"))
        with pytest.raises(RuntimeError, match="a bug"):
            tag(in123, raw_dir, "--out", out, *model)
    assert (out.read_bytes(), summaries_path(out).read_bytes()) == finished
    assert len(read_jsonl(journal_path(summaries_path(out)))) == 6
    capsys.readouterr()
    assert tag(in123, raw_dir, "--out", out, *model) == 0
    assert "6 articles already done" in capsys.readouterr().err
    assert (out.read_bytes(), summaries_path(out).read_bytes()) == (clean.read_bytes(),
                                                                      summaries_path(clean).read_bytes())
    assert not list(tmp_path.glob("*.partial"))


def test_a_kill_while_publishing_loses_nothing(tiny_classifier, in123, raw_dir, tmp_path, monkeypatch):
    """Publishing is: write OUT, write the summaries, remove the summaries journal, remove the sentence journal.
    A crash before any of these steps leaves a state from which the next run publishes the same bytes."""
    import os
    from pathlib import Path as P

    from policytag.tagging import outputs as tag_outputs

    model = ("--model", tiny_classifier, *FP32)
    clean = tmp_path / "clean" / "t.parquet"
    assert tag(in123, raw_dir, "--out", clean, *model) == 0
    expected = clean.read_bytes(), summaries_path(clean).read_bytes()

    class Crash(BaseException):
        pass

    for step in range(4):
        out = tmp_path / f"step{step}" / "t.parquet"
        done, publishing = [], []
        replace, unlink, close = os.replace, P.unlink, tag_outputs.TagWriter.close

        def counted(operation):
            def run(*args, **kwargs):
                if not publishing:
                    return operation(*args, **kwargs)
                if len(done) == step:
                    raise Crash()
                done.append(operation)
                return operation(*args, **kwargs)
            return run

        def publish(self):
            publishing.append(True)
            close(self)

        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", counted(replace))
            patch.setattr(P, "unlink", counted(unlink))
            patch.setattr(tag_outputs.TagWriter, "close", publish)
            with pytest.raises(Crash):
                tag(in123, raw_dir, "--out", out, *model)
        assert tag(in123, raw_dir, "--out", out, *model) == 0, step
        assert (out.read_bytes(), summaries_path(out).read_bytes()) == expected, step


# -- kill and resume: byte-identical to a clean run ---------------------------------------------------------------

RUNNER = """
import sys
from policytag import fast_scorer
from policytag.tagging import outputs as tag_outputs
tag_outputs.SYNC_SECONDS = 0  # every article synced as it is written: a kill can land between any two
fast_scorer.CALL_SENTENCES = 8  # many small scoring calls, so that there is time to land in
from policytag.cli import main
from policytag.fast_scorer import CACHE_ENV
sys.exit(main(sys.argv[1:]))
"""
KILLS = 5


def tag_command(inputs, out: Path, model, precision: str, pages: Path) -> list[str]:
    return [sys.executable, "-c", RUNNER, "tag", *inputs, "--out", str(out), "--model", str(model), "--precision",
            precision, "--html", str(pages), "--no-progress"]


def published(out: Path, pages: Path) -> dict[str, bytes]:
    files = {"out": out.read_bytes(), "summaries": summaries_path(out).read_bytes()}
    files.update({page.name: page.read_bytes() for page in pages.glob("*.html")})
    return files


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return -1


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory, tiny_classifier) -> Path:
    """The int8 export of the tiny classifier, made once for this module, not in the user's cache, and made before
    any timed run: a clean run that exported would be slower than the runs it times the kills by."""
    from policytag.fast_scorer import load_scorer

    cache = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(cache))
        load_scorer(tiny_classifier, precision="int8")
    return cache


@pytest.mark.slow
@pytest.mark.parametrize("fmt, precision", [("jsonl", "auto"), ("csv", "auto"), ("parquet", "auto"),
                                            ("jsonl", "fp32")])  # auto: int8 on a CPU, the default
def test_killed_and_resumed_runs_end_byte_identical_to_a_clean_run(tiny_classifier, many, tmp_path, fmt,
                                                                   precision, onnx_cache):
    env = {**os.environ, CACHE_ENV: str(onnx_cache)}
    env_cwd = {"cwd": REPO, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "env": env}
    clean_out, clean_pages = tmp_path / "clean" / f"tagged.{fmt}", tmp_path / "clean-pages"
    started = time.monotonic()
    clean = subprocess.run(tag_command(many, clean_out, tiny_classifier, precision, clean_pages), timeout=600,
                           **env_cwd)
    clean_seconds = time.monotonic() - started
    assert clean.returncode == 1, clean.stderr.decode()  # the malformed line is reported
    articles = len(read_jsonl(summaries_path(clean_out)))
    assert articles == 41

    rng = random.Random(f"kill-{fmt}-{precision}")
    out, pages = tmp_path / "resumed" / f"tagged.{fmt}", tmp_path / "resumed-pages"
    summaries_journal = journal_path(summaries_path(out))
    mid_run = 0
    for _ in range(KILLS):
        # kill once the journal holds a random number of articles more than now, or at a random instant late in
        # what a clean run takes (tagging the last articles, publishing); the process goes on while this one
        # polls, so the kill lands anywhere after that point
        target = max(lines(summaries_journal), 0) + rng.randint(0, articles // (2 * KILLS))
        delay = rng.uniform(0.5, 1.0) * clean_seconds if rng.random() < 0.3 else None
        process = subprocess.Popen(tag_command(many, out, tiny_classifier, precision, pages), **env_cwd)
        started = time.monotonic()
        while process.poll() is None and time.monotonic() - started < 300:
            if delay is not None and time.monotonic() - started >= delay:
                break
            if delay is None and lines(summaries_journal) >= target:
                break
            time.sleep(0.005)
        if process.poll() is None:
            mid_run += 1
        process.kill()
        process.wait(timeout=60)
    final = subprocess.run(tag_command(many, out, tiny_classifier, precision, pages), timeout=600, **env_cwd)
    assert final.returncode == clean.returncode, final.stderr.decode()
    assert mid_run >= 3  # most kills land while a run is going on (the others after it ended)
    assert published(out, pages) == published(clean_out, clean_pages)
    assert visible_files(out.parent) == sorted([out.name, summaries_path(out).name])
    assert visible_files(pages) == visible_files(clean_pages)


@pytest.mark.slow
def test_sigint_ends_with_one_line_and_exit_130_and_the_run_resumes(tiny_classifier, many, tmp_path):
    out, pages = tmp_path / "tagged.jsonl", tmp_path / "pages"
    # SIGINT as a terminal delivers it: a test runner started in the background by a non-interactive shell has
    # SIGINT ignored, the run would inherit that and Python would then never raise KeyboardInterrupt
    process = subprocess.Popen(tag_command(many, out, tiny_classifier, "fp32", pages), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = time.monotonic()
    while lines(journal_path(summaries_path(out))) < 5 and process.poll() is None and time.monotonic() - started < 300:
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted: ")
    assert not out.exists() and journal_path(out).exists()
    done = len(read_jsonl(journal_path(summaries_path(out))))
    assert done >= 5
    resumed = subprocess.run(tag_command(many, out, tiny_classifier, "fp32", pages), cwd=REPO,
                             capture_output=True, timeout=600)
    assert resumed.returncode == 1 and f"{done} articles already done" in resumed.stderr.decode()
    assert len(read_jsonl(summaries_path(out))) == 41
