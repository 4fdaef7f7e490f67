"""`policytag tag --engine ray` on a local Ray instance (2 CPUs) gives what the local engine gives: same sentences,
labels, scores and summaries, the same resume and the same report of skipped inputs."""

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from policytag.cli import main
from policytag.tagging.inputs import SkippedInput
from policytag.tagging.outputs import summaries_path
from policytag.tagging.ray_engine import RayAddressError, connect, pool_shape, rounds

# Ray Data's own DataContext reads its deprecated settings when it is created; nothing here uses them.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:.*(shuffle_strategy|use_polars_sort|arrow_fixed_shape_tensor_format).*:DeprecationWarning")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tag(*args) -> int:
    return main(["tag", *map(str, args), "--no-progress"])


def assert_close(mine, theirs, path="row", atol=1e-5):
    """Equal, except that numbers may differ by `atol` (scores computed in other batches, on other processes)."""
    if isinstance(theirs, dict):
        assert isinstance(mine, dict) and list(mine) == list(theirs), path
        for key in theirs:
            assert_close(mine[key], theirs[key], f"{path}.{key}", atol)
    elif isinstance(theirs, list):
        assert isinstance(mine, list) and len(mine) == len(theirs), path
        for index, (a, b) in enumerate(zip(mine, theirs)):
            assert_close(a, b, f"{path}[{index}]", atol)
    elif isinstance(theirs, float):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=atol, err_msg=path)
    else:
        assert mine == theirs, path


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    """One local Ray instance for the module (starting one takes seconds); run_tag_ray uses it as it finds it.
    The int8 export goes to a cache of the module's own, not the user's ~/.cache (workers inherit it)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLICYTAG_CACHE_DIR", str(tmp_path_factory.mktemp("onnx-cache")))
        patch.delenv("RAY_ADDRESS", raising=False)
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        yield ray
        ray.shutdown()


@pytest.fixture()
def records(tmp_path):
    path = tmp_path / "in" / "records.jsonl"
    path.parent.mkdir()
    path.write_text(
        json.dumps({"id": "r1", "text": "Platforms must pay tax in Vietnam. They must also store data locally.",
                    "outlet": "X"}) + "\n"
        + "{not json\n"
        + json.dumps({"id": "r2", "text": "Copyright owners asked YouTube to take down pirated films.",
                      "outlet": "Y", "date": "2021-01-01"}) + "\n",
        encoding="utf-8")
    return path


@pytest.mark.slow
def test_ray_engine_matches_local_engine(ray_session, tiny_classifier, raw_dir, records, tmp_path, capsys,
                                         monkeypatch):
    from policytag.tagging import ray_engine as tag_ray

    # fp32 (the torch path) here; the int8 path is compared with the local engine's int8 at the end
    model = ("--model", tiny_classifier, "--precision", "fp32")
    local = tmp_path / "local" / "tagged.jsonl"
    assert tag(raw_dir, records, "--out", local, *model) == 1  # the malformed line
    expected_sentences, expected_summaries = read_jsonl(local), read_jsonl(summaries_path(local))

    # Part of the job done before (here by the local engine): the Ray run keeps it and does the rest.
    out = tmp_path / "ray" / "tagged.jsonl"
    assert tag(records, "--out", out, *model) == 1
    capsys.readouterr()
    scored_rounds = []
    score_texts = tag_ray.score_texts
    monkeypatch.setattr(tag_ray, "score_texts", lambda ray, texts, *a, **k: scored_rounds.append(len(texts))
                        or score_texts(ray, texts, *a, **k))
    window = (len(expected_sentences) - 3) // 2 + 1  # the 3 sentences of r1 and r2 are done: two rounds
    code = tag(raw_dir, records, "--out", out, *model, "--engine", "ray", "--actors", 2, "--ray-window", window,
               "--html", tmp_path / "pages")
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Ray, 2 actors of 1 CPUs" in err and "2 articles already done; 1 inputs skipped" in err
    assert "records.jsonl:2: malformed JSON" in err
    assert len(scored_rounds) == 2 and sum(scored_rounds) == len(expected_sentences) - 3

    sentences, summaries = read_jsonl(out), read_jsonl(summaries_path(out))
    done_first = ["r1", "r2"]
    order = done_first + [s["article_id"] for s in expected_summaries if s["article_id"] not in done_first]
    assert [s["article_id"] for s in summaries] == order
    for article_id in order:
        assert_close(next(s for s in summaries if s["article_id"] == article_id),
                     next(s for s in expected_summaries if s["article_id"] == article_id), article_id)
        assert_close([s for s in sentences if s["article_id"] == article_id],
                     [s for s in expected_sentences if s["article_id"] == article_id], article_id)
    assert next(s for s in sentences if s["article_id"] == "r2")["extra"] == {"outlet": "Y", "date": "2021-01-01"}
    assert any(s["labels"] for s in sentences) and any(not s["labels"] for s in sentences)
    pages = {p.name for p in (tmp_path / "pages").iterdir()}
    assert "index.html" in pages and len(pages) == len(order) - len(done_first) + 1
    assert not list(out.parent.glob("*.partial"))

    # Everything done: a second Ray run scores nothing and changes nothing.
    before = out.read_bytes()
    scored_rounds.clear()
    assert tag(raw_dir, "--out", out, *model, "--engine", "ray") == 0
    assert scored_rounds == [] and out.read_bytes() == before

    # An edited article (same id, another text) is tagged again, and its old rows are replaced, not kept beside.
    edited = tmp_path / "in" / "edited.jsonl"
    edited.write_text(json.dumps({"id": "r2", "text": "Regulators asked TikTok to verify the age of children.",
                                  "outlet": "Y", "date": "2021-01-01"}) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert tag(edited, "--out", out, *model, "--engine", "ray") == 0
    assert "tagged 1 sentences of 1 articles" in capsys.readouterr().err
    rows = read_jsonl(out)
    assert [r["text"] for r in rows if r["article_id"] == "r2"] == [
        "Regulators asked TikTok to verify the age of children."]
    assert len(rows) == len(sentences) and len(read_jsonl(summaries_path(out))) == len(order)

    # The default precision on a CPU (int8, ONNX Runtime) in one actor of both CPUs: what the local engine's int8
    # gives. Its scores do not depend on batching (test_fast_scorer), so they match to the 4 decimals written; how
    # close int8 is to fp32 depends on the CPU's integer kernels and is bounded in test_fast_scorer.
    int8 = tmp_path / "int8" / "tagged.jsonl"
    assert tag(records, "--out", int8, "--model", tiny_classifier, "--engine", "ray", "--actors", 1) == 1
    assert "1 actors of 2 CPUs" in capsys.readouterr().err
    if importlib.util.find_spec("onnxruntime"):  # else load_scorer says so and scores with fp32
        assert list(Path(os.environ["POLICYTAG_CACHE_DIR"]).glob("onnx/*/model.int8.onnx"))  # exported by the actor
    local_int8 = tmp_path / "local-int8" / "tagged.jsonl"
    assert tag(records, "--out", local_int8, "--model", tiny_classifier) == 1
    expected = read_jsonl(local_int8)
    assert [s["id"] for s in expected] == [s["id"] for s in expected_sentences if s["article_id"] in done_first]
    assert_close(read_jsonl(int8), expected, "int8", atol=2e-4)


@pytest.mark.slow
def test_ray_engine_missing_model(ray_session, records, tmp_path, capsys):
    code = tag(records, "--out", tmp_path / "t.jsonl", "--model", tmp_path / "nowhere", "--engine", "ray")
    assert code == 2
    assert "nowhere holds no classifier" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_pool_shape():
    assert pool_shape({"CPU": 2.0}, None) == (1, 2, 0)
    assert pool_shape({"CPU": 2.0}, 2) == (2, 1, 0)
    assert pool_shape({"CPU": 64.0}, None) == (16, 4, 0)
    assert pool_shape({"CPU": 64.0}, 2) == (2, 4, 0)  # never more CPUs per actor than a node is likely to have
    assert pool_shape({"CPU": 96.0, "GPU": 8.0}, None) == (8, 1, 1)


def test_rounds_keep_order_and_cut_after_enough_sentences():
    class Segmented:
        def __init__(self, n):
            self.sentences = [None] * n

    skip = SkippedInput("x", "bad")
    entries = [("a", Segmented(3)), skip, ("b", Segmented(2)), ("c", Segmented(0)), ("d", Segmented(6)),
               ("e", Segmented(1))]
    windows = list(rounds(entries, 5))
    assert [[e if e is skip else e[0] for e in w] for w in windows] == [["a", skip, "b"], ["c", "d"], ["e"]]
    assert list(rounds([], 5)) == []


def test_ray_client_addresses_are_refused_with_what_to_do(monkeypatch):
    class NoSession:  # connect() must refuse before it starts anything
        @staticmethod
        def is_initialized():
            return False

    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    with pytest.raises(RayAddressError, match="ray job submit"):
        connect(NoSession)
