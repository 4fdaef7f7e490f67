"""A student made from the teacher: the same tokenizer, embeddings, pooling and head, and K of its encoder layers.

The student is a standard SentenceTagger whose encoder has K layers, so every tool that loads a classifier
directory (the tagger, the int8 export, serve-ml, the evaluation) loads it unchanged. Its layers start as copies
of K teacher layers spread evenly from the first to the last (for K = 3 of 12: layers 0, 6 and 11), the way
DistilBERT keeps every other layer: the first layer keeps the embeddings' interface and the last the head's.
"""

from __future__ import annotations

import copy

from policytag.model import SentenceTagger


def spread_layers(total: int, keep: int) -> list[int]:
    """Indices of `keep` of `total` layers spread evenly from the first to the last."""
    if not 1 <= keep <= total:
        raise ValueError(f"a student keeps between 1 and {total} layers of this teacher, not {keep}")
    if keep == 1:
        return [total - 1]
    return [round(i * (total - 1) / (keep - 1)) for i in range(keep)]


def student_from_teacher(teacher: SentenceTagger, keep: int) -> tuple[SentenceTagger, list[int]]:
    """A new SentenceTagger with `keep` encoder layers copied from `teacher` (see spread_layers), its
    embeddings and head; and the teacher layers it kept. The teacher is left unchanged."""
    layers = spread_layers(teacher.config.encoder_config.num_hidden_layers, keep)
    config = copy.deepcopy(teacher.config)
    config.encoder_config.num_hidden_layers = keep
    student = SentenceTagger(config)
    student.encoder.embeddings.load_state_dict(teacher.encoder.embeddings.state_dict())
    for mine, theirs in enumerate(layers):
        student.encoder.encoder.layer[mine].load_state_dict(teacher.encoder.encoder.layer[theirs].state_dict())
    student.head.load_state_dict(teacher.head.state_dict())
    return student.to(next(teacher.parameters()).device), layers
