"""The classifier model and its inference wrapper, on a tiny random BERT backbone (tests/tiny_backbone.py)."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from policytag.labels import LABEL_NAMES
from policytag.model import (
    QUERY_PREFIX,
    Classifier,
    ClassifierError,
    SentenceTagger,
    SentenceTaggerConfig,
    encoder_text,
    save_classifier,
    tokenize,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = [
    "The ministry ordered the platform to remove anti-state posts within 24 hours.",
    "Tax",
    "Chính phủ yêu cầu các nền tảng lưu trữ dữ liệu người dùng tại Việt Nam.",
    "Users must verify their identity with a phone number before posting comments on social networks.",
    "",
]


@pytest.fixture(scope="module")
def tagger(tiny_backbone) -> SentenceTagger:
    torch.manual_seed(1)
    model = SentenceTagger.from_backbone(tiny_backbone)
    with torch.no_grad():
        model.head.weight.normal_(0, 1.0)  # scores that differ between sentences and labels
    return model.eval()


@pytest.fixture(scope="module")
def saved(tagger, tiny_backbone, tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    thresholds = [0.1, 0.3, 0.5, 0.5, 0.7, 0.9]
    return save_classifier(tmp_path_factory.mktemp("model") / "classifier", tagger, tokenizer, thresholds), thresholds


def test_forward_gives_one_logit_per_label_and_a_weighted_loss(tagger, tiny_backbone):
    batch = tokenize(AutoTokenizer.from_pretrained(str(tiny_backbone)), TEXTS)
    labels = torch.zeros(len(TEXTS), len(LABEL_NAMES))
    labels[0, 0] = labels[3, 1] = 1
    output = tagger(**batch, labels=labels)
    assert output.logits.shape == (len(TEXTS), len(LABEL_NAMES))
    weighted = tagger(**batch, labels=labels, pos_weight=torch.full((len(LABEL_NAMES),), 5.0))
    assert weighted.loss > output.loss > 0
    assert tagger(**batch).loss is None


def test_mean_pooling_ignores_padding(tagger, tiny_backbone):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    batch = tokenize(tokenizer, TEXTS[:2])
    assert batch["attention_mask"][1].sum() < batch["input_ids"].shape[1], "the second text is padded"
    with torch.no_grad():
        alone = tagger.embed(**tokenize(tokenizer, TEXTS[1:2]))
        padded = tagger.embed(**batch)[1:2]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)


def test_inputs_are_nfc_and_prefixed_once():
    decomposed = unicodedata.normalize("NFD", TEXTS[2])
    assert encoder_text(decomposed) == QUERY_PREFIX + unicodedata.normalize("NFC", TEXTS[2])


def test_saved_classifier_is_a_standard_checkpoint(saved, tagger):
    directory, thresholds = saved
    assert (directory / "model.safetensors").is_file()
    assert not [p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pkl")]
    assert json.loads((directory / "thresholds.json").read_text()) == {"labels": list(LABEL_NAMES),
                                                                       "thresholds": thresholds}
    config = AutoConfig.from_pretrained(str(directory))
    assert isinstance(config, SentenceTaggerConfig) and config.label_names == list(LABEL_NAMES)
    assert config.id2label == dict(enumerate(LABEL_NAMES)) and config.problem_type == "multi_label_classification"
    assert "/" not in json.dumps(config.encoder_config.name_or_path), "no machine's path in config.json"
    model = AutoModel.from_pretrained(str(directory))
    assert isinstance(model, SentenceTagger)
    for name, value in tagger.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_classifier_scores_in_input_order_and_applies_thresholds(saved, tagger, tiny_backbone):
    directory, thresholds = saved
    classifier = Classifier.load(directory, device="cpu")
    assert classifier.labels == list(LABEL_NAMES) and len(classifier.model_version) == 12
    scores = classifier.predict_proba(TEXTS, batch_size=2)
    assert scores.shape == (len(TEXTS), len(LABEL_NAMES)) and ((scores > 0) & (scores < 1)).all()
    with torch.no_grad():
        expected = torch.sigmoid(tagger(**tokenize(AutoTokenizer.from_pretrained(str(tiny_backbone)), TEXTS)).logits)
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(classifier.predict_proba(TEXTS[::-1], batch_size=3), scores[::-1], atol=1e-5)
    decomposed = [unicodedata.normalize("NFD", text) for text in TEXTS]
    np.testing.assert_allclose(classifier.predict_proba(decomposed), scores, atol=1e-5)
    assert classifier.predict(TEXTS) == [
        [name for name, score, threshold in zip(LABEL_NAMES, row, thresholds) if score >= threshold] for row in scores
    ]
    assert classifier.predict_proba([]).shape == (0, len(LABEL_NAMES))


def test_missing_or_broken_classifier_is_a_clear_error(saved, tmp_path):
    with pytest.raises(ClassifierError, match="no classifier"):
        Classifier.load(tmp_path / "nowhere")
    directory, _ = saved
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        (broken / name).write_bytes((directory / name).read_bytes())
    with pytest.raises(ClassifierError, match="thresholds.json is missing"):
        Classifier.load(broken)
