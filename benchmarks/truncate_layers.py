"""A copy of a classifier that keeps only its first K encoder layers: what a smaller student would cost to run.

The copy is for speed measurements, not for tagging: its head was trained on the last layer's output, so its
scores mean nothing until it is trained (distilled) again. Token ids, batch shapes and the scoring code are the
same, so `benchmarks/tag_speed.py` on the copy gives the rate of a K-layer student of the same width:

    python benchmarks/truncate_layers.py models/classifier 3 /tmp/classifier-3-layers
    POLICYTAG_CACHE_DIR=/tmp/policytag-cache python benchmarks/tag_speed.py /tmp/classifier-3-layers
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from policytag.model import WEIGHTS_FILE

LAYER_INDEX = re.compile(r"\.layer\.(\d+)\.")


def truncate_layers(model_dir: Path, layers: int, out_dir: Path) -> Path:
    """Copy `model_dir` to `out_dir` with the encoder cut to its first `layers` layers."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    encoder_config = config["encoder_config"]
    if not 1 <= layers <= encoder_config["num_hidden_layers"]:
        raise SystemExit(f"{model_dir} has {encoder_config['num_hidden_layers']} encoder layers; "
                         f"ask for 1 to {encoder_config['num_hidden_layers']}")
    tensors = load_file(model_dir / WEIGHTS_FILE)
    kept = {name: tensor for name, tensor in tensors.items()
            if not (match := LAYER_INDEX.search(name)) or int(match.group(1)) < layers}
    encoder_config["num_hidden_layers"] = layers
    shutil.copytree(model_dir, out_dir)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(kept, out_dir / WEIGHTS_FILE, metadata={"format": "pt"})
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="classifier directory")
    parser.add_argument("layers", type=int, help="encoder layers to keep, from the bottom")
    parser.add_argument("out", type=Path, help="new directory (must not exist)")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; give a new directory")
    truncate_layers(args.model, args.layers, args.out)
    print(f"{args.out}: {args.model} with its first {args.layers} encoder layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
