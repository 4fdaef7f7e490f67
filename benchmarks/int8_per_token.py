"""The int8 scorer's per-token activation scales against ONNX Runtime's per-batch (dynamic) ones, in one run.

policytag quantises each token's activations with its own scale and scores sentences of one token count per call
(policytag/int8_graph.py), so that a sentence's scores do not depend on its batch. The named alternative is the
previous recipe: `quantize_dynamic` as it comes (one scale per tensor, over the whole padded batch) with batches
sorted by length and padded to their longest. For each, on the same sentences, this prints:
  - speed (sentences/s, tokenisation included; interleaved rounds, see tag_speed.Timed) and the ratio of the two;
  - agreement with the fp32 PyTorch classifier: largest and mean score difference, and decisions at fp32's
    thresholds;
  - batch dependence: the largest change of any score when the same sentences come in another order and batch
    size (0 means bit-for-bit the same).

    python benchmarks/int8_per_token.py [MODEL_DIR] [-n 1500] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from policytag.fast_scorer import (
    INT8_BATCH_SIZE,
    OnnxScorer,
    available_cores,
    export_int8_onnx,
    load_scorer,
    sigmoid,
)
from policytag.model import padded_batches
from tag_speed import Timed, read_texts


class PerBatchScorer:
    """The previous int8 path: ONNX Runtime's dynamic quantisation, length-sorted batches padded to their longest."""

    def __init__(self, model_dir: Path, onnx_path: Path, reference: OnnxScorer, batch_size: int):
        import onnxruntime

        export_int8_onnx(model_dir, onnx_path, per_token=False)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = reference.session.get_session_options().intra_op_num_threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.token_ids, self.labels, self.batch_size = reference.token_ids, reference.labels, batch_size

    def predict_proba(self, texts) -> np.ndarray:
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for rows, input_ids, mask in padded_batches(self.token_ids(list(texts)), self.token_ids.pad_id,
                                                    self.batch_size):
            scores[rows] = sigmoid(self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0])
        return scores


def batch_dependence(scorer, texts: list[str], seed: int = 0) -> float:
    """Largest score change when the same sentences come shuffled and in batches of 5."""
    order = np.random.default_rng(seed).permutation(len(texts))
    before, scorer.batch_size = scorer.batch_size, 5
    try:
        shuffled = scorer.predict_proba([texts[i] for i in order])
    finally:
        scorer.batch_size = before
    return float(np.abs(shuffled - scorer.predict_proba(texts)[order]).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", type=Path, default=Path("models/classifier"), help="classifier dir")
    parser.add_argument("-n", type=int, default=1500, help="sentences to score")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core available)")
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    args = parser.parse_args(argv)
    texts = read_texts(args.sentences, args.n)
    order = np.random.default_rng(1).permutation(len(texts))
    texts = [texts[i] for i in order]  # a mix of articles and lengths in every round
    per_token = load_scorer(args.model, precision="int8", threads=args.threads)
    fp32 = load_scorer(args.model, precision="fp32", threads=args.threads)
    with tempfile.TemporaryDirectory() as work:
        per_batch = PerBatchScorer(args.model, Path(work) / "per-batch.onnx", per_token, INT8_BATCH_SIZE)
        reference = fp32.predict_proba(texts)
        ways = [Timed("int8, per-token scales (policytag)", per_token.predict_proba, texts, args.rounds),
                Timed("int8, per-batch scales (previous)", per_batch.predict_proba, texts, args.rounds)]
        for index in range(args.rounds):
            for way in ways:
                way.run_round(index)
        print(f"{len(texts)} sentences, {args.threads or available_cores()} threads, model {args.model}")
        for way, scorer in zip(ways, (per_token, per_batch)):
            scores = way.all_scores()
            difference = np.abs(scores - reference)
            agree = ((scores >= fp32.thresholds) == (reference >= fp32.thresholds)).mean()
            print(way.report())
            print(f"    vs fp32: max {difference.max():.4f}, mean {difference.mean():.5f}, decisions {agree:.2%}; "
                  f"batch dependence (max score change, other order and batch size): "
                  f"{batch_dependence(scorer, texts[:400]):.2e}")
        print(f"speed ratio per-token / per-batch: {ways[0].rate / ways[1].rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
