"""The `distill` stage: a student classifier with K of the teacher's encoder layers that scores as the teacher does,
several times faster.

The student (policytag/training/student.py) learns the teacher's (models/classifier's) fp32 scores on every
sentence the project has outside the held-out documents: the labelled train documents and their translations,
and the unlabelled sentences of data/sentences.jsonl (pool, raw text). On a labelled sentence its target mixes the
gold labels in (`distill.gold_weight`). BCE on those soft targets; with `distill.hidden_weight`, also the mean
squared error between each student layer's output and the output of the teacher layer it was copied from (as
TinyBERT does), which tells a small student far more per sentence than six scores. AdamW, linear warm-up and
decay, word embeddings frozen (most of e5-small's weights), the kept layers and the head trained; with
`distill.frozen_layers`, the bottom kept layers (the teacher's own bottom layers) stay frozen and run once per
sentence, in the teacher's pass, so that an epoch runs only the layers above. Then, with
`distill.vocabulary_languages`, its vocabulary is pruned to the tokens those languages use
(policytag/training/vocabulary.py): e5-small's 250k-token embedding matrix shrinks to about a quarter, and with it
the student's files, load time and memory; the thresholds below are matched on the pruned student.

Held out: the validation and test documents, with their translations. The student never trains on them. Its
thresholds are matched on the validation documents' sentences: under them it predicts each label for as many
sentences as the teacher does at the teacher's thresholds (policytag/training/thresholds.py, matched_thresholds).
These are its own scores on text it never saw. Its int8 export gets its own thresholds too, as the teacher's
does. The test documents stay for the evaluate stage, which scores student and teacher side by side.

models/student/ is a standard classifier directory (`policytag tag --model models/student`, `serve-ml --model
models/student`), with training_params.json (the kept layers, the data, the params), history.json and a model card.

K is chosen from a measured curve: `policytag distill --curve` trains a student for each K of `distill.curve` (by
hand, not in `dvc repro`). For each it measures the int8 speed against the teacher's in the same run, macro-F1 per
language on the test documents (fp32 and int8), and agreement with the teacher. The results go to
metrics/student-curve.json and reports/student.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from policytag.labels import LABEL_NAMES
from policytag.records import Sentence, atomic_writer, read_sentences
from policytag.training.artifacts import directory_hash, package_versions, write_json
from policytag.training.data import DatasetError, load_dataset_dict, split_arrays
from policytag.training.metrics import macro_f1
from policytag.training.params import DistillParams, ParamsError, load_section
from policytag.training.thresholds import apply_thresholds, matched_thresholds


@dataclass
class DistillationData:
    """What the student learns from and where its thresholds are matched: texts, and for labelled ones the gold
    labels (NaN rows for unlabelled text)."""

    texts: list[str]
    gold: np.ndarray  # [texts, labels]; NaN where a sentence has no labels
    held_out_texts: list[str]  # the validation documents' sentences, never trained on
    counts: dict


def corpus_sentences(path: Path) -> list[Sentence]:
    """data/sentences.jsonl, every sentence the segment stage found (labelled or not)."""
    try:
        return read_sentences(path)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; build it with `dvc repro segment`") from None
    except (ValueError, TypeError) as error:
        raise DatasetError(f"{path}: not the segment stage's sentences ({error}); rebuild it with "
                           "`dvc repro segment`") from None


def distillation_data(dataset_dict, sentences: Sequence[Sentence]) -> DistillationData:
    """The student's training text and held-out text from the dataset stage's splits and data/sentences.jsonl.

    Documents are the dataset's groups (a document with its translations). The validation and test groups are held
    out whole, and the test sentences are not used at all. An unlabelled sentence of data/sentences.jsonl goes with
    its article's groups: left out if one of them is a test group, held out if one is a validation group."""
    groups_of_article: dict[str, set[str]] = {}
    labelled: dict[str, tuple[str, str, np.ndarray]] = {}  # id -> (text, group, gold)
    for split in dataset_dict.values():
        texts, gold = split_arrays(split)
        for row_id, article_id, group, text, labels in zip(split["id"], split["article_id"], split["group"], texts,
                                                           gold):
            groups_of_article.setdefault(article_id, set()).add(group)
            labelled[row_id] = (text, group, labels)
    validation_groups = set(dataset_dict["validation"]["group"]) if "validation" in dataset_dict else set()
    test_groups = set(dataset_dict["test"]["group"]) if "test" in dataset_dict else set()
    held_out_groups = validation_groups | test_groups

    texts: dict[str, np.ndarray] = {}  # text -> gold (NaN: unlabelled); the first labelled occurrence wins
    held_out: dict[str, None] = {}
    unlabelled = 0
    for row_id, (text, group, gold) in labelled.items():
        if group in validation_groups:
            held_out.setdefault(text)
        elif group not in held_out_groups:
            texts.setdefault(text, np.asarray(gold, dtype=np.float32))
    for sentence in sentences:
        if sentence.id in labelled:
            continue
        groups = groups_of_article.get(sentence.article_id, {sentence.article_id})
        if groups & test_groups:
            continue
        if groups & validation_groups:
            held_out.setdefault(sentence.text)
        elif sentence.text not in texts:
            texts[sentence.text] = np.full(len(LABEL_NAMES), np.nan, dtype=np.float32)
            unlabelled += 1
    if not texts or not held_out:
        raise DatasetError("the dataset leaves no training or no validation documents for the student; rebuild it "
                           "with `dvc repro dataset` (params.yaml dataset: validation_fraction > 0)")
    gold = np.stack(list(texts.values()))
    counts = {"train_sentences": len(texts), "labelled": int(len(texts) - unlabelled), "unlabelled": unlabelled,
              "held_out_sentences": len(held_out), "held_out_documents": len(validation_groups),
              "test_documents_left_out": len(test_groups)}
    return DistillationData(list(texts), gold, list(held_out), counts)


def soft_targets(teacher_scores: np.ndarray, gold: np.ndarray, gold_weight: float) -> np.ndarray:
    """The teacher's scores, mixed with the gold labels where a sentence has them."""
    labelled = ~np.isnan(gold).any(axis=1)
    targets = np.asarray(teacher_scores, dtype=np.float32).copy()
    targets[labelled] = gold_weight * gold[labelled] + (1 - gold_weight) * targets[labelled]
    return targets


@dataclass
class TeacherPass:
    """The teacher's one pass over the student's training sentences: its scores, the outputs of the layers students
    learn, and the output of the bottom layers students keep frozen."""

    scores: np.ndarray  # [texts, labels], sigmoid
    layers: list[int]  # the teacher layers whose outputs `outputs` holds, in this order
    outputs: list | None  # per text [layers, tokens, hidden], float16 to halve the memory; None without layers
    inputs: list | None  # per text [tokens, hidden], float32: the output of the bottom `inputs_after` layers

    def layer_outputs(self, wanted: Sequence[int]) -> list | None:
        """Per text, the outputs of the teacher layers `wanted` (a subset of `layers`); None when none is wanted."""
        if not wanted:
            return None
        if list(wanted) == self.layers:
            return self.outputs
        index = [self.layers.index(layer) for layer in wanted]
        return [output[index] for output in self.outputs]


def teacher_pass(teacher, tokenizer, texts: Sequence[str], layers: Sequence[int], inputs_after: int = 0,
                 batch_size: int = 64, mixed_precision: str = "fp32") -> TeacherPass:
    """One pass of the teacher (a SentenceTagger) over `texts`: its scores, the outputs of its encoder `layers` (what
    the student's layers learn with `distill.hidden_weight`) and, with `inputs_after` > 0, the output of its bottom
    `inputs_after` layers (the input of a student whose bottom layers are the teacher's, `distill.frozen_layers`).
    The pass runs in `mixed_precision` ("bf16" or "fp32", policytag/training/precision.py)."""
    import torch

    from policytag.training import precision
    from policytag.training.batches import tokenized_batches
    from policytag.training.frozen_layers import pooled_logits

    layers = list(layers)
    config = teacher.config
    device = next(teacher.parameters()).device
    scores = np.zeros((len(texts), teacher.head.out_features), dtype=np.float32)
    outputs: list = [None] * len(texts)
    inputs: list = [None] * len(texts)
    was_training = teacher.training
    teacher.eval()
    with torch.inference_mode(), precision.autocast(device, mixed_precision):
        for rows, batch in tokenized_batches(tokenizer, texts, batch_size, config.max_length, config.input_prefix,
                                             by_length=True):
            mask = batch["attention_mask"].to(device)
            hidden = teacher.encoder(input_ids=batch["input_ids"].to(device), attention_mask=mask,
                                     output_hidden_states=True).hidden_states
            scores[rows] = torch.sigmoid(pooled_logits(teacher, hidden[-1], mask).float()).cpu().numpy()
            picked = torch.stack([hidden[layer + 1] for layer in layers], dim=1).half() if layers else None
            for position, row in enumerate(rows):
                tokens = int(mask[position].sum())
                if layers:
                    outputs[row] = picked[position, :, :tokens].cpu().clone()
                if inputs_after:
                    inputs[row] = hidden[inputs_after][position, :tokens].float().cpu().clone()
    teacher.train(was_training)
    return TeacherPass(scores, layers, outputs if layers else None, inputs if inputs_after else None)


def learnt_layers(kept: Sequence[int], params: DistillParams) -> list[int]:
    """The teacher layers whose outputs a student keeping `kept` learns: those above its frozen bottom, with
    `distill.hidden_weight` (none without)."""
    return list(kept[params.frozen_layers:]) if params.hidden_weight > 0 else []


def _padded_layer_targets(outputs: Sequence, rows, length: int):
    """The teacher's layer outputs of `rows`, padded to `length`: [layers, batch, length, hidden], float32."""
    import torch

    first = outputs[rows[0]]
    padded = torch.zeros((first.shape[0], len(rows), length, first.shape[2]), dtype=torch.float32)
    for position, row in enumerate(rows):
        padded[:, position, : outputs[row].shape[1]] = outputs[row].float()
    return padded


def layer_loss(student_hidden, teacher_hidden, mask):
    """Mean squared error between the student's layer outputs and the teacher's, over the real tokens (padding
    left out), averaged over layers."""
    import torch

    weights = mask[None, :, :, None].to(teacher_hidden.dtype)  # [1, batch, length, 1]
    squared = (torch.stack(list(student_hidden)) - teacher_hidden) ** 2 * weights
    return squared.sum() / (weights.sum() * teacher_hidden.shape[0] * teacher_hidden.shape[-1])


def train_student(teacher, tokenizer, texts: Sequence[str], targets: np.ndarray, params: DistillParams,
                  log: Callable[[str], None] = lambda line: None, taught: TeacherPass | None = None):
    """A student of `params.layers` layers fitted to `targets` and, with `params.hidden_weight`, to the outputs of
    the teacher layers it kept (see the module's docstring); in eval mode, with its history (per-epoch loss), the
    teacher layers it kept and how many of them stayed frozen. With `params.frozen_layers`, the bottom ones are the
    teacher's and stay so: their output comes from the teacher's pass, and the epochs run the layers above.
    `taught`: the teacher's pass over `texts` (the lesson's, shared by a curve's students); without it, the layer
    outputs this student needs are computed here."""
    import torch

    from policytag.model import tokenize
    from policytag.training import frozen_layers, precision
    from policytag.training.fit import adamw, batches_by_length, linear_warmup, optimizer_step, seeded
    from policytag.training.student import student_from_teacher

    texts = list(texts)
    config = teacher.config
    frozen = params.frozen_layers
    with seeded(params.seed):
        student, kept = student_from_teacher(teacher, params.layers)
        if kept[:frozen] != list(range(frozen)):
            raise ValueError(f"distill.frozen_layers is {frozen}, but the student's bottom layers are not the "
                             f"teacher's bottom ones (it keeps teacher layers {kept}); set it to "
                             f"{_same_bottom(kept)} or less in params.yaml")
        for parameter in student.encoder.embeddings.parameters():
            parameter.requires_grad_(False)
        for layer in frozen_layers.layers(student)[:frozen]:
            layer.requires_grad_(False)
        device = next(student.parameters()).device
        mixed_precision = precision.resolve(params.mixed_precision, device)
        learnt = learnt_layers(kept, params)
        if taught is None and (learnt or frozen):
            started = time.perf_counter()
            taught = teacher_pass(teacher, tokenizer, texts, learnt, inputs_after=frozen,
                                  mixed_precision=mixed_precision)
            log(f"distill: K={params.layers}: the teacher's layers {kept} on {len(texts)} sentences, "
                f"{time.perf_counter() - started:.1f} s")
        teacher_outputs = taught.layer_outputs(learnt) if taught is not None else None
        cached = frozen_layers.FrozenStates.of(taught.inputs) if frozen else None
        lengths = [state.shape[0] for state in cached.states] if frozen else [
            len(ids) for ids in tokenize(tokenizer, texts, config.max_length, config.input_prefix,
                                         padding=False)["input_ids"]]
        optimizer = adamw(student, params.encoder_lr, params.head_lr, params.weight_decay)
        steps = math.ceil(len(texts) / params.batch_size) * params.epochs
        scheduler = linear_warmup(optimizer, int(params.warmup_ratio * steps), steps)
        order = np.random.default_rng(params.seed)
        target_tensor = torch.from_numpy(np.asarray(targets, dtype=np.float32))
        epochs = []
        for epoch in range(1, params.epochs + 1):
            started, total, total_layers = time.perf_counter(), 0.0, 0.0
            student.train()
            for rows in batches_by_length(order, len(texts), params.batch_size, lengths):
                with precision.autocast(device, mixed_precision):
                    if frozen:
                        hidden, mask = cached.batch(rows)
                        mask = mask.to(device)
                        outputs = frozen_layers.top_outputs(student, hidden.to(device), mask, frozen)
                    else:
                        batch = tokenize(tokenizer, [texts[i] for i in rows], config.max_length, config.input_prefix)
                        mask = batch["attention_mask"].to(device)
                        outputs = list(student.encoder(input_ids=batch["input_ids"].to(device), attention_mask=mask,
                                                       output_hidden_states=True).hidden_states[1:])
                    logits = frozen_layers.pooled_logits(student, outputs[-1], mask)
                outputs = [output.float() for output in outputs]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(),
                                                                            target_tensor[rows].to(device))
                if teacher_outputs is not None:
                    layers_loss = layer_loss(outputs, _padded_layer_targets(
                        teacher_outputs, rows, mask.shape[1]).to(device), mask)
                    total_layers += layers_loss.item() * len(rows)
                    loss = loss + params.hidden_weight * layers_loss
                optimizer_step(student, loss, optimizer, scheduler, params.max_grad_norm)
                total += loss.item() * len(rows)
            epochs.append({"epoch": epoch, "train_loss": round(total / len(texts), 6),
                           **({"layer_loss": round(total_layers / len(texts), 6)} if teacher_outputs else {})})
            log(f"distill: K={params.layers}: epoch {epoch}/{params.epochs}: loss {total / len(texts):.4f}"
                + (f" (layers {total_layers / len(texts):.4f})" if teacher_outputs else "")
                + f", {time.perf_counter() - started:.1f} s")
        student.eval()
    return student, {"epochs": epochs, "kept_layers": kept, "frozen_layers": frozen,
                     "mixed_precision": mixed_precision}


def _same_bottom(kept: Sequence[int]) -> int:
    """How many of the student's bottom layers are the teacher's bottom ones, in order."""
    count = 0
    while count < len(kept) and kept[count] == count:
        count += 1
    return count


def agreement(first: np.ndarray, second: np.ndarray) -> float:
    """The share of (sentence, label) decisions two models make alike."""
    return round(float((np.asarray(first) == np.asarray(second)).mean()), 4)


@dataclass
class Lesson:
    """What the teacher teaches, computed once and shared by every student of a curve: the distillation data, the
    teacher's pass over it and the targets, and the teacher's scores and decisions on the held-out and validation
    sentences."""

    teacher: object  # policytag.model.Classifier
    teacher_dir: Path
    data: DistillationData
    taught: TeacherPass
    targets: np.ndarray
    held_out_scores: np.ndarray
    validation_texts: list[str]
    validation_gold: np.ndarray
    validation_macro_f1: float


def lesson(teacher_dir: Path, dataset_dict, sentences: Sequence[Sentence], params: DistillParams,
           students: Sequence[int], log: Callable[[str], None] = lambda line: None) -> Lesson:
    """The lesson for students of each K in `students`: one teacher pass over the training sentences gives the
    scores and every layer output those students learn (and their frozen bottom's output)."""
    from policytag.model import Classifier
    from policytag.training import precision
    from policytag.training.student import spread_layers

    data = distillation_data(dataset_dict, sentences)
    teacher = Classifier.load(teacher_dir)
    total = teacher.model.config.encoder_config.num_hidden_layers
    layers = sorted({layer for k in students for layer in learnt_layers(spread_layers(total, k), params)})
    started = time.perf_counter()
    taught = teacher_pass(teacher.model, teacher.tokenizer, data.texts, layers, inputs_after=params.frozen_layers,
                          mixed_precision=precision.resolve(params.mixed_precision, teacher.device))
    log(f"distill: the teacher's pass over {len(data.texts)} training sentences (scores, the outputs of layers "
        f"{layers or '-'}" + (f", and of its bottom {params.frozen_layers} layer(s)" if params.frozen_layers else "")
        + f"), {time.perf_counter() - started:.1f} s")
    targets = soft_targets(taught.scores, data.gold, params.gold_weight)
    validation_texts, validation_gold = split_arrays(dataset_dict["validation"])
    held_out = list(dict.fromkeys([*data.held_out_texts, *validation_texts]))  # mostly the same sentences: score once
    held_out_scores = dict(zip(held_out, teacher.predict_proba(held_out)))
    validation_decided = apply_thresholds(np.stack([held_out_scores[text] for text in validation_texts]),
                                          teacher.thresholds)
    return Lesson(teacher, teacher_dir, data, taught, targets,
                  np.stack([held_out_scores[text] for text in data.held_out_texts]), validation_texts,
                  validation_gold, round(macro_f1(validation_gold, validation_decided), 4))


def distill(lesson: Lesson, params: DistillParams, out: Path, log: Callable[[str], None] = lambda line: None) -> dict:
    """Train a student of `params.layers` layers, match its thresholds to the teacher's decisions on the held-out
    documents, write the classifier directory `out`; the stage's metrics."""
    from policytag.model import Classifier
    from policytag.training.classifier_dir import write_classifier
    from policytag.training.int8_thresholds import sample_texts
    from policytag.training.model_cards import student_card

    teacher, data = lesson.teacher, lesson.data
    started = time.perf_counter()
    student, history = train_student(teacher.model, teacher.tokenizer, data.texts, lesson.targets, params, log,
                                     lesson.taught)
    history["train_seconds"] = round(time.perf_counter() - started, 1)
    tokenizer = teacher.tokenizer
    if params.vocabulary_languages:
        student, tokenizer, history["vocabulary"] = pruned_student(student, tokenizer, data, params, log)
    scorer = Classifier(student, tokenizer, list(LABEL_NAMES), teacher.thresholds, "student", teacher.device)
    student_held_out = scorer.predict_proba(data.held_out_texts)
    thresholds = matched_thresholds(lesson.held_out_scores, teacher.thresholds, student_held_out)
    history["held_out_agreement"] = agreement(apply_thresholds(lesson.held_out_scores, teacher.thresholds),
                                              apply_thresholds(student_held_out, thresholds))
    student_validation = apply_thresholds(scorer.predict_proba(lesson.validation_texts), thresholds)
    history["validation_macro_f1"] = {"teacher": lesson.validation_macro_f1,
                                      "student": round(macro_f1(lesson.validation_gold, student_validation), 4)}
    training = {
        "params": asdict(params),
        "labels": list(LABEL_NAMES),
        "teacher": {"path": lesson.teacher_dir.as_posix(), "model_version": teacher.model_version,
                    "layers": teacher.model.config.encoder_config.num_hidden_layers},
        "kept_layers": history["kept_layers"],
        "data": data.counts,
        "packages": package_versions(["torch", "transformers", "tokenizers", "numpy"]),
    }
    calibration = sample_texts(data.texts, params.int8_calibration_sentences, params.seed)
    write_classifier(out, student, tokenizer, thresholds, training,
                     card=lambda facts: student_card(facts, history, thresholds), facts={"history": history},
                     calibration_texts=calibration)
    return {"layers": params.layers, "kept_layers": history["kept_layers"],
            "held_out_agreement": history["held_out_agreement"],
            "validation_macro_f1": history["validation_macro_f1"], **data.counts,
            **({"vocabulary": history["vocabulary"]} if "vocabulary" in history else {})}


def pruned_student(student, tokenizer, data: DistillationData, params: DistillParams,
                   log: Callable[[str], None] = lambda line: None):
    """The student and its tokenizer with the vocabulary pruned to `params.vocabulary_languages`' most frequent
    words and the student's training sentences (policytag/training/vocabulary.py), and what the pruning kept: how
    many tokens, and the share of the held-out sentences (not in the sample) tokenized exactly as before."""
    from policytag.model import encoder_text
    from policytag.training.vocabulary import kept_token_ids, prune_vocabulary, sample_words, same_tokens_share

    started = time.perf_counter()
    prefix = student.config.input_prefix
    sample = sample_words(params.vocabulary_languages, params.vocabulary_words)
    kept = kept_token_ids(tokenizer, sample + [encoder_text(text, prefix) for text in data.texts])
    tokens_before = student.config.encoder_config.vocab_size
    student, pruned = prune_vocabulary(student, tokenizer, kept)
    facts = {"languages": list(params.vocabulary_languages), "words": params.vocabulary_words,
             "tokens": len(kept), "tokens_before": tokens_before,
             "held_out_same_tokens": same_tokens_share(tokenizer, pruned, kept,
                                                       [encoder_text(text, prefix) for text in data.held_out_texts])}
    log(f"distill: vocabulary pruned to {facts['tokens']} of {tokens_before} tokens "
        f"({', '.join(facts['languages'])}, {params.vocabulary_words} words each, and the training sentences); "
        f"{facts['held_out_same_tokens']:.2%} of the held-out sentences keep their tokens, "
        f"{time.perf_counter() - started:.1f} s")
    return student, pruned, facts


def test_figures(model_dir: Path, test, int8: bool) -> tuple[dict, np.ndarray]:
    """Macro-F1 overall and per language on the test split, and the decisions, of a classifier directory (fp32, or
    its int8 export at its int8 thresholds)."""
    from policytag.fast_scorer import OnnxScorer
    from policytag.model import Classifier

    scorer = OnnxScorer(model_dir) if int8 else Classifier.load(model_dir)
    texts, gold = split_arrays(test)
    decided = apply_thresholds(scorer.predict_proba(texts), scorer.thresholds)
    langs = np.asarray(test["lang"])
    figures = {"macro_f1": round(macro_f1(gold, decided), 4)}
    for lang in ("en", "vi"):
        rows = langs == lang
        if rows.any():
            figures[f"macro_f1_{lang}"] = round(macro_f1(gold[rows], decided[rows]), 4)
    return figures, decided


def int8_speed(model_dirs: dict[str, Path], texts: Sequence[str], rounds: int = 3) -> dict[str, float]:
    """Sentences per second of each model's int8 scorer on `texts` (export and first call excluded), the models
    taking turns round by round so that others' load on the machine hits them alike; the best round counts."""
    from policytag.fast_scorer import OnnxScorer

    scorers = {name: OnnxScorer(path) for name, path in model_dirs.items()}
    for scorer in scorers.values():
        scorer.predict_proba(list(texts)[:64])
    best = {name: math.inf for name in scorers}
    for _ in range(rounds):
        for name, scorer in scorers.items():
            started = time.perf_counter()
            scorer.predict_proba(texts)
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(len(texts) / seconds, 1) for name, seconds in best.items()}


CURVE_RECIPE = ("epochs", "gold_weight", "hidden_weight", "frozen_layers", "vocabulary_languages", "vocabulary_words")
"""The distill params a curve's students share: a curve run keeps earlier students only when these match."""


def curve(teacher_dir: Path, dataset_dict, sentences: Sequence[Sentence], params: DistillParams,
          log: Callable[[str], None], dataset_version: str = "", earlier: dict | None = None) -> dict:
    """A student for each K of params.curve: int8 speed beside the teacher's, test macro-F1 per language (fp32 and
    int8) and decisions agreeing with the teacher's on the test documents. The students of `earlier` (a previous
    curve's results) are kept for the other K when it was measured with the same teacher, dataset and recipe."""
    from policytag.model import weights_version

    test = dataset_dict["test"]
    teacher = {"fp32": test_figures(teacher_dir, test, int8=False), "int8": test_figures(teacher_dir, test, int8=True)}
    results = {"teacher": {"fp32": teacher["fp32"][0], "int8": teacher["int8"][0],
                           "model_version": weights_version(teacher_dir)},
               "dataset_version": dataset_version, "students": {},
               "recipe": {key: getattr(params, key) for key in CURVE_RECIPE}}
    if earlier and all(earlier.get(key) == results[key] for key in ("dataset_version", "recipe")) and \
            earlier.get("teacher", {}).get("model_version") == results["teacher"]["model_version"]:
        results["students"] = {k: v for k, v in earlier.get("students", {}).items() if int(k) not in params.curve}
        results["earlier"] = earlier.get("earlier", [])
        log(f"distill: keeping the curve's earlier students K={', '.join(results['students']) or '-'}")
    elif earlier and earlier.get("students"):  # another teacher, dataset or recipe: kept apart, for the record
        results["earlier"] = [{key: earlier.get(key) for key in ("recipe", "dataset_version", "teacher", "students")},
                              *earlier.get("earlier", [])][:3]
    taught = lesson(teacher_dir, dataset_dict, sentences, params, params.curve, log)
    with tempfile.TemporaryDirectory(prefix="policytag-student-") as scratch:
        for layers in params.curve:
            out = Path(scratch) / f"K{layers}"
            facts = distill(taught, DistillParams(**{**asdict(params), "layers": layers}), out, log)
            fp32, fp32_decided = test_figures(out, test, int8=False)
            int8, int8_decided = test_figures(out, test, int8=True)
            speed = int8_speed({"teacher": teacher_dir, "student": out}, list(test["text"]))
            results["students"][str(layers)] = {
                "kept_layers": facts["kept_layers"], "fp32": fp32, "int8": int8,
                "agreement_fp32": agreement(teacher["fp32"][1], fp32_decided),
                "agreement_int8": agreement(teacher["int8"][1], int8_decided),
                "int8_sentences_per_second": speed["student"], "teacher_int8_sentences_per_second": speed["teacher"],
                "speedup": round(speed["student"] / speed["teacher"], 2),
                "weights_mb": round((out / "model.safetensors").stat().st_size / 1e6, 1)}
            log(f"distill: K={layers}: {json.dumps(results['students'][str(layers)])}")
    results["students"] = dict(sorted(results["students"].items(), key=lambda item: int(item[0])))
    return results


TOLERANCE, TARGET_SPEED = 0.02, 300.0
"""The student's goal: int8 macro-F1 within TOLERANCE of the teacher's int8 in each language, at TARGET_SPEED
int8 sentences/s or more on the machine measured."""


def smallest_good_student(results: dict) -> str | None:
    """The smallest K of the curve that meets the goal, or None."""
    teacher = results["teacher"]["int8"]
    languages = [lang for lang in ("en", "vi") if f"macro_f1_{lang}" in teacher]
    for layers, r in sorted(results["students"].items(), key=lambda item: int(item[0])):
        close = all(r["int8"][f"macro_f1_{lang}"] >= teacher[f"macro_f1_{lang}"] - TOLERANCE for lang in languages)
        if close and r["int8_sentences_per_second"] >= TARGET_SPEED:
            return layers
    return None


def _recipe_words(recipe: dict | None) -> str:
    if not recipe:
        return ""
    words = f": {recipe['epochs']} epochs, gold_weight {recipe['gold_weight']}"
    if recipe.get("frozen_layers"):
        words += f", the bottom {recipe['frozen_layers']} layer(s) frozen"
    if recipe.get("vocabulary_languages"):
        words += (f", vocabulary pruned to {recipe.get('vocabulary_words')} words of "
                  f"{', '.join(recipe['vocabulary_languages'])}")
    if recipe.get("hidden_weight"):
        return words + f", and each layer learns its teacher layer's output, hidden_weight {recipe['hidden_weight']}"
    return words + ", scores only"


def _per_language(figures: dict) -> str:
    """"0.816 / 0.754": macro-F1 in English / Vietnamese ("–" for a language the test split lacks)."""
    return " / ".join(f"{figures[key]:.3f}" if key in figures else "–" for key in ("macro_f1_en", "macro_f1_vi"))


def _student_row(layers: str, r: dict) -> str:
    return (f"| K={layers} | {', '.join(map(str, r['kept_layers']))} | {r['int8_sentences_per_second']:.0f} "
            f"(teacher {r['teacher_int8_sentences_per_second']:.0f}) | {r['speedup']:.2f} | "
            f"{_per_language(r['fp32'])} | {_per_language(r['int8'])} | {r['agreement_int8']:.4f} | "
            f"{r['weights_mb']:.0f} |")


def curve_report(results: dict, dataset_version: str, threads: int) -> str:
    """reports/student.md: the K curve (and, below it, curves measured before with another recipe)."""
    teacher = results["teacher"]
    table_header = ["| model | layers kept | int8 sentences/s | x teacher | macro-F1 fp32 (en / vi) | "
                    "macro-F1 int8 (en / vi) | agreement int8 | weights MB |", "|---|---|---:|---:|---|---|---:|---:|"]
    lines = [
        "# Student size: the K curve",
        "",
        f"Written by `policytag distill --curve` (policytag/training/distill.py) on dataset `{dataset_version[:16]}`. "
        "Each student keeps K of the teacher's 12 encoder layers and learns the teacher's scores (params.yaml "
        "`distill:`" + _recipe_words(results.get("recipe")) + "). Macro-F1 is measured on the test documents, "
        "which neither model saw, per language. Agreement "
        "is the share of (sentence, label) decisions the student makes as the teacher does, each at its own "
        f"thresholds. Speed is the int8 ONNX scorer on the test sentences with {threads} threads, with the teacher "
        "measured in the same run (best of 3 rounds, taking turns).",
        "",
        *table_header,
        f"| teacher | all 12 | – | 1 | {_per_language(teacher['fp32'])} | {_per_language(teacher['int8'])} | 1 | – |",
    ]
    lines += [_student_row(layers, r) for layers, r in results["students"].items()]
    for previous in results.get("earlier", []):
        lines += ["", "Measured before, with " + (_recipe_words(previous.get("recipe"))[2:] if previous.get("recipe")
                                                else "an earlier recipe (scores only, 6 epochs)")
                  + f" (teacher int8 {_per_language(previous['teacher']['int8'])}):", "", *table_header]
        lines += [_student_row(layers, r) for layers, r in previous["students"].items()]
    chosen = smallest_good_student(results)
    lines += ["", f"The smallest K whose int8 macro-F1 is within {TOLERANCE} of the teacher's int8 in both languages "
              f"at {TARGET_SPEED:.0f} sentences/s or more: " + (f"K={chosen} (params.yaml `distill.layers`)." if chosen
                                                                 else "none of these.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="policytag distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--teacher", type=Path, default=Path("models/classifier"))
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("models/student"))
    parser.add_argument("--metrics", type=Path, default=None, help="also write the stage's metrics here")
    parser.add_argument("--curve", action="store_true",
                        help="train a student for each K of distill.curve and measure it (writes --curve-metrics and "
                             "--curve-report instead of --out)")
    parser.add_argument("--layers", type=int, nargs="+", default=None, metavar="K",
                        help="with --curve: measure these K instead of distill.curve, keeping the other K of "
                             "--curve-metrics when it was measured with the same teacher, dataset and recipe")
    parser.add_argument("--curve-metrics", type=Path, default=Path("metrics/student-curve.json"))
    parser.add_argument("--curve-report", type=Path, default=Path("reports/student.md"))
    args = parser.parse_args(argv)
    from policytag.model import ClassifierError

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        params = load_section(args.params, DistillParams)
        if args.layers:
            params = DistillParams(**{**asdict(params), "curve": list(args.layers)})
            params.check()
        dataset_dict = load_dataset_dict(args.dataset)
        sentences = corpus_sentences(args.sentences)
        if args.curve:
            from policytag.fast_scorer import configure_threads

            earlier = json.loads(args.curve_metrics.read_text(encoding="utf-8")) if args.curve_metrics.is_file() \
                else None
            dataset_version = directory_hash(args.dataset)
            results = curve(args.teacher, dataset_dict, sentences, params, log, dataset_version, earlier)
            write_json(args.curve_metrics, results)
            with atomic_writer(args.curve_report) as handle:
                handle.write(curve_report(results, dataset_version, configure_threads()))
            log(f"distill: curve -> {args.curve_metrics}, {args.curve_report}")
            return 0
        facts = distill(lesson(args.teacher, dataset_dict, sentences, params, [params.layers], log), params,
                        args.out, log)
    except (ParamsError, DatasetError, ClassifierError, OSError, ValueError) as error:
        print(f"distill: error: {error}", file=sys.stderr)
        return 1
    if args.metrics:
        write_json(args.metrics, facts)
    log(f"distill: K={params.layers} student, held-out agreement with the teacher {facts['held_out_agreement']}, "
        f"validation macro-F1 {facts['validation_macro_f1']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
