"""How fast `policytag tag` scores sentences, against a naive loop, measured in the same run.

Measures, tokenisation included and warm-up excluded:
  (a) policytag's scorer at precision "auto" (int8 ONNX Runtime on a CPU, bf16 PyTorch on a GPU);
  (b) policytag's fp32 PyTorch path (batched, length-sorted): the reference the fast paths must agree with;
  (c) the naive way: a transformers "text-classification" pipeline around the same SentenceTagger
      (function_to_apply="sigmoid", top_k=None), called one sentence at a time, fp32.
Prints sentences/s for each, how (a) agrees with (b), and on its last line the ratio (a)/(c). The ways run in
interleaved rounds (see `Timed`).

Run it on an otherwise idle machine: the load average is printed before and after. Other processes on the same
cores slow the naive loop far more than the batched paths (each of its many small operations waits for all
PyTorch threads to be scheduled), which inflates the ratio; where the machine cannot be had to oneself,
`--threads 1` gives per-core rates, and sentences per CPU-second, that others' work disturbs least.

    python benchmarks/tag_speed.py [MODEL_DIR] [-n 2000] [--naive-n 200] [--rounds 3] [--threads N]
                                   [--sentences data/sentences.jsonl] [--batch-size B] [--student DIR]

On a GPU give it more sentences, e.g. `-n 200000 --naive-n 2000`.

A first run on a new classifier exports the int8 ONNX model (a minute or two; cached for later runs, see
policytag/fast_scorer.py); that time is reported apart and not counted in (a).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from policytag.fast_scorer import available_cores, load_scorer
from policytag.model import encoder_text

WARMUP, GPU_WARMUP = 64, 20000
"""Sentences scored before timing: on a GPU, enough for every batch shape to be seen once (kernel plans are
made per shape), so the timed rounds measure the steady state of a long job."""


def read_texts(path: Path, n: int) -> list[str]:
    """`n` sentences: the file's `text` fields in order, repeated as often as needed."""
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise SystemExit(f"{path} holds no sentences")
    return (texts * (n // len(texts) + 1))[:n]


class Timed:
    """One way of scoring, timed over several rounds; the rounds of all ways interleave, so that a neighbour's
    job on a shared machine slows each of them alike instead of whichever happened to run at the time."""

    def __init__(self, name: str, score, texts: list[str], rounds: int, warmup: int = WARMUP):
        self.name, self.score, self.texts = name, score, texts
        self.chunks = [chunk for chunk in np.array_split(np.arange(len(texts)), rounds) if len(chunk)]
        self.seconds, self.cpu_seconds, self.rates, self.scores = 0.0, 0.0, [], []
        score(texts[:warmup])

    def run_round(self, index: int) -> None:
        if index >= len(self.chunks):
            return
        chunk = [self.texts[i] for i in self.chunks[index]]
        started, cpu_started = time.perf_counter(), time.process_time()
        self.scores.append(self.score(chunk))
        elapsed = time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu_started
        self.seconds += elapsed
        self.rates.append(len(chunk) / elapsed)

    @property
    def rate(self) -> float:
        return sum(len(chunk) for chunk in self.chunks) / self.seconds

    def all_scores(self) -> np.ndarray:
        return np.concatenate(self.scores)

    def report(self) -> str:
        rounds = ", ".join(f"{r:.1f}" for r in self.rates)
        per_cpu = sum(len(chunk) for chunk in self.chunks) / self.cpu_seconds
        return (f"{self.name}: {self.rate:8.1f} sentences/s ({len(self.texts)} sentences; rounds: {rounds}; "
                f"{per_cpu:.1f} sentences per CPU-second)")


def naive_pipeline(scorer, labels: list[str]):
    """One sentence at a time through transformers.pipeline; texts get the same "query: " prefix, NFC and
    truncation as policytag's, so the scores are the same function."""
    from transformers import pipeline
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    # It logs an error, "The model 'SentenceTagger' is not supported for text-classification", and runs it all the
    # same: forward takes input_ids and attention_mask and returns logits with the config's id2label.
    transformers_logging.set_verbosity(transformers_logging.CRITICAL)
    try:
        pipe = pipeline("text-classification", model=scorer.classifier.model, tokenizer=scorer.classifier.tokenizer,
                        function_to_apply="sigmoid", top_k=None, device=scorer.classifier.device)
    finally:
        transformers_logging.set_verbosity(verbosity)
    max_length = scorer.classifier.model.config.max_length
    prefix = scorer.classifier.model.config.input_prefix

    def score(texts):
        rows = []
        for text in texts:
            out = pipe(encoder_text(text, prefix), truncation=True, max_length=max_length)
            out = out[0] if out and isinstance(out[0], list) else out
            by_label = {item["label"]: item["score"] for item in out}
            rows.append([by_label[label] for label in labels])
        return np.asarray(rows, dtype=np.float32)

    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=Path("models/classifier"), help="classifier dir")
    parser.add_argument("-n", type=int, default=2000, help="sentences for (a), (b) and (d)")
    parser.add_argument("--naive-n", type=int, default=200,
                        help="sentences for the naive loop (c): an even sample of the -n sentences")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every way (default: all cores available); 1 gives per-core rates that a "
                             "busy machine disturbs least")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per way of scoring")
    parser.add_argument("--batch-size", type=int, default=None, help="sentences per forward pass for (a) and (b) "
                        "(default: the scorer's own)")
    parser.add_argument("--student", type=Path, default=None,
                        help="also time this student of MODEL_DIR (models/student) as (d), against the same naive loop")
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"),
                        help="JSON Lines with a `text` per line, repeated up to -n")
    args = parser.parse_args(argv)
    texts = read_texts(args.sentences, args.n)
    on_gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if on_gpu else f"{platform.processor() or platform.machine()} CPU"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"{args.model}: {len(texts)} sentences from {args.sentences} ({len(set(texts))} distinct); {device}, "
          f"{available_cores()} cores available, {args.threads or available_cores()} threads used, "
          f"load average {load}")

    started = time.perf_counter()
    fast = load_scorer(args.model, precision="auto", batch_size=args.batch_size, threads=args.threads)
    loaded = time.perf_counter() - started
    built = " (including a one-time int8 ONNX export)" if getattr(fast, "exported", False) else ""
    print(f"(a) policytag auto: {fast.description}; loaded in {loaded:.1f} s{built}")
    # the naive loop's threads too
    reference = load_scorer(args.model, precision="fp32", batch_size=args.batch_size, threads=args.threads)
    print(f"(b) policytag fp32: {reference.description}")
    # An even sample of the same sentences (the file's first ones may be shorter or longer than the rest).
    naive_rows = np.unique(np.linspace(0, len(texts) - 1, min(args.naive_n, len(texts))).astype(int))
    naive_texts = [texts[i] for i in naive_rows]
    print(f"(c) naive: transformers.pipeline('text-classification') around the same SentenceTagger, "
          f"function_to_apply='sigmoid', top_k=None, one sentence at a time, fp32")
    warmup = GPU_WARMUP if on_gpu else WARMUP
    ways = [Timed("(a) policytag auto", fast.predict_proba, texts, args.rounds, warmup),
            Timed("(b) policytag fp32", reference.predict_proba, texts, args.rounds, warmup),
            Timed("(c) naive", naive_pipeline(reference, list(reference.labels)), naive_texts, args.rounds,
                  warmup=8)]
    student = load_scorer(args.student, precision="auto", batch_size=args.batch_size,
                          threads=args.threads) if args.student else None
    if student is not None:
        print(f"(d) student auto: {student.description} ({args.student})")
        ways.append(Timed("(d) student auto", student.predict_proba, texts, args.rounds, warmup))
    for index in range(args.rounds):
        for way in ways:
            way.run_round(index)
    fast_timed, reference_timed, naive_timed = ways[:3]
    for way in ways:
        print(way.report())

    fast_scores, reference_scores = fast_timed.all_scores(), reference_timed.all_scores()
    difference = np.abs(fast_scores - reference_scores)
    thresholds = np.asarray(reference.thresholds)
    agree = ((fast_scores >= thresholds) == (reference_scores >= thresholds)).mean()
    print(f"(a) vs (b): max |score difference| {difference.max():.4f}, mean {difference.mean():.5f}; "
          f"decisions agree on {100 * agree:.2f}% of (sentence, label) pairs")
    check = np.abs(naive_timed.all_scores() - reference_scores[naive_rows]).max()
    print(f"(c) vs (b): max |score difference| {check:.1e} (the same function)")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {available_cores()} cores"
          if hasattr(os, "getloadavg") else "load average after: n/a")
    print(f"ratio policytag fp32/naive: {reference_timed.rate / naive_timed.rate:.1f}x")
    print(f"ratio policytag/naive: {fast_timed.rate / naive_timed.rate:.1f}x")
    if student is not None:
        student_timed = ways[3]
        agree = ((student_timed.all_scores() >= np.asarray(student.thresholds))
                 == (fast_scores >= np.asarray(fast.thresholds))).mean()
        print(f"(d) vs (a): decisions agree on {100 * agree:.2f}% of (sentence, label) pairs (each at its own "
              f"thresholds)")
        print(f"ratio student/policytag: {student_timed.rate / fast_timed.rate:.1f}x")
        print(f"ratio student/naive: {student_timed.rate / naive_timed.rate:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
