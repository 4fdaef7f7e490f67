"""Choosing how sentences are scored: the fp32 PyTorch classifier, or a faster path for the machine at hand."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from policytag.model import Classifier


def configure_threads() -> int:
    """Use every core the process may run on (cgroup/affinity aware), one intra-op thread each."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    return cores


class TorchScorer:
    """The fp32 (or bf16 on a GPU) PyTorch classifier, batched and length-sorted."""

    def __init__(self, classifier: Classifier, batch_size: int):
        self.classifier = classifier
        self.labels = classifier.labels
        self.thresholds = classifier.thresholds
        self.model_version = classifier.model_version
        self.batch_size = batch_size
        self.description = f"torch {classifier.model.dtype} on {classifier.device}, batch {batch_size}"

    def predict_proba(self, texts):
        return self.classifier.predict_proba(texts, batch_size=self.batch_size)


def load_scorer(model_dir: Path, precision: str = "auto", batch_size: int | None = None):
    configure_threads()
    classifier = Classifier.load(model_dir)
    on_gpu = classifier.device.type == "cuda"
    if precision == "auto":
        precision = "bf16" if on_gpu else "fp32"
    if precision == "bf16":
        classifier.model.to(torch.bfloat16)
    return TorchScorer(classifier, batch_size or (1024 if on_gpu else 64))
