"""The baselines (tfidf, zero-shot), their shared threshold tuning, and the crossval stage, on the corpus sentences
labelled by a keyword rule (conftest.KEYWORD_RULE)."""

import json

import numpy as np
import pytest
from datasets import load_from_disk
from sklearn.metrics import f1_score

from policytag.labels import LABEL_NAMES
from policytag.records import read_jsonl
from policytag.training import baseline, crossval
from policytag.training.baseline import (
    BaselineError,
    TfidfPredictor,
    ZeroShotPredictor,
    fit_tfidf,
    fit_zeroshot,
    load_predictor,
)
from policytag.training.data import split_arrays
from policytag.training.thresholds import apply_thresholds, best_threshold, threshold_grid, tune_thresholds


@pytest.fixture(scope="module")
def keyword_dataset(keyword_dataset_dir):
    return load_from_disk(str(keyword_dataset_dir))


@pytest.fixture(scope="module")
def tfidf(keyword_dataset):
    return fit_tfidf(keyword_dataset["train"], keyword_dataset["validation"], {"seed": 13})


# --- thresholds ---------------------------------------------------------------------------------------------------


def test_threshold_is_the_middle_of_the_best_plateau():
    gold = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.7, 0.3, 0.1])
    # every threshold in (0.3, 0.7] separates perfectly: 0.31 ... 0.70 (40 values), the middle one is 0.51
    assert best_threshold(gold, scores) == pytest.approx(0.51)
    assert best_threshold(gold, scores, grid=np.array([0.2, 0.5, 0.6, 0.8])) == pytest.approx(0.6)


def test_threshold_falls_back_without_positives_and_trades_precision_for_recall():
    assert best_threshold(np.zeros(4), np.array([0.9, 0.1, 0.2, 0.3])) == 0.5
    assert best_threshold(np.zeros(4), np.array([0.9, 0.1, 0.2, 0.3]), fallback=0.8) == 0.8
    # one positive below one negative: predicting both (F1 2/3) beats predicting neither (0)
    gold, scores = np.array([0, 1, 0]), np.array([0.8, 0.6, 0.2])
    assert 0.2 < best_threshold(gold, scores) <= 0.6


def test_tune_thresholds_per_column_and_apply():
    gold = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    scores = np.array([[0.9, 0.2], [0.8, 0.4], [0.1, 0.3], [0.2, 0.45]])
    thresholds = tune_thresholds(gold, scores)
    assert thresholds.shape == (2,) and thresholds.dtype == np.float32
    assert apply_thresholds(scores, thresholds).tolist() == gold.astype(bool).tolist()
    per_row = np.array([[0.5, 0.5], [0.95, 0.5], [0.5, 0.5], [0.5, 0.1]])
    assert apply_thresholds(scores, per_row).tolist() == [[True, False], [False, False], [False, False],
                                                          [False, True]]
    assert threshold_grid(0.25).tolist() == [0.25, 0.5, 0.75]
    with pytest.raises(ValueError):
        tune_thresholds(gold, scores[:, :1])


# --- tfidf --------------------------------------------------------------------------------------------------------


def test_tfidf_learns_the_keyword_labels(keyword_dataset, tfidf):
    texts, gold = split_arrays(keyword_dataset["test"])
    assert gold[:, :].sum(axis=0).min() >= 1, "every label has a held-out positive"
    predicted = apply_thresholds(tfidf.predict_proba(texts), tfidf.thresholds)
    macro = f1_score(gold, predicted, average="macro", zero_division=0)
    # chance: predicting each label at its base rate scores about the base rate (< 0.35 for every label here); the
    # test documents were never seen, and three labels have one or two positives there, so one miss costs 0.1+
    assert macro > 0.55, macro
    assert f1_score(gold, predicted, average="micro") > 0.75
    assert tfidf.labels == LABEL_NAMES and tfidf.thresholds.shape == (len(LABEL_NAMES),)
    assert tfidf.predict(["Facebook users read TikTok."])[0][:2] == ["censorship_demand", "privacy"]


def test_tfidf_save_load_round_trip_without_pickle(keyword_dataset, tfidf, tmp_path):
    texts = list(keyword_dataset["test"]["text"]) + ["Chính phủ yêu cầu Facebook gỡ bỏ nội dung", ""]
    directory = tfidf.save(tmp_path / "tfidf")
    assert {p.name for p in directory.iterdir()} == {"config.json", "vocabulary.json", "weights.safetensors",
                                                     "thresholds.json", "README.md"}
    loaded = load_predictor(directory)
    assert isinstance(loaded, TfidfPredictor)
    np.testing.assert_array_equal(loaded.predict_proba(texts), tfidf.predict_proba(texts))
    np.testing.assert_array_equal(loaded.thresholds, tfidf.thresholds)
    thresholds = json.loads((directory / "thresholds.json").read_text())
    assert thresholds["labels"] == list(LABEL_NAMES) and len(thresholds["thresholds"]) == len(LABEL_NAMES)
    card = (directory / "README.md").read_text()
    assert "char_wb" in card and "| privacy |" in card


def test_tfidf_is_deterministic_and_handles_a_label_without_positives(keyword_dataset):
    train = keyword_dataset["train"]
    texts = keyword_dataset["test"]["text"]
    again = fit_tfidf(train, keyword_dataset["validation"], {"seed": 13})
    first = fit_tfidf(train, keyword_dataset["validation"], {"seed": 13})
    np.testing.assert_array_equal(first.predict_proba(texts), again.predict_proba(texts))
    no_tax = train.map(lambda row: {"labels": row["labels"][:4] + [0.0] + row["labels"][5:]})
    model = fit_tfidf(no_tax, keyword_dataset["validation"], {})
    assert model.predict_proba(texts)[:, 4].max() < 1e-3


def test_unknown_setting_and_missing_model_are_clear_errors(keyword_dataset, tmp_path):
    with pytest.raises(BaselineError, match="unknown setting.*ngram_rang"):
        fit_tfidf(keyword_dataset["train"], keyword_dataset["validation"], {"ngram_rang": [1, 2]})
    with pytest.raises(BaselineError, match="dvc repro baseline"):
        load_predictor(tmp_path / "nothing")


# --- zero-shot ----------------------------------------------------------------------------------------------------


def test_zeroshot_end_to_end_on_a_tiny_backbone(keyword_dataset, tiny_backbone, tmp_path):
    predictor = fit_zeroshot(keyword_dataset["train"], keyword_dataset["validation"], {"batch_size": 8},
                             backbone_dir=tiny_backbone)
    texts = keyword_dataset["test"]["text"]
    scores = predictor.predict_proba(texts)
    assert scores.shape == (len(texts), len(LABEL_NAMES)) and ((scores > 0) & (scores < 1)).all()
    similarities = predictor.similarities(texts)
    assert (np.abs(similarities) <= 1 + 1e-5).all()
    # the ranking is the cosine's: the score is a monotone function of it, label by label
    for k in range(len(LABEL_NAMES)):
        assert (np.argsort(similarities[:, k], kind="stable") == np.argsort(scores[:, k], kind="stable")).all()
    directory = predictor.save(tmp_path / "zeroshot")
    assert {p.name for p in directory.iterdir()} == {"config.json", "label_embeddings.safetensors",
                                                     "thresholds.json", "README.md"}
    loaded = load_predictor(directory)
    assert isinstance(loaded, ZeroShotPredictor)
    np.testing.assert_allclose(loaded.predict_proba(texts), scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.thresholds, predictor.thresholds)
    config = json.loads((directory / "config.json").read_text())
    assert config["descriptions"]["taxation"].startswith("Taxes")


def test_bf16_embeddings_are_float32_and_close_to_the_float32_ones(keyword_dataset, tiny_backbone):
    from policytag.training.encoder import Encoder

    texts = list(keyword_dataset["train"]["text"])[:20]
    fp32 = Encoder(tiny_backbone, mixed_precision="fp32").encode(texts, "query: ")
    bf16 = Encoder(tiny_backbone, mixed_precision="bf16").encode(texts, "query: ")
    assert bf16.dtype == np.float32 and not np.array_equal(fp32, bf16)
    assert (fp32 * bf16).sum(axis=1).min() > 0.999  # unit vectors: cosine


def test_embed_stage_vectors_replace_the_encoder_pass_of_later_stages(keyword_dataset, keyword_dataset_dir,
                                                                        tiny_backbone, tmp_path, monkeypatch, capsys):
    """`embed` encodes every dataset sentence once; with use_embeddings an Encoder of the same backbone and settings
    returns those vectors without running the model; other settings, or a sentence it lacks, still run it; the
    baseline stage's zero-shot model is the same with --embeddings as without."""
    from policytag.training import embed, encoder

    monkeypatch.setattr(encoder, "_PRECOMPUTED", {})
    params = tmp_path / "params.yaml"
    params.write_text("baseline:\n  zeroshot:\n    batch_size: 16\n    mixed_precision: fp32\n")
    out = tmp_path / "embeddings"
    assert embed.main(["--dataset", str(keyword_dataset_dir), "--params", str(params), "--backbone",
                       str(tiny_backbone), "--out", str(out)]) == 0
    texts = embed.dataset_texts(keyword_dataset)
    assert encoder.use_embeddings(out) == len(texts) == len(set(texts))

    fresh = encoder.Encoder(tiny_backbone, batch_size=16, mixed_precision="fp32")
    computed = fresh.encode(texts[:30], "query: ")
    reused = encoder.Encoder(tiny_backbone, batch_size=16, mixed_precision="fp32")
    calls = []
    real_forward = reused.model.forward
    reused.model.forward = lambda *a, **k: calls.append(1) or real_forward(*a, **k)
    np.testing.assert_allclose(reused.encode(texts[:30], "query: "), computed, atol=1e-5)
    assert not calls, "every vector came from the embed stage"
    reused.encode(["A sentence the dataset does not have."], "query: ")
    assert calls, "a sentence it lacks is encoded"
    other = encoder.Encoder(tiny_backbone, max_length=16, batch_size=16, mixed_precision="fp32")
    assert other.precomputed("query: ") == {}, "other settings do not take these vectors"

    models = {}
    for name, extra in (("plain", []), ("reused", ["--embeddings", str(out)])):
        encoder.load_encoder.cache_clear()
        assert baseline.main(["--dataset", str(keyword_dataset_dir), "--params", str(params), "--backbone",
                              str(tiny_backbone), "--out", str(tmp_path / name), *extra]) == 0
        models[name] = load_predictor(tmp_path / name / "zeroshot")
    np.testing.assert_allclose(models["plain"].center, models["reused"].center, atol=1e-5)
    np.testing.assert_array_equal(models["plain"].thresholds, models["reused"].thresholds)

    (out / "embeddings.json").write_text("{}")
    with pytest.raises(encoder.EncoderError, match="dvc repro embed"):
        encoder.use_embeddings(out)


def test_zeroshot_needs_a_backbone(keyword_dataset, tmp_path):
    with pytest.raises(BaselineError, match="no backbone checkpoint"):
        fit_zeroshot(keyword_dataset["train"], keyword_dataset["validation"], {}, backbone_dir=tmp_path)


def test_baseline_stage_writes_both_models(keyword_dataset_dir, tiny_backbone, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("baseline:\n  models: [tfidf, zeroshot]\n  tfidf:\n    C: 10.0\n"
                      "  zeroshot:\n    batch_size: 16\n")
    out = tmp_path / "models" / "baseline"
    assert baseline.main(["--dataset", str(keyword_dataset_dir), "--params", str(params),
                          "--backbone", str(tiny_backbone), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"tfidf", "zeroshot"}
    assert not [p for p in out.parent.iterdir() if p.name != "baseline"], "no temporary directory left behind"
    assert load_predictor(out / "zeroshot").settings["backbone"] == str(tiny_backbone)
    assert baseline.main(["--dataset", str(tmp_path / "none"), "--params", str(params), "--out", str(out)]) == 1
    assert "dvc repro dataset" in capsys.readouterr().err
    assert (out / "tfidf" / "weights.safetensors").is_file(), "a failed run leaves the previous models"


# --- crossval -----------------------------------------------------------------------------------------------------


def test_crossval_scores_every_sentence_exactly_once(keyword_dataset, keyword_dataset_dir, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("crossval:\n  models: [tfidf, {name: tfidf_c1, kind: tfidf, params: {C: 1.0}}]\n"
                      "  folds: 4\n  seed: 13\n")
    out = tmp_path / "crossval"
    assert crossval.main(["--dataset", str(keyword_dataset_dir), "--params", str(params), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"tfidf.jsonl", "tfidf.params.json", "tfidf_c1.jsonl",
                                               "tfidf_c1.params.json"}
    everything = crossval.crossval_rows(keyword_dataset)
    gold = dict(zip(everything["id"], everything["labels"]))
    records = list(read_jsonl(out / "tfidf.jsonl"))
    assert [r["id"] for r in records] == list(everything["id"])  # every sentence once, in dataset order
    assert not set(keyword_dataset["test"]["id"]) & {r["id"] for r in records}, "test documents stay out"
    assert {r["fold"] for r in records} == {0, 1, 2, 3}
    group = dict(zip(everything["id"], everything["group"]))
    folds_of_group = {}
    for r in records:
        folds_of_group.setdefault(group[r["id"]], set()).add(r["fold"])
    assert all(len(folds) == 1 for folds in folds_of_group.values()), "no document in two folds"
    for r in records:
        assert list(r["probabilities"]) == list(LABEL_NAMES) == list(r["thresholds"])
        assert r["labels"] == [name for name, v in zip(LABEL_NAMES, gold[r["id"]]) if v]
        assert all(0 <= p <= 1 for p in r["probabilities"].values())
    sizes = np.bincount([r["fold"] for r in records])
    assert sizes.max() - sizes.min() <= 12  # whole documents (runs of 8 sentences here) per fold
    # out-of-fold predictions still learn the rule, above chance (< 0.35) though every fold trains on about 60
    # sentences of other documents, and thresholds come from the other folds
    scores = np.array([list(r["probabilities"].values()) for r in records])
    thresholds = np.array([list(r["thresholds"].values()) for r in records])
    truth = np.array([[name in r["labels"] for name in LABEL_NAMES] for r in records])
    assert f1_score(truth, apply_thresholds(scores, thresholds), average="macro") > 0.45
    variant = json.loads((out / "tfidf_c1.params.json").read_text())
    assert variant["kind"] == "tfidf" and variant["params"]["C"] == 1.0 and variant["folds"] == 4


def test_crossval_rejects_an_unknown_kind(keyword_dataset_dir, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("crossval:\n  models: [tfidf, svm]\n")
    assert crossval.main(["--dataset", str(keyword_dataset_dir), "--params", str(params),
                          "--out", str(tmp_path / "cv")]) == 1
    assert "unknown kind 'svm'" in capsys.readouterr().err and not (tmp_path / "cv").exists()


def test_crossval_of_the_transformer_uses_training_fit(keyword_dataset, tiny_backbone):
    """Two folds, one epoch on the tiny backbone: the transformer path runs end to end through policytag.training.fit.fit."""
    pytest.importorskip("policytag.training.train")
    rows = crossval.crossval_rows(keyword_dataset)
    records = crossval.cross_validate(rows, "transformer", folds=2, seed=13, params={"epochs": 1, "batch_size": 32},
                                      backbone_dir=tiny_backbone)
    assert len(records) == len(rows)
    assert {r["fold"] for r in records} == {0, 1}
    assert all(list(r["probabilities"]) == list(LABEL_NAMES) for r in records)
