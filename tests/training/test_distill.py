"""The distill stage on the real code path: a student made from a tiny trained-format classifier (conftest's
tiny_classifier) learns its scores on the corpus sentences, with the dataset stage's own splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from policytag.cli import main as cli
from policytag.fast_scorer import OnnxScorer
from policytag.model import THRESHOLDS_FILE, Classifier
from policytag.records import Sentence, read_sentences
from policytag.training.data import load_dataset_dict
from policytag.training.distill import curve_report, distillation_data, main, smallest_good_student, soft_targets
from policytag.training.student import spread_layers, student_from_teacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"layers": 1, "epochs": 3, "batch_size": 16, "encoder_lr": 3e-3, "head_lr": 3e-2, "warmup_ratio": 0.0,
        "int8_calibration_sentences": 64}


def test_student_layers_are_spread_from_first_to_last():
    assert spread_layers(12, 2) == [0, 11]
    assert spread_layers(12, 3) == [0, 6, 11]
    assert spread_layers(12, 4) == [0, 4, 7, 11]
    assert spread_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert spread_layers(12, 1) == [11] and spread_layers(12, 12) == list(range(12))
    with pytest.raises(ValueError, match="between 1 and 12"):
        spread_layers(12, 13)


def test_a_student_with_every_layer_is_the_teacher(tiny_classifier, sentences_file):
    teacher = Classifier.load(tiny_classifier, device="cpu")
    texts = [s.text for s in read_sentences(sentences_file)[:20]]
    whole, kept = student_from_teacher(teacher.model, teacher.model.config.encoder_config.num_hidden_layers)
    assert kept == [0, 1]
    np.testing.assert_allclose(Classifier(whole.eval(), teacher.tokenizer, teacher.labels, teacher.thresholds, "s",
                                          teacher.device).predict_proba(texts),
                               teacher.predict_proba(texts), atol=1e-6)
    small, kept = student_from_teacher(teacher.model, 1)
    assert kept == [1] and len(small.encoder.encoder.layer) == 1
    assert torch.equal(small.encoder.encoder.layer[0].output.dense.weight,
                       teacher.model.encoder.encoder.layer[1].output.dense.weight)
    assert torch.equal(small.head.weight, teacher.model.head.weight)
    assert teacher.model.config.encoder_config.num_hidden_layers == 2, "the teacher is left as it was"


def test_held_out_documents_never_train_the_student(keyword_dataset_dir, sentences_file):
    dataset = load_dataset_dict(keyword_dataset_dir)
    sentences = read_sentences(sentences_file)
    # An article the dataset has no labelled sentence of, in a validation document (in the real dataset a
    # document's group is its article id).
    validation_article = dataset["validation"]["group"][0]
    extra = [Sentence(id="new:1", article_id="new", index=0, start=0, end=10, text="An unlabelled sentence.",
                      lang="en"),
             Sentence(id=f"{validation_article}:x", article_id=validation_article, index=99, start=0, end=5,
                      text="An unlabelled sentence of a validation document.", lang="en")]
    data = distillation_data(dataset, [*sentences, *extra])
    test_texts, validation_texts = set(dataset["test"]["text"]), set(dataset["validation"]["text"])
    assert not (set(data.texts) & test_texts) and not (set(data.texts) & validation_texts)
    assert set(data.held_out_texts) == validation_texts | {extra[1].text}
    assert not (set(data.held_out_texts) & test_texts)
    assert "An unlabelled sentence." in data.texts and data.counts["unlabelled"] == 1
    assert np.isnan(data.gold[data.texts.index("An unlabelled sentence.")]).all()
    assert data.counts["labelled"] == len(set(dataset["train"]["text"]) - validation_texts - test_texts)

    targets = soft_targets(np.full(data.gold.shape, 0.2, np.float32), data.gold, gold_weight=0.5)
    labelled = ~np.isnan(data.gold).any(axis=1)
    np.testing.assert_allclose(targets[labelled], 0.5 * data.gold[labelled] + 0.1)
    np.testing.assert_allclose(targets[~labelled], 0.2)


def test_distill_stage_writes_a_student_the_tools_load(tiny_classifier, keyword_dataset_dir, sentences_file,
                                                      tmp_path, capsys):
    pruned = {"vocabulary_languages": ["en", "vi"], "vocabulary_words": 5000}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"distill": {**FAST, **pruned}}))
    out, metrics = tmp_path / "models" / "student", tmp_path / "metrics" / "student.json"
    argv = ["--params", str(tmp_path / "params.yaml"), "--teacher", str(tiny_classifier),
            "--dataset", str(keyword_dataset_dir), "--sentences", str(sentences_file), "--out", str(out),
            "--metrics", str(metrics)]
    assert main(argv) == 0, capsys.readouterr().err

    student = Classifier.load(out, device="cpu")
    assert student.model.config.encoder_config.num_hidden_layers == 1
    training = json.loads((out / "training_params.json").read_text())
    assert training["kept_layers"] == [1] and training["teacher"]["layers"] == 2
    assert training["model_version"] == student.model_version
    history = json.loads((out / "history.json").read_text())
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert len(losses) == 3 and losses[-1] < losses[0], "the student learns the teacher's scores"
    thresholds = json.loads((out / THRESHOLDS_FILE).read_text())
    assert len(thresholds["thresholds"]) == len(thresholds["int8_thresholds"]) == len(student.labels)
    facts = json.loads(metrics.read_text())
    assert facts["kept_layers"] == [1] and 0.5 < facts["held_out_agreement"] <= 1
    vocabulary = facts["vocabulary"]
    assert vocabulary["tokens"] == student.model.config.encoder_config.vocab_size == len(student.tokenizer)
    assert vocabulary["tokens"] < vocabulary["tokens_before"] and 0 < vocabulary["held_out_same_tokens"] <= 1
    card = (out / "README.md").read_text()
    assert "1-layer student" in card and f"pruned to {vocabulary['tokens']} of its" in card.replace("\n", " ")
    assert OnnxScorer(out).predict_proba(["The ministry ordered the posts removed."]).shape == (1, 6)

    article = tmp_path / "article.txt"
    article.write_text("The ministry ordered the platform to remove the posts. Users must show an ID card.\n")
    assert cli(["tag", str(article), "--model", str(out), "--out", str(tmp_path / "tagged.jsonl"),
                "--no-progress"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "tagged.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {row["model_version"] for row in rows} == {student.model_version}


def test_distill_stage_errors_name_the_file(tiny_classifier, keyword_dataset_dir, sentences_file, tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"distill": {**FAST, "layers": 0}}))
    common = ["--teacher", str(tiny_classifier), "--dataset", str(keyword_dataset_dir), "--out", str(tmp_path / "s")]
    assert main(["--params", str(tmp_path / "params.yaml"), *common]) == 1
    assert "distill.layers" in capsys.readouterr().err
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"distill": {**FAST, "frozen_layers": 1}}))
    assert main(["--params", str(tmp_path / "params.yaml"), *common]) == 1
    assert "distill.frozen_layers must be 0 or more and leave at least one" in capsys.readouterr().err
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"distill": FAST}))
    assert main(["--params", str(tmp_path / "params.yaml"), *common,
                 "--sentences", str(tmp_path / "missing.jsonl")]) == 1
    assert "missing.jsonl is missing; build it with `dvc repro segment`" in capsys.readouterr().err
    assert main(["--params", str(tmp_path / "params.yaml"), *common, "--teacher", str(tmp_path / "nothing"),
                 "--sentences", str(sentences_file)]) == 1
    assert "nothing holds no classifier" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_the_curve_report_names_the_smallest_student_that_meets_the_goal():
    def student(en, vi, speed):
        figures = {"macro_f1": (en + vi) / 2, "macro_f1_en": en, "macro_f1_vi": vi}
        return {"kept_layers": [0, 11], "fp32": figures, "int8": figures, "agreement_fp32": 0.97,
                "agreement_int8": 0.97, "int8_sentences_per_second": speed, "teacher_int8_sentences_per_second": 200.0,
                "speedup": speed / 200, "weights_mb": 400.0}

    teacher = {"macro_f1": 0.8, "macro_f1_en": 0.8, "macro_f1_vi": 0.8}
    results = {"teacher": {"fp32": teacher, "int8": teacher},
               "students": {"2": student(0.70, 0.80, 900.0), "4": student(0.79, 0.785, 500.0),
                            "6": student(0.80, 0.80, 250.0)}}
    assert smallest_good_student(results) == "4", "K=2 is too far off in English; K=6 is too slow"
    report = curve_report(results, "f" * 64, threads=2)
    assert "| K=4 | 0, 11 | 500 (teacher 200) | 2.50 | 0.790 / 0.785 |" in report and "K=4 (params.yaml" in report
    results["students"]["4"]["int8"]["macro_f1_vi"] = 0.70
    assert smallest_good_student(results) is None and "none of these" in curve_report(results, "f" * 64, 2)


def test_with_hidden_weight_each_student_layer_learns_the_teacher_layer_it_copies(tiny_classifier, sentences_file):
    """distill.hidden_weight: the student's layers learn the outputs of the teacher layers they were copied from.
    A student of every layer starts as the teacher, so its layer loss is (about) zero; a one-layer student fitted
    with the layer loss stays closer to the teacher layer it copies than one fitted to the scores alone. Measured
    in eval mode: the per-epoch layer loss of the history is taken in train mode, where this tiny model's dropout
    noise outweighs what it learns."""
    from policytag.labels import LABEL_NAMES
    from policytag.model import tokenize
    from policytag.training.distill import _padded_layer_targets, layer_loss, teacher_pass, train_student
    from policytag.training.params import DistillParams

    teacher = Classifier.load(tiny_classifier, device="cpu")
    texts = [s.text for s in read_sentences(sentences_file)[:48]]
    taught = teacher_pass(teacher.model, teacher.tokenizer, texts, [0, 1], batch_size=5)
    outputs = taught.outputs
    assert taught.inputs is None, "no bottom layers asked for"
    assert np.allclose(taught.scores, teacher.predict_proba(texts), atol=1e-5), "the pass scores as the tagger does"
    assert all(torch.equal(one[[1]], other) for one, other in zip(outputs, taught.layer_outputs([1])))
    assert [o.shape[:2] for o in outputs[:2]] == [(2, len(ids)) for ids in teacher.tokenizer(
        ["query: " + t for t in texts[:2]], truncation=True, max_length=128)["input_ids"]]
    batch = tokenize(teacher.tokenizer, texts, 128, teacher.model.config.input_prefix)

    def distance(student, kept):
        """The student's layer loss against the teacher layers `kept`, on `texts`, in eval mode."""
        rows, length = list(range(len(texts))), batch["input_ids"].shape[1]
        targets = _padded_layer_targets([o[kept] for o in outputs], rows, length)
        with torch.no_grad():
            hidden = student.eval().encoder(**batch, output_hidden_states=True).hidden_states[1:]
            return float(layer_loss(hidden, targets, batch["attention_mask"]))

    whole, kept = student_from_teacher(teacher.model, 2)
    assert kept == [0, 1] and distance(whole, kept) < 1e-4, "float16 storage only"

    scores = teacher.predict_proba(texts)
    fitted = {}
    for hidden_weight in (0.0, 10.0):
        params = DistillParams(**{**FAST, "layers": 1, "epochs": 4, "hidden_weight": hidden_weight})
        student, history = train_student(teacher.model, teacher.tokenizer, texts, scores, params)
        assert history["kept_layers"] == [1]
        assert ("layer_loss" in history["epochs"][0]) == (hidden_weight > 0)
        fitted[hidden_weight] = distance(student, [1])
    assert fitted[10.0] < 0.9 * fitted[0.0], fitted
    assert Classifier(student, teacher.tokenizer, list(LABEL_NAMES), teacher.thresholds, "s",
                      teacher.device).predict_proba(texts[:3]).shape == (3, 6)


def test_frozen_bottom_layers_stay_the_teachers_and_the_layers_above_learn(tiny_classifier, sentences_file):
    """distill.frozen_layers: the student's bottom layer is the teacher's and stays so, fed once from the teacher's
    pass (which gives exactly what the student's own bottom layer computes); the layer above trains, and the student
    tagging through its whole encoder scores as it did on the cached states it trained on. A bottom that is not the
    teacher's is a clear error."""
    from policytag.labels import LABEL_NAMES
    from policytag.training import frozen_layers
    from policytag.training.distill import teacher_pass, train_student
    from policytag.training.params import DistillParams

    teacher = Classifier.load(tiny_classifier, device="cpu")
    texts = [s.text for s in read_sentences(sentences_file)[:48]]
    scores = teacher.predict_proba(texts)
    taught = teacher_pass(teacher.model, teacher.tokenizer, texts, [], inputs_after=1, batch_size=5)
    inputs = taught.inputs
    assert taught.outputs is None and taught.layer_outputs([]) is None
    untrained, _ = student_from_teacher(teacher.model, 2)
    states = frozen_layers.FrozenStates(untrained, teacher.tokenizer, texts, 1, 128, batch_size=7)
    assert all(torch.allclose(mine, theirs, atol=1e-5) for mine, theirs in zip(inputs, states.states))

    params = DistillParams(**{**FAST, "layers": 2, "epochs": 3, "hidden_weight": 1.0, "frozen_layers": 1})
    student, history = train_student(teacher.model, teacher.tokenizer, texts, scores, params)
    assert history["kept_layers"] == [0, 1] and history["frozen_layers"] == 1
    bottom, top = (frozen_layers.layers(model) for model in (student, teacher.model))
    assert all(torch.equal(mine, theirs) for mine, theirs in zip(bottom[0].state_dict().values(),
                                                                  top[0].state_dict().values()))
    assert not all(torch.equal(mine, theirs) for mine, theirs in zip(bottom[1].state_dict().values(),
                                                                      top[1].state_dict().values()))
    tagged = Classifier(student, teacher.tokenizer, list(LABEL_NAMES), teacher.thresholds, "s", teacher.device)
    trained_on = frozen_layers.cached_scores(student, frozen_layers.FrozenStates.of(inputs), 1, batch_size=8)
    assert np.allclose(tagged.predict_proba(texts), trained_on, atol=1e-5), "tagging sees what training saw"

    with pytest.raises(ValueError, match="distill.frozen_layers is 1.*teacher layers \\[1\\].*0 or less"):
        train_student(teacher.model, teacher.tokenizer, texts, scores, DistillParams(**{**FAST, "frozen_layers": 1}))


def test_curve_runs_add_to_the_curve_measured_with_the_same_teacher_dataset_and_recipe(
        tiny_classifier, keyword_dataset_dir, sentences_file, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"distill": {**FAST, "epochs": 1}}))
    metrics, report = tmp_path / "curve.json", tmp_path / "student.md"
    argv = ["--params", str(params), "--teacher", str(tiny_classifier), "--dataset", str(keyword_dataset_dir),
            "--sentences", str(sentences_file), "--curve", "--curve-metrics", str(metrics), "--curve-report",
            str(report)]
    assert main([*argv, "--layers", "2"]) == 0, capsys.readouterr().err
    assert main([*argv, "--layers", "1"]) == 0, capsys.readouterr().err
    results = json.loads(metrics.read_text())
    assert list(results["students"]) == ["1", "2"], "K=2 kept from the first run, in order of K"
    assert results["recipe"] == {"epochs": 1, "gold_weight": 0.5, "hidden_weight": 0.0, "frozen_layers": 0,
                                 "vocabulary_languages": [], "vocabulary_words": 100000}
    assert "| K=1 |" in report.read_text() and "| K=2 |" in report.read_text()

    params.write_text(yaml.safe_dump({"distill": {**FAST, "epochs": 1, "hidden_weight": 1.0}}))
    assert main([*argv, "--layers", "1"]) == 0, capsys.readouterr().err
    results = json.loads(metrics.read_text())
    assert list(results["students"]) == ["1"], "another recipe starts a new curve"
    assert "hidden_weight 1.0" in report.read_text()
