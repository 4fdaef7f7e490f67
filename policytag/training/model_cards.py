"""The model cards (README.md, Hugging Face format) of every model the stages write: the fine-tuned classifier
(policytag/training/train.py), its student (policytag/training/distill.py) and the two baselines
(policytag/training/tfidf.py, policytag/training/zeroshot.py). Each is a template filled from what the model's writer
recorded; nothing here reads files."""

from __future__ import annotations

import json
import textwrap

from typing import Sequence

import numpy as np

from policytag.labels import LABEL_NAMES, LABELS
from policytag.model import QUERY_PREFIX
from policytag.training.thresholds import FALLBACK


def format_score(value) -> str:
    """A score with three decimals, or n/a."""
    return "n/a" if value is None else f"{value:.3f}"


def card(title: str, body: str, tags: Sequence[str], library: str | None = None, languages: Sequence[str] = ()) -> str:
    """The one template of every card: Hugging Face front matter (library, task, languages, tags), the title, the
    body."""
    meta = ([f"library_name: {library}"] if library else []) + (
        ["pipeline_tag: text-classification"] if library == "transformers" else [])
    if languages:
        meta.append(f"language: [{', '.join(languages)}]")
    meta.append(f"tags: [{', '.join(['policytag', 'multi-label-classification', *tags])}]")
    return "---\n" + "\n".join(meta) + f"\n---\n# {title}\n\n" + body.lstrip("\n")


def classifier_card(training: dict, history: dict, thresholds: np.ndarray) -> str:
    """README.md of the classifier directory (a Hugging Face model card)."""
    params, languages = training["params"], training["dataset"]["languages"]
    codes = [code for code in languages if len(code) in (2, 3) and code.isalpha()]
    validation = history["validation"]
    rows = []
    for k, name in enumerate(LABEL_NAMES):
        metrics = validation["tuned"]["labels"][name] if validation else {}
        rows.append(f"| {name} | {thresholds[k]:.2f} | {format_score(metrics.get('precision'))} | "
                    f"{format_score(metrics.get('recall'))} | {format_score(metrics.get('f1'))} | "
                    f"{metrics.get('support', 0)} | "
                    f"{training['dataset']['train_positives'][name]} |")
    definitions = "\n".join(f"- `{label.name}`: {label.description}" for label in LABELS)
    curve = "| epoch | train loss | validation macro-F1 at 0.5 |\n|---|---|---|\n" + "\n".join(
        f"| {e['epoch']} | {e['train_loss']:.4f} | {format_score(e['val_macro_f1'])} |" for e in history["epochs"])
    if history.get("final_model") == "fold_average":
        curve = "| fold | sentences learnt from | train loss by epoch |\n|---|---|---|\n" + "\n".join(
            f"| {f.get('fold')} | {f.get('training_rows')} | "
            f"{', '.join(format(e['train_loss'], '.4f') for e in f.get('epochs', []))} |" for f in history["folds"])
    macro = format_score(validation["tuned"]["macro_f1"]) if validation else "n/a"
    macro_half = format_score(validation["at_0.5"]["macro_f1"]) if validation else "n/a"
    language_list = ", ".join(f"{code} ({count})" for code, count in languages.items()) or "unknown"
    backbone = training["backbone"]
    embeddings = "frozen" if params["freeze_embeddings"] else "trained"
    head = ("the label descriptions (e5 query embeddings of \"query: <description>\", scale "
            f"{params['head_init_scale']})" if params["head_init"] == "descriptions" else "random weights")
    stopped = " (stopped early)" if history["stopped_early"] else ""
    averaged = history.get("final_model") == "fold_average"
    kept = (f"best epoch {history['best_epoch']} of {len(history['epochs'])}{stopped} kept (early stopping on "
            f"validation macro-F1 at 0.5, patience {params['patience']})" if params.get("early_stopping")
            else f"{params['epochs']} epochs, the last kept")
    if averaged:
        kept += (f", once per cross-validation fold; the classifier's weights are the average of the "
                 f"{len(history['fold_files'])} fold models' (policytag/training/fold_average.py)")
    source = history.get("thresholds_from", "validation split")
    threshold_text = (f"Per-label thresholds maximise F1 on the pooled out-of-fold scores of the same recipe's grouped "
                      f"cross-validation ({source}; documents never seen by the model that scored them), over a grid "
                      f"of step {params['threshold_step']}" if "out-of-fold" in source else
                      f"Per-label thresholds maximise F1 on the validation predictions over a grid of step "
                      f"{params['threshold_step']}")
    training_text = textwrap.fill(
        f"Fine-tuned with BCE on sigmoid outputs, positives of rare labels weighted by neg/pos (capped at "
        f"{params['pos_weight_cap']}); AdamW (encoder lr {params['encoder_lr']}, head lr {params['head_lr']}, weight "
        f"decay {params['weight_decay']}, batch {params['batch_size']}), linear schedule with "
        f"{params['warmup_ratio']:.0%} warm-up; the top {params['trainable_layers'] or 'all'} encoder layers "
        f"trained, word embeddings {embeddings}; "
        f"translations {'used' if params.get('translations', True) else 'not used'}; "
        f"head initialised from {head}, bias for an initial probability of about {params['initial_probability']}; "
        f"{kept}; seed {params['seed']}. {threshold_text}. The int8 export (the default CPU path) has its own "
        f"thresholds (`int8_thresholds` in thresholds.json), under which it predicts each label as often as fp32 on "
        f"{params.get('int8_calibration_sentences', 0)} sentences it learnt from; "
        f"{_float_layers(params.get('int8_float_layers', 0))}.",
        width=115)
    params_yaml = "\n".join(f"  {key}: {json.dumps(value)}" for key, value in params.items())
    version = f"`{training['dataset']['version'][:16]}` (sha256 of its files)"
    if averaged:
        data_text = (f"the `train` and `validation` documents of the policytag dataset, version {version}, "
                     f"{history['train_sentences']} sentences (translations included), each learnt by all fold "
                     f"models but the one that held its document out; the `test` documents are not used here.")
        metrics_title = ("Cross-validation metrics (each sentence scored by the fold model that never saw its "
                         "document, at its fold's cross-fitted thresholds)")
    else:
        data_text = (f"the `train` split of the policytag dataset (split by document), version {version}, "
                     f"{history['train_sentences']} sentences (translations included); the `validation` documents "
                     f"({history['validation_sentences']} sentences) are scored below; the `test` documents are not "
                     "used here.")
        metrics_title = "Validation metrics (validation documents, at the thresholds above)"
    return card("policytag sentence classifier", f"""
Tags a sentence of a news article about governments' demands on social media platforms with any of
{len(LABEL_NAMES)} labels (multi-label; a sentence may carry none). Model version (weights hash):
`{training['model_version']}`.

- Architecture: `SentenceTagger` (policytag/model.py): the backbone's BERT encoder, mean pooling over the attention
  mask, dropout {params['dropout']}, a linear layer with one sigmoid output per label. Inputs are NFC-normalised and
  prefixed with `{QUERY_PREFIX.strip()}` as e5 expects, truncated to {params['max_length']} tokens.
- Backbone: {backbone.get('source', 'unknown')}{' (' + backbone['model'] + ')' if backbone.get('model') else ''}.
- Data: {data_text}
  Thresholds: {history.get('thresholds_from', 'validation split')}.
- Languages seen in the dataset: {language_list}.

## Use
```python
from policytag.model import Classifier
classifier = Classifier.load("models/classifier")
classifier.predict(["The ministry ordered the platform to remove the posts."])
```
`predict` applies the thresholds below; `predict_proba` gives the scores. `thresholds.json` holds labels and
thresholds, `training_params.json` the parameters and data version, `history.json` the training curve.

## Labels
{definitions}

## {metrics_title}
Macro-F1 over labels with a positive: {macro} at the tuned thresholds, {macro_half} at 0.5.

| label | threshold | precision | recall | F1 | positives scored | positives learnt from |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

A label with no positive in validation keeps the threshold {FALLBACK} and has no metrics. See the
`evaluate` stage for test-split metrics.

## Training
{training_text}

{curve}

Parameters (params.yaml `train:`):
```yaml
train:
{params_yaml}
```

## Limits
- Trained on a few thousand hand-labelled sentences of some 150 documents: a register or publisher unlike them (for
  Vietnamese: anything but legal text, which it saw only as translations of English news) may fare worse than the
  grouped cross-validation figures say. See reports/evaluation.md for figures per language, register and source.
- Sentence-level: each sentence is read alone, without its article (pronouns are not resolved).
- Languages other than those listed were not seen in training; the multilingual encoder may transfer, unmeasured.
- Text beyond {params['max_length']} tokens is cut off.
- Labels follow the policytag annotation guidelines; they are topics and claims, not judgements.
""", ["sentence-classification"], "transformers", codes)


def student_card(training: dict, history: dict, thresholds: np.ndarray) -> str:
    """README.md of the student directory (policytag/training/distill.py): what it kept of the teacher, how it
    learnt, how closely it follows the teacher."""
    params, data, teacher = training["params"], training["data"], training["teacher"]
    rows = "\n".join(f"| {name} | {thresholds[k]:.3f} |" for k, name in enumerate(LABEL_NAMES))
    losses = "\n".join(f"| {e['epoch']} | {e['train_loss']:.4f} |" for e in history["epochs"])
    validation = history["validation_macro_f1"]
    vocabulary = history.get("vocabulary")
    kept = (f"the teacher's tokenizer and word embeddings (frozen) pruned to {vocabulary['tokens']} of its "
            f"{vocabulary['tokens_before']} tokens: those of the {vocabulary['words']} most frequent words of "
            f"{', '.join(vocabulary['languages'])} (wordfreq's lists) and of its training sentences, every token of "
            f"one character and every token without a letter, so that other text falls back to smaller pieces, not "
            f"to unknown tokens; {vocabulary['held_out_same_tokens']:.2%} of the validation sentences keep their "
            f"tokens. Its pooling and head are the teacher's too" if vocabulary else
            "the same tokenizer, word embeddings (frozen), pooling and head")
    frozen = params.get("frozen_layers", 0)
    layer_loss = (f", plus {params['hidden_weight']} x the mean squared error between each of its "
                  f"{'trained ' if frozen else ''}layers' outputs and the output of the teacher layer it was copied "
                  f"from" if params.get("hidden_weight") else "")
    frozen_text = (f" Its bottom {frozen} layer{'s' if frozen > 1 else ''} stayed the teacher's (frozen)."
                   if frozen else "")
    text = textwrap.fill(
        f"A student of the policytag classifier `{teacher['model_version']}` ({teacher['path']}): {kept}, and "
        f"{len(training['kept_layers'])} of the teacher's "
        f"{teacher['layers']} encoder layers (layers {', '.join(map(str, training['kept_layers']))}, as initial "
        f"weights).{frozen_text} It learnt the teacher's fp32 scores on {data['train_sentences']} sentences outside the validation "
        f"and test documents ({data['labelled']} labelled, where the target is {params['gold_weight']} x gold + "
        f"{1 - params['gold_weight']:.2f} x the teacher; {data['unlabelled']} unlabelled): BCE{layer_loss}, AdamW "
        f"(layers lr {params['encoder_lr']}, head lr {params['head_lr']}, batch {params['batch_size']}), "
        f"{params['epochs']} epochs, seed {params['seed']}. Its thresholds are matched on the "
        f"{data['held_out_sentences']} sentences of "
        f"the {data['held_out_documents']} validation documents, which it never trained on, so that it predicts each "
        f"label as often as the teacher does there; its int8 export has its own thresholds, matched the same way "
        f"to its fp32 decisions.", width=115)
    return card(f"policytag sentence classifier: {len(training['kept_layers'])}-layer student", f"""
Model version (weights hash): `{training['model_version']}`. A standard policytag classifier directory:
`policytag tag --model DIR`, `policytag serve-ml --model DIR`, `Classifier.load(DIR)` load it as they load the teacher.

## How it was made
{text}

On the validation documents: {history['held_out_agreement']:.2%} of (sentence, label) decisions agree with the
teacher's; macro-F1 {validation['student']:.3f} (teacher {validation['teacher']:.3f}). Test figures, per language and
beside the teacher, are in reports/evaluation.md; the speed and accuracy of other sizes in reports/student.md.

| label | threshold |
|---|---:|
{rows}

| epoch | train loss |
|---|---:|
{losses}

## Limits
The teacher's limits (its model card), and the student follows the teacher's mistakes as well as its successes; it
is measured against gold labels on the test documents, not only against the teacher.{_pruned_limits(vocabulary)}
""", ["sentence-classification", "distillation"], "transformers")


def _float_layers(count: int) -> str:
    if not count:
        return "every encoder layer is quantised"
    return f"the top {count} encoder layer{'s' if count > 1 else ''} stay float there, the others are quantised"


def _pruned_limits(vocabulary: dict | None) -> str:
    if not vocabulary:
        return ""
    return ("\n\nIts vocabulary covers " + ", ".join(vocabulary["languages"]) + ": text in the encoder's other "
            "languages is cut into smaller pieces than the teacher sees, and the student was measured on "
            + ", ".join(vocabulary["languages"]) + " only; tag other languages with the teacher.")


def _card_table(facts: dict) -> str:
    rows = ["| label | train positives | validation positives | threshold | validation F1 |",
            "|---|---:|---:|---:|---:|"]
    for label, f in facts.get("labels", {}).items():
        f1 = "n/a" if f["validation_f1"] is None else f"{f['validation_f1']:.3f}"
        rows.append(f"| {label} | {f['train_positives']} | {f['validation_positives']} | {f['threshold']:.2f} | {f1} |")
    return "\n".join(rows)


_CARD_NOTE = ("Validation F1 is measured on the rows the thresholds were tuned on, so it is optimistic; "
              "honest figures are in metrics/test.json and metrics/crossval.json (the `evaluate` stage). "
              "A threshold of 0.50 on a label with no validation positive is the fallback, not a tuned value.")


def tfidf_card(predictor) -> str:
    s, facts = predictor.settings, predictor.facts
    return card("policytag baseline: TF-IDF character n-grams + logistic regression", f"""
Sentence tagger for the six policytag labels ({', '.join(predictor.labels)}), multi-label. Text is
NFC-normalised and lower-cased; features are TF-IDF over `{s['analyzer']}` character n-grams of length
{s['ngram_range'][0]}-{s['ngram_range'][1]} (sublinear tf, min_df {s['min_df']}; {len(predictor.vocabulary)} features);
one logistic regression per label (C={s['C']}, {s['solver']}, class_weight=balanced, random_state={s['seed']}).
A label is predicted when its score reaches its threshold (thresholds.json, tuned per label for F1 on the
validation split). Trained on {facts.get('train_sentences', '?')} sentences, tuned on
{facts.get('validation_sentences', '?')}.

Files: `vocabulary.json` (the n-grams, in feature order), `weights.safetensors` (`idf`, `coef` [labels, features],
`intercept`), `thresholds.json`, `config.json`. Load with `policytag.training.baseline.load_predictor(dir)`; no pickle.

{_card_table(facts)}

{_CARD_NOTE}
""", ["text-classification", "baseline"], "scikit-learn", ["en", "vi"])


def zeroshot_card(predictor) -> str:
    s, facts = predictor.settings, predictor.facts
    return card("policytag baseline: zero-shot label descriptions", f"""
No training: each sentence (`"{s['sentence_prefix']}<sentence>"`) and each label's description from
policytag.labels (`"{s['label_prefix']}<description>"`) are embedded by the backbone `{s['backbone']}`
(mean pooling over the attention mask, L2-normalised, NFC input, max {s['max_length']} tokens); the score of a label is
the sigmoid of the sentence's cosine similarity to its description, standardised by the mean and standard
deviation of that similarity over the {facts.get('train_sentences', '?')} training sentences. Thresholds
(thresholds.json) are tuned per label for F1 on the {s['tune_on'].replace('_', ' ')} split(s).

Files: `label_embeddings.safetensors` (`label_embeddings` [labels, hidden], `center`, `scale`), `thresholds.json`,
`config.json` (settings and the descriptions embedded). The backbone is needed at prediction time. Load with
`policytag.training.baseline.load_predictor(dir)`.

{_card_table(facts)}

{_CARD_NOTE}
""", ["text-classification", "zero-shot", "baseline"], languages=["en", "vi"])
