"""The `embed` stage: the backbone's e5 embedding of every dataset sentence, computed once for the stages that use
the bare encoder.

The zero-shot baseline (cross-validated in the crossval stage, fitted in the baseline stage, scored in the evaluate
stage) and the active-learning simulation all embed the same sentences with the same pretrained encoder; each used to
run it over them again. This stage runs it once, with the zero-shot settings (params.yaml `baseline.zeroshot`:
sentence prefix, length limit, batch size, precision), and writes models/embeddings/: embeddings.safetensors
(`vectors` [sentences, hidden], float32, L2-normalised) and embeddings.json (the sentences in the same order, the
backbone's weights version, prefix, length limit and the precision the pass ran in). Those stages take
`--embeddings models/embeddings` (policytag/training/encoder.py use_embeddings); without it, or for a sentence it
lacks, they encode as before.

`python -m policytag.training.embed --dataset data/dataset --backbone models/backbone --out models/embeddings`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from policytag.records import atomic_directory
from policytag.training.data import DatasetError, load_dataset_dict
from policytag.training.encoder import EMBEDDINGS_FACTS, EMBEDDINGS_FILE, load_encoder
from policytag.training.params import BaselineParams, ParamsError, ZeroshotParams, load_section
from policytag.training.predictors import BaselineError, kind_settings


def dataset_texts(dataset_dict) -> list[str]:
    """Every sentence of every split (originals and translations), each once, in split order."""
    return list(dict.fromkeys(text for split in dataset_dict.values() for text in split["text"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("data/dataset"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, default=Path("models/backbone"))
    parser.add_argument("--out", type=Path, default=Path("models/embeddings"))
    args = parser.parse_args(argv)
    try:
        settings = kind_settings(ZeroshotParams, load_section(args.params, BaselineParams).kind("zeroshot"))
        texts = dataset_texts(load_dataset_dict(args.dataset))
        started = time.perf_counter()
        encoder = load_encoder(str(args.backbone), settings["max_length"], settings["batch_size"],
                               settings["mixed_precision"])
        vectors = encoder.encode(texts, settings["sentence_prefix"])
        from safetensors.numpy import save_file

        from policytag.model import weights_version

        facts = {"backbone": args.backbone.as_posix(), "backbone_version": weights_version(args.backbone),
                 "prefix": settings["sentence_prefix"], "max_length": settings["max_length"],
                 "mixed_precision": encoder.mixed_precision, "sentences": len(texts), "texts": texts}
        with atomic_directory(args.out) as build:
            save_file({"vectors": vectors}, str(build / EMBEDDINGS_FILE))
            (build / EMBEDDINGS_FACTS).write_text(json.dumps(facts, ensure_ascii=False, indent=0) + "\n",
                                                  encoding="utf-8")
    except (BaselineError, DatasetError, ParamsError, OSError) as error:
        print(f"embed: error: {error}", file=sys.stderr)
        return 1
    print(f"embed: {len(texts)} sentences, {encoder.mixed_precision}, {time.perf_counter() - started:.1f} s "
          f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
