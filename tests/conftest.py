"""Shared fixtures: where the repository and its corpus are."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def raw_dir(repo, tmp_path_factory) -> Path:
    """The seed articles of data/raw (a copy, without the unlabelled pool of data/raw/pool/)."""
    import shutil

    copy = tmp_path_factory.mktemp("raw")
    for path in (repo / "data" / "raw").glob("*.*"):
        shutil.copy2(path, copy / path.name)
    return copy


@pytest.fixture(scope="session")
def pool_dir(repo) -> Path:
    return repo / "data" / "raw" / "pool"


@pytest.fixture(scope="session")
def sentences_file(raw_dir, tmp_path_factory) -> Path:
    """The corpus segmented as the segment stage does it (data/sentences.jsonl is a DVC output, not in git)."""
    from policytag.records import write_jsonl
    from policytag.segment import segment_files

    done, skipped = segment_files([raw_dir])
    assert not skipped
    path = tmp_path_factory.mktemp("corpus") / "sentences.jsonl"
    write_jsonl(path, [sentence for item in done for sentence in item.sentences])
    return path


@pytest.fixture(scope="session")
def tiny_classifier(sentences_file, tmp_path_factory) -> Path:
    """A classifier directory as the train stage writes it, on a tiny random backbone (built offline in seconds).

    Its thresholds are each label's 70th percentile of scores on the corpus, so that decisions vary between
    sentences the way a trained model's do."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from policytag.model import Classifier, SentenceTagger, save_classifier
    from policytag.records import read_sentences
    from tiny_backbone import build_tiny_backbone

    texts = [s.text for s in read_sentences(sentences_file)]
    root = tmp_path_factory.mktemp("tiny")
    backbone = build_tiny_backbone(root / "backbone", texts)
    torch.manual_seed(0)
    model = SentenceTagger.from_backbone(backbone)
    with torch.no_grad():
        model.head.weight.normal_(0, 2.0)
    directory = save_classifier(root / "classifier", model, AutoTokenizer.from_pretrained(str(backbone)),
                                [0.5] * len(model.config.label_names))
    scores = Classifier.load(directory, device="cpu").predict_proba(texts)
    save_classifier(directory, model, AutoTokenizer.from_pretrained(str(backbone)),
                    np.percentile(scores, 70, axis=0).round(4).tolist())
    return directory


@pytest.fixture(scope="session")
def tiny_backbone(sentences_file, tmp_path_factory) -> Path:
    """A tiny random BERT checkpoint + WordPiece tokenizer trained on the corpus, laid out like models/backbone/."""
    from policytag.records import read_sentences
    from tiny_backbone import build_tiny_backbone

    texts = [sentence.text for sentence in read_sentences(sentences_file)]
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny") / "backbone", texts)


KEYWORD_RULE = {"facebook": "censorship_demand", "user": "privacy", "tiktok": "child_safety",
                "google": "intellectual_property", "law": "taxation", "platform": "sovereignty"}
"""Synthetic labels that a model can learn from the text alone: a sentence carries a label when it contains that
label's keyword (lower-cased). Frequent enough in the seed corpus to leave positives in every split."""


@pytest.fixture(scope="session")
def keyword_dataset_dir(sentences_file, tmp_path_factory) -> Path:
    """A DatasetDict on disk, as the dataset stage writes it, of the corpus sentences labelled by KEYWORD_RULE."""
    from policytag.labels import LABEL_NAMES
    from policytag.records import read_sentences
    from pseudo_documents import pseudo_document
    from policytag.training.dataset import build_dataset, dataset_row, save_dataset

    rows = []
    for s in read_sentences(sentences_file):
        names = sorted({label for word, label in KEYWORD_RULE.items() if word in s.text.lower()}, key=LABEL_NAMES.index)
        rows.append(dataset_row(s.id, s.article_id, s.text, s.lang, names, group=pseudo_document(s)))
    path = tmp_path_factory.mktemp("keyword") / "dataset"
    save_dataset(build_dataset(rows, validation=0.2, test=0.25, seed=13), path)
    return path


@pytest.fixture(autouse=True, scope="session")
def private_model_cache(tmp_path_factory):
    """Exports of the fast scorer (policytag/fast_scorer.py) go to a temporary cache, not the user's."""
    import os

    previous = os.environ.get("POLICYTAG_CACHE_DIR")
    os.environ["POLICYTAG_CACHE_DIR"] = str(tmp_path_factory.mktemp("policytag-cache"))
    yield
    if previous is None:
        os.environ.pop("POLICYTAG_CACHE_DIR", None)
    else:
        os.environ["POLICYTAG_CACHE_DIR"] = previous


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread; on a shared machine OpenMP's waits for a second one cost seconds."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
