"""A tiny BERT backbone, built offline in seconds, to run the real training and tagging code in tests.

The layout is the backbone stage's (models/backbone/): a `BertModel` checkpoint (safetensors) plus a fast
tokenizer, so any code that accepts the real multilingual-e5-small accepts this. The tokenizer is a WordPiece
vocabulary trained on the given texts (e.g. the corpus sentences); the weights are random but seeded, so two
builds with the same texts and seed are identical.

From tests: `build_tiny_backbone(tmp_path / "backbone", texts)` (or the `tiny_backbone` fixture of conftest.py).
From a shell (e.g. a DVC pipeline in a temporary repository, with `backbone.source` pointing at the result):
`python tests/tiny_backbone.py --sentences data/sentences.jsonl --out /tmp/tiny-backbone`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable

SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "mask_token": "[MASK]"}


def build_tiny_backbone(out_dir: str | Path, texts: Iterable[str], *, seed: int = 0, vocab_size: int = 2000,
                        hidden_size: int = 32, num_hidden_layers: int = 2, num_attention_heads: int = 2,
                        intermediate_size: int = 64, max_position_embeddings: int = 256) -> Path:
    """Write a random, seeded BertModel and a WordPiece tokenizer trained on `texts` to `out_dir`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = list(SPECIAL_TOKENS.values())

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, min_frequency=1,
                                        show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=max_position_embeddings,
                                   **SPECIAL_TOKENS)
    fast.save_pretrained(out_dir)

    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings, pad_token_id=tokenizer.token_to_id("[PAD]"),
        architectures=["BertModel"],
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = BertModel(config)
    finally:
        torch.random.set_rng_state(state)
    model.save_pretrained(out_dir)
    (out_dir / "backbone.json").write_text(json.dumps({"source": "tests/tiny_backbone.py", "seed": seed}) + "\n")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a tiny random BERT backbone for tests.")
    parser.add_argument("--sentences", type=Path, required=True, help="sentences JSON Lines (a `text` per line)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    lines = args.sentences.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    print(build_tiny_backbone(args.out, texts, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
