"""bf16 mixed precision against float32 for the training passes, measured in the same run.

Two passes dominate the train, crossval and distill stages on a CPU: the frozen bottom layers' one pass over every
sentence (policytag/training/frozen_layers.py FrozenStates) and the training steps of the layers above. This times
both on corpus sentences with the real backbone, in float32 and under bf16 autocast (policytag/training/precision.py),
alternating the two so that a noisy machine slows both alike, and prints each ratio and how far the bf16 states
are from the float32 ones.

    python benchmarks/mixed_precision.py --backbone models/backbone --sentences data/sentences.jsonl -n 640

bf16 pays only where the hardware computes it natively (AVX512-BF16 or AMX; the script says whether this machine
does): elsewhere it is emulated, and `train.mixed_precision: auto` keeps float32.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from policytag.records import read_sentences
from policytag.training import frozen_layers, precision
from policytag.training.head_init import initial_model
from policytag.training.params import TrainParams


def bottom_pass(model, tokenizer, texts, frozen: int, mode: str) -> tuple[float, list[torch.Tensor]]:
    started = time.perf_counter()
    states = frozen_layers.FrozenStates(model, tokenizer, texts, frozen, 128, 64, {}, mode)
    return time.perf_counter() - started, states.states


def training_steps(model, states: list[torch.Tensor], frozen: int, mode: str, batch_size: int) -> float:
    """One epoch of top-layer training steps over `states` (batches of similar length, as fit makes them)."""
    cached = frozen_layers.FrozenStates.of(states)
    order = np.argsort([state.shape[0] for state in states])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    device = torch.device("cpu")
    model.train()
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        with precision.autocast(device, mode):
            logits = frozen_layers.top_logits(model, *cached.batch(order[start:start + batch_size]), frozen)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), torch.zeros_like(logits.float()))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", type=Path, default=Path("models/backbone"))
    parser.add_argument("--sentences", type=Path, default=Path("data/sentences.jsonl"))
    parser.add_argument("-n", type=int, default=640, help="sentences (default 640)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trainable-layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    texts = [sentence.text for sentence in read_sentences(args.sentences)][: args.n]
    tokenizer = AutoTokenizer.from_pretrained(str(args.backbone))
    params = TrainParams.from_dict({"trainable_layers": args.trainable_layers})
    model = initial_model(args.backbone, params, texts[:16], tokenizer, torch.device("cpu"))
    frozen = frozen_layers.freeze_bottom(model, args.trainable_layers)
    print(f"{len(texts)} sentences, {torch.get_num_threads()} threads, bottom {frozen} layers frozen, top "
          f"{args.trainable_layers} trained; native bf16 on this CPU: {precision.native_bf16(torch.device('cpu'))}")
    times: dict[str, dict[str, list[float]]] = {"bottom": {"fp32": [], "bf16": []}, "steps": {"fp32": [], "bf16": []}}
    states = {}
    for _ in range(args.rounds):
        for mode in ("fp32", "bf16"):
            seconds, states[mode] = bottom_pass(model, tokenizer, texts, frozen, mode)
            times["bottom"][mode].append(seconds)
            times["steps"][mode].append(training_steps(model, states["fp32"], frozen, mode, args.batch_size))
    for name, measured in times.items():
        fp32, bf16 = min(measured["fp32"]), min(measured["bf16"])
        print(f"{name:>6}: fp32 {len(texts) / fp32:7.1f} sentences/s, bf16 {len(texts) / bf16:7.1f} sentences/s, "
              f"ratio {fp32 / bf16:.2f} (best of {args.rounds})")
    cosine = torch.cat([torch.nn.functional.cosine_similarity(a, b, dim=-1)
                        for a, b in zip(states["fp32"], states["bf16"])])
    print(f"bf16 bottom states against fp32: mean token cosine {cosine.mean().item():.6f}, min {cosine.min().item():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
