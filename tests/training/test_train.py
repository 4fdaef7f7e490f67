"""The train stage on the real code path: a tiny random BERT backbone (tests/tiny_backbone.py) and a dataset built
by the dataset stage's own code from the corpus sentences, labelled by a keyword rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModel, AutoTokenizer

from policytag.labels import LABEL_NAMES, LABELS
from policytag.model import THRESHOLDS_FILE, Classifier, save_classifier, tokenize
from policytag.records import read_sentences
from pseudo_documents import pseudo_document
from policytag.training.dataset import build_dataset, dataset_row, save_dataset
from policytag.training.thresholds import tune_thresholds
from policytag.training.fit import fit, positive_weights
from policytag.training.head_init import initial_model
from policytag.training.metrics import macro_f1
from policytag.training.params import TrainParams
from policytag.training.train import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEYWORDS = {
    "censorship_demand": ("censor", "block", "remov", "illegal", "toxic"),
    "privacy": ("identif", "data", "privacy", "personal", "account"),
    "child_safety": ("child", "minor", "young"),
    "intellectual_property": ("copyright", "intellectual", "pira", "fake"),
    "taxation": ("tax", "revenue"),
    "sovereignty": ("sovereign", "secur", "national", "foreign"),
}
SENTENCES = 160  # enough for every label to occur; few enough for seconds per fit
# A tiny random encoder learns quickly only with large steps and trainable embeddings.
FAST = {"epochs": 5, "batch_size": 16, "encoder_lr": 5e-3, "head_lr": 5e-2, "freeze_embeddings": False,
        "patience": 10, "seed": 13}


def keyword_labels(text: str) -> list[str]:
    lowered = text.lower()
    return [name for name in LABEL_NAMES if any(word in lowered for word in KEYWORDS[name])]


@pytest.fixture(scope="module")
def dataset(sentences_file):
    rows = []
    for sentence in read_sentences(sentences_file)[:SENTENCES]:
        rows.append(dataset_row(sentence.id, sentence.article_id, sentence.text, sentence.lang,
                                keyword_labels(sentence.text), group=pseudo_document(sentence)))
    return build_dataset(rows, validation=0.2, test=0.2, seed=13)


@pytest.fixture(scope="module")
def trained(dataset, tiny_backbone):
    lines = []
    model, thresholds, history = fit(dataset["train"], dataset["validation"], FAST, tiny_backbone,
                                     device="cpu", log=lines.append)
    return model, thresholds, history, lines


def in_memory(model, backbone, thresholds) -> Classifier:
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    return Classifier(model, tokenizer, list(LABEL_NAMES), np.asarray(thresholds), "test", torch.device("cpu"))


def test_training_reduces_the_loss_and_reports_each_epoch(trained):
    _, _, history, lines = trained
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert len(losses) == FAST["epochs"]
    assert losses[-1] < 0.8 * losses[0], losses
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == FAST["epochs"] and "train loss" in epoch_lines[0] and "val macro-F1" in epoch_lines[0]
    assert 1 <= history["best_epoch"] <= FAST["epochs"]


def test_thresholds_are_tuned_per_label_on_validation(trained, dataset, tiny_backbone):
    model, thresholds, history, _ = trained
    assert thresholds.shape == (len(LABEL_NAMES),)
    validation = dataset["validation"]
    gold = np.asarray(validation["labels"])
    scores = in_memory(model, tiny_backbone, thresholds).predict_proba(validation["text"])
    np.testing.assert_array_equal(thresholds, tune_thresholds(gold, scores, TrainParams().threshold_step))
    for k, name in enumerate(LABEL_NAMES):
        if gold[:, k].sum() == 0:
            assert thresholds[k] == 0.5, f"{name} has no validation positive: fallback threshold"
    assert set(history["validation"]["tuned"]["labels"]) == set(LABEL_NAMES)


def test_saved_classifier_applies_its_thresholds_and_scores_as_in_memory(trained, dataset, tiny_backbone, tmp_path):
    model, thresholds, _, _ = trained
    texts = dataset["test"]["text"]
    expected = in_memory(model, tiny_backbone, thresholds).predict_proba(texts)
    directory = save_classifier(tmp_path / "classifier", model, AutoTokenizer.from_pretrained(str(tiny_backbone)),
                                thresholds)
    loaded = Classifier.load(directory, device="cpu")
    scores = loaded.predict_proba(texts, batch_size=4)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(loaded.thresholds, thresholds, atol=1e-6)
    decided = loaded.predict(texts)
    assert decided == [[name for k, name in enumerate(LABEL_NAMES) if row[k] >= thresholds[k]] for row in scores]


def test_fit_is_deterministic(trained, dataset, tiny_backbone):
    model, thresholds, history, _ = trained
    again, thresholds_again, history_again = fit(dataset["train"], dataset["validation"], FAST, tiny_backbone,
                                                 device="cpu", log=None)
    assert history_again == history
    np.testing.assert_array_equal(thresholds_again, thresholds)
    first, second = model.state_dict(), again.state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_early_stopping_stops(dataset, tiny_backbone):
    frozen = {**FAST, "encoder_lr": 0.0, "head_lr": 0.0, "epochs": 10, "patience": 2}  # nothing can improve
    _, _, history = fit(dataset["train"], dataset["validation"], {**frozen, "early_stopping": True}, tiny_backbone,
                        device="cpu", log=None)
    assert history["stopped_early"]
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3] and history["best_epoch"] == 1
    _, _, history = fit(dataset["train"], dataset["validation"], frozen, tiny_backbone, device="cpu", log=None)
    assert not history["stopped_early"] and len(history["epochs"]) == 10, "off by default: every epoch runs"


def test_description_head_starts_from_the_label_descriptions(dataset, tiny_backbone):
    texts = dataset["train"]["text"]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    models = {init: initial_model(tiny_backbone, TrainParams.from_dict({**FAST, "head_init": init}), texts, tokenizer)
              for init in ("descriptions", "random")}
    batch = tokenize(tokenizer, texts[:16])
    with torch.no_grad():
        logits = {init: m.eval()(**batch).logits for init, m in models.items()}
        descriptions = models["descriptions"].embed(**tokenize(tokenizer, [label.description for label in LABELS]))
    assert not torch.allclose(logits["descriptions"], logits["random"], atol=1e-3)
    for init, values in logits.items():
        assert torch.sigmoid(values).mean() < 0.3, f"{init}: initial probabilities should be low"
    rows = models["descriptions"].head.weight
    cosine = torch.nn.functional.cosine_similarity(rows, descriptions, dim=-1)
    assert torch.all(cosine > 0.999), cosine


def test_train_stage_writes_a_reproducible_classifier_directory(dataset, tiny_backbone, tmp_path):
    save_dataset(dataset, tmp_path / "dataset")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {**FAST, "epochs": 2}}))
    out, metrics = tmp_path / "models" / "classifier", tmp_path / "metrics" / "train.json"
    argv = ["--params", str(tmp_path / "params.yaml"), "--dataset", str(tmp_path / "dataset"),
            "--backbone", str(tiny_backbone), "--out", str(out), "--metrics", str(metrics)]
    assert main(argv) == 0
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", THRESHOLDS_FILE, "training_params.json",
            "history.json", "metrics.json", "README.md"} <= files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pkl", ".pickle"))]
    first = {name: (out / name).read_bytes() for name in files}

    card = (out / "README.md").read_text()
    for label in LABELS:
        assert f"| {label.name} |" in card and label.description in card
    training = json.loads((out / "training_params.json").read_text())
    assert training["params"]["epochs"] == 2 and training["labels"] == list(LABEL_NAMES)
    assert len(training["dataset"]["version"]) == 64 and training["dataset"]["version"][:16] in card
    assert json.loads((out / THRESHOLDS_FILE).read_text())["labels"] == list(LABEL_NAMES)
    assert json.loads(metrics.read_text()) == json.loads((out / "metrics.json").read_text())
    classifier = Classifier.load(out, device="cpu")
    assert classifier.labels == list(LABEL_NAMES) and classifier.model_version == training["model_version"]

    assert main(argv) == 0, "a second run replaces the directory"
    assert {name: (out / name).read_bytes() for name in first} == first, "same inputs and seed, same bytes"
    assert sorted(p.name for p in out.parent.iterdir()) == ["classifier"], "no temporary directory left behind"


def test_thresholds_come_from_the_recipes_out_of_fold_scores(dataset, tiny_backbone, tmp_path, capsys):
    """crossval of the train recipe, then train --crossval: the thresholds are the out-of-fold ones, their spread is
    recorded, the int8 export gets its own; a crossval run of another recipe is refused."""
    from policytag.training import crossval
    from policytag.training.out_of_fold import read_out_of_fold
    from policytag.training.thresholds import out_of_fold_thresholds

    save_dataset(dataset, tmp_path / "dataset")
    recipe = {**FAST, "epochs": 2, "int8_calibration_sentences": 40}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": recipe, "crossval": {"models": ["transformer"], "folds": 3}}))
    common = ["--params", str(params), "--dataset", str(tmp_path / "dataset"), "--backbone", str(tiny_backbone)]
    assert crossval.main([*common, "--out", str(tmp_path / "crossval")]) == 0
    out = tmp_path / "classifier"
    assert main([*common, "--crossval", str(tmp_path / "crossval"), "--out", str(out)]) == 0
    predictions = read_out_of_fold(tmp_path / "crossval" / "transformer.jsonl")
    gold, scores, folds = predictions.gold, predictions.scores, predictions.folds
    expected, _ = out_of_fold_thresholds(gold, scores, folds, TrainParams().threshold_step)
    stored = json.loads((out / THRESHOLDS_FILE).read_text())
    np.testing.assert_allclose(stored["thresholds"], expected, atol=1e-6)
    assert len(stored["int8_thresholds"]) == len(LABEL_NAMES)
    history = json.loads((out / "history.json").read_text())
    assert "out-of-fold" in history["thresholds_from"]
    assert set(history["threshold_stability"]) == set(LABEL_NAMES)
    assert len(history["threshold_stability"]["censorship_demand"]["fold_thresholds"]) == 3
    assert "out-of-fold scores" in (out / "README.md").read_text()

    params.write_text(yaml.safe_dump({"train": {**recipe, "epochs": 3}}))
    assert main([*common, "--crossval", str(tmp_path / "crossval"), "--out", str(out)]) == 1
    assert "epochs: crossval 2, train 3" in capsys.readouterr().err


def test_train_stage_errors_are_clear(tmp_path, tiny_backbone, capsys):
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 1\n")
    assert main(["--params", str(tmp_path / "params.yaml"), "--dataset", str(tmp_path / "nothing"),
                 "--backbone", str(tmp_path / "no-backbone"), "--out", str(tmp_path / "out")]) == 1
    assert "no-backbone" in capsys.readouterr().err
    assert main(["--params", str(tmp_path / "params.yaml"), "--dataset", str(tmp_path / "nothing"),
                 "--backbone", str(tiny_backbone), "--out", str(tmp_path / "out")]) == 1
    assert "dvc repro dataset" in capsys.readouterr().err
    (tmp_path / "params.yaml").write_text("train:\n  epoch: 1\n")
    assert main(["--params", str(tmp_path / "params.yaml")]) == 1
    assert "unknown train parameter(s) epoch" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_positive_weights_and_macro_f1():
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]] + [[0, 0, 0]] * 36, dtype=np.float32)
    np.testing.assert_allclose(positive_weights(labels, cap=10.0), [10.0, 1.0, 10.0])
    np.testing.assert_allclose(positive_weights(labels, cap=100.0), [39.0, 1.0, 37.0 / 3])
    gold = np.array([[1, 0, 0], [0, 0, 1]])
    # the label with no positive is left out
    assert macro_f1(gold, np.array([[1, 1, 0], [0, 0, 0]]), present_only=True) == 0.5
    with pytest.raises(ValueError, match="unknown train parameter"):
        TrainParams.from_dict({"lr": 1e-3})


def test_top_layers_on_cached_states_equal_the_full_forward(tiny_backbone, sentences_file):
    from policytag.model import SentenceTagger, tokenize
    from policytag.records import read_sentences
    from policytag.training.frozen_layers import FrozenStates, freeze_bottom, top_logits

    texts = [s.text for s in read_sentences(sentences_file)][:24]
    model = SentenceTagger.from_backbone(tiny_backbone).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    frozen = freeze_bottom(model, trainable_layers=1)
    assert frozen == 1
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert all(p.requires_grad for p in model.encoder.encoder.layer[1].parameters())
    states = FrozenStates(model, tokenizer, texts, frozen, max_length=128)
    rows = [3, 0, 17, 9]
    with torch.no_grad():
        cached = top_logits(model, *states.batch(rows), frozen)
        batch = tokenize(tokenizer, [texts[i] for i in rows], 128, model.config.input_prefix)
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(cached, full, atol=1e-5)


def test_fit_with_frozen_bottom_learns(dataset, tiny_backbone):
    model, thresholds, history = fit(dataset["train"], dataset["validation"],
                                     {"epochs": 6, "trainable_layers": 1, "head_lr": 5.0e-3, "patience": 6},
                                     tiny_backbone, log=None)
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert losses[-1] < losses[0]
    assert not model.encoder.encoder.layer[0].attention.self.query.weight.requires_grad


def test_scores_through_the_cache_equal_the_whole_model(tiny_backbone, sentences_file):
    """The crossval folds and fit's validation score through the shared cache of the frozen layers' output: the
    same scores, in input order, as the classifier running every layer."""
    from policytag.model import SentenceTagger
    from policytag.training.crossval import CachedTopScorer
    from policytag.training.frozen_layers import FrozenStates, cached_scores, freeze_bottom, frozen_count
    from policytag.training.params import TrainParams

    texts = [s.text for s in read_sentences(sentences_file)][:30]
    model = SentenceTagger.from_backbone(tiny_backbone).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    frozen = freeze_bottom(model, trainable_layers=1)
    assert frozen_count(model, 1) == frozen and frozen_count(model, 0) == 0
    whole = Classifier(model, tokenizer, list(LABEL_NAMES), np.full(len(LABEL_NAMES), 0.5, np.float32), "test",
                       "cpu").predict_proba(texts)
    cache: dict = {}
    states = FrozenStates(model, tokenizer, texts, frozen, max_length=128, cache=cache)
    assert np.allclose(cached_scores(model, states, frozen, batch_size=7), whole, atol=1e-5)
    scorer = CachedTopScorer(model, tokenizer, TrainParams.from_dict({"trainable_layers": 1,
                                                                      "mixed_precision": "fp32"}), cache)
    reordered = texts[::-1]
    assert np.allclose(scorer.predict_proba(reordered), whole[::-1], atol=1e-5)
    assert len(cache) == len(set(texts))  # every sentence ran through the frozen layers once


def test_a_bf16_bottom_pass_is_cached_apart_and_scores_close_to_float32(tiny_backbone, sentences_file):
    """The bf16 pass (train.mixed_precision) keeps its own cache entries, in float32, and its scores stay within
    bf16's rounding of the float32 ones."""
    from policytag.model import SentenceTagger
    from policytag.training.frozen_layers import FrozenStates, cached_scores, freeze_bottom

    texts = [s.text for s in read_sentences(sentences_file)][:30]
    model = SentenceTagger.from_backbone(tiny_backbone).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    frozen = freeze_bottom(model, trainable_layers=1)
    cache: dict = {}
    fp32 = FrozenStates(model, tokenizer, texts, frozen, max_length=128, cache=cache)
    bf16 = FrozenStates(model, tokenizer, texts, frozen, max_length=128, cache=cache, mixed_precision="bf16")
    assert len(cache) == 2 * len(set(texts))
    assert all(state.dtype == torch.float32 for state in bf16.states)
    assert not all(torch.equal(a, b) for a, b in zip(fp32.states, bf16.states))
    assert np.allclose(cached_scores(model, bf16, frozen, 8), cached_scores(model, fp32, frozen, 8), atol=0.02)


def test_mixed_precision_modes_resolve_and_a_bf16_fit_records_it(dataset, tiny_backbone):
    from policytag.training import precision

    cpu = torch.device("cpu")
    assert precision.resolve("fp32", cpu) == "fp32" and precision.resolve("bf16", cpu) == "bf16"
    assert precision.resolve("auto", cpu) == ("bf16" if precision.native_bf16(cpu) else "fp32")
    with pytest.raises(ValueError, match="mixed_precision must be one of auto, bf16, fp32"):
        precision.resolve("fp16", cpu)
    with pytest.raises(ValueError, match="train.mixed_precision must be one of"):
        TrainParams.from_dict({"mixed_precision": "half"})
    model, _, history = fit(dataset["train"], dataset["validation"],
                            {"epochs": 4, "trainable_layers": 1, "head_lr": 5.0e-3, "mixed_precision": "bf16"},
                            tiny_backbone, log=None)
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert history["mixed_precision"] == "bf16"
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights float32


def test_fold_average_classifier_is_the_mean_of_the_crossval_fold_models(dataset, tiny_backbone, tmp_path, capsys):
    """crossval keeps each fold model's trained weights; `final_model: fold_average` makes the classifier their
    element-wise mean (frozen weights stay the backbone's), with the out-of-fold thresholds and metrics; without
    --crossval, or with no fold models, the error says what to do."""
    from safetensors.torch import load_file

    from policytag.training import crossval
    from policytag.training.fold_average import FOLD_FILE

    save_dataset(dataset, tmp_path / "dataset")
    recipe = {**FAST, "epochs": 2, "int8_calibration_sentences": 40, "final_model": "fold_average",
              "trainable_layers": 1, "int8_float_layers": 1}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": recipe, "crossval": {"models": ["transformer"], "folds": 3}}))
    common = ["--params", str(params), "--dataset", str(tmp_path / "dataset"), "--backbone", str(tiny_backbone)]
    assert crossval.main([*common, "--out", str(tmp_path / "crossval")]) == 0
    folds = [load_file(str(tmp_path / "crossval" / "transformer.folds" / FOLD_FILE.format(fold=k))) for k in range(3)]
    assert set(folds[0]) == set(folds[1]) == set(folds[2])
    assert "head.weight" in folds[0] and not any(name.startswith("encoder.embeddings") for name in folds[0])
    assert not torch.equal(folds[0]["head.weight"], folds[1]["head.weight"]), "each fold trained its own model"

    out = tmp_path / "classifier"
    assert main([*common, "--crossval", str(tmp_path / "crossval"), "--out", str(out)]) == 0
    classifier = Classifier.load(out, device="cpu")
    weights = dict(classifier.model.named_parameters())
    for name in folds[0]:
        torch.testing.assert_close(weights[name].detach(), sum(fold[name] for fold in folds) / 3)
    backbone = AutoModel.from_pretrained(str(tiny_backbone))
    torch.testing.assert_close(weights["encoder.embeddings.word_embeddings.weight"].detach(),
                               backbone.embeddings.word_embeddings.weight.detach())
    history = json.loads((out / "history.json").read_text())
    assert history["final_model"] == "fold_average" and len(history["fold_files"]) == 3
    assert [len(fold["epochs"]) for fold in history["folds"]] == [2, 2, 2]
    assert "out-of-fold" in history["thresholds_from"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_model"] == "fold_average" and metrics["folds"] == 3
    assert 0 <= metrics["out_of_fold"]["macro_f1"] <= 1
    card = (out / "README.md").read_text()
    assert "average of the 3 fold models" in card and "Cross-validation metrics" in card
    assert classifier.model.config.int8_float_layers == 1 and "top 1 encoder layer stay float" in " ".join(card.split())

    assert main([*common, "--out", str(out)]) == 1
    assert "pass --crossval" in capsys.readouterr().err
    params.write_text(yaml.safe_dump({"train": {**recipe, "int8_float_layers": 3}}))
    assert main([*common, "--crossval", str(tmp_path / "crossval"), "--out", str(out)]) == 1
    assert "int8_float_layers 3 is more than the 2 layers" in capsys.readouterr().err
    params.write_text(yaml.safe_dump({"train": recipe}))
    for path in (tmp_path / "crossval" / "transformer.folds").iterdir():
        path.unlink()
    assert main([*common, "--crossval", str(tmp_path / "crossval"), "--out", str(out)]) == 1
    assert "dvc repro crossval" in capsys.readouterr().err
