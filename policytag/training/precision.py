"""Mixed precision for the training passes: bf16 autocast where the hardware computes in bf16 natively.

`train.mixed_precision` and `distill.mixed_precision` (params.yaml) take:
- `auto`: bf16 where it is native (a CPU with AVX512-BF16 or AMX, a CUDA GPU that supports bf16), float32 elsewhere;
- `bf16`: bf16 autocast whatever the hardware (on a CPU without native bf16 it is emulated and slower);
- `fp32`: float32 throughout.

What runs under autocast: the frozen bottom layers' one pass (policytag/training/frozen_layers.py), the teacher's
pass in distillation and every training step's forward. The weights, the optimizer state, the losses and the
scores that tune thresholds or give metrics stay float32, and the exported model is float32 (its int8 export is
quantized from that). On 2 AVX512-BF16 cores the bottom pass is about 2.2x and a training step of the top layers
about 1.9x as fast as in float32 (benchmarks/mixed_precision.py measures both in one run). The mode a run used is
recorded in its history, since bf16 and float32 runs differ in the last digits.
"""

from __future__ import annotations

import contextlib

import torch

from policytag.training.params import MIXED_PRECISION_MODES as MODES


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 matrix products natively (not by emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None),
                  getattr(torch.cpu, "_is_amx_tile_supported", None))
        return any(check is not None and check() for check in checks)
    return False


def resolve(mode: str, device: torch.device) -> str:
    """`mode` (one of MODES) made concrete for `device`: "bf16" or "fp32"."""
    if mode not in MODES:
        raise ValueError(f"mixed_precision must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return mode


def autocast(device: torch.device, resolved: str):
    """A context in which `device`'s forward passes run in bf16 when `resolved` is "bf16" (nothing otherwise)."""
    if resolved != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
