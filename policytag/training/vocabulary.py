"""A classifier's vocabulary pruned to the tokens a text sample uses: most of multilingual-e5-small's weights are its
250,037-row embedding matrix, and a student that tags English and Vietnamese needs about a quarter of it.

What is kept (`kept_token_ids`): every token the tokenizer makes of a sample (the most frequent words of the chosen
languages from wordfreq's lists, each lower-case, capitalised and upper-case, alone and after an opening bracket,
quote or dash; and the texts given, e.g. the student's training sentences), every token of at most one character
(after the word-start mark), every token without a letter (numbers, punctuation), and the special tokens.

Why the tokenization stays the same (`prune_vocabulary`): the tokenizer splits text into words at whitespace and
segments each word on its own, choosing the best segmentation the vocabulary offers (Unigram) or the longest
pieces (WordPiece). A word whose segmentation uses only kept tokens is therefore segmented exactly as before, and
its tokens map to the same embedding rows. A word with a dropped token is segmented into smaller kept pieces,
down to single characters, never into an unknown id; only characters the full vocabulary lacks become <unk>, as
before. The pruned model is a standard classifier directory (smaller `vocab_size`, its own tokenizer.json).
"""

from __future__ import annotations

import json
import tempfile
from typing import Iterable, Sequence

LEADING_MARKS = ("(", "\u201c", '"', "-")
"""Marks a word often follows without a space: the word is then a continuation token ("(The" -> "▁(", "The")."""
WORD_START_MARKS = ("\u2581", "##")  # SentencePiece's word start; WordPiece's continuation


class VocabularyError(ValueError):
    """The tokenizer cannot be pruned (a model type other than Unigram or WordPiece), or the sample is missing."""


def sample_words(languages: Sequence[str], top_words: int) -> list[str]:
    """The `top_words` most frequent words of each language (wordfreq), in the forms text writes them in."""
    try:
        import wordfreq
    except ImportError:
        raise VocabularyError("vocabulary pruning reads wordfreq's word lists: pip install 'policytag[train]' "
                              "(or set distill.vocabulary_languages: [] to keep the whole vocabulary)") from None
    words: list[str] = []
    for language in languages:
        try:
            listed = wordfreq.top_n_list(language, top_words)
        except LookupError:
            listed = []
        if not listed:
            raise VocabularyError(f"wordfreq has no word list for {language!r} (distill.vocabulary_languages)")
        for word in listed:
            for form in dict.fromkeys((word, word.capitalize(), word.upper())):
                words += [form, *(mark + form for mark in LEADING_MARKS)]
    return words


def _pieces(model: dict) -> list[str]:
    """The tokenizer model's tokens, by id."""
    if model["type"] == "Unigram":
        return [piece for piece, _score in model["vocab"]]
    if model["type"] == "WordPiece":
        pieces = [""] * len(model["vocab"])
        for piece, token_id in model["vocab"].items():
            pieces[token_id] = piece
        return pieces
    raise VocabularyError(f"pruning handles Unigram and WordPiece tokenizers, not {model['type']}; set "
                          "distill.vocabulary_languages: [] to keep this backbone's whole vocabulary")


def _bare(piece: str) -> str:
    for mark in WORD_START_MARKS:
        piece = piece.removeprefix(mark)
    return piece


def _plain_backend(tokenizer):
    """A copy of the tokenizer's Rust backend without padding or truncation (a tokenizer that has been used for
    batches may have both switched on)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def kept_token_ids(tokenizer, texts: Iterable[str]) -> list[int]:
    """The token ids a pruned vocabulary keeps (see the module's docstring): those of `texts` and the safety net."""
    backend = _plain_backend(tokenizer)
    pieces = _pieces(json.loads(backend.to_str())["model"])
    kept = {token_id for token_id, piece in enumerate(pieces)
            if len(_bare(piece)) <= 1 or not any(character.isalpha() for character in piece)}
    kept.update(tokenizer.all_special_ids)
    # Each word is segmented on its own (see the module's docstring), so texts joined by spaces give the same tokens
    # as each text alone, several times faster than a batch of 1.6 million one-word texts.
    texts = list(texts)
    chunks = [" ".join(texts[start:start + JOINED_TEXTS]) for start in range(0, len(texts), JOINED_TEXTS)]
    for encoding in backend.encode_batch(chunks, add_special_tokens=False):
        kept.update(encoding.ids)
    return sorted(kept)


JOINED_TEXTS = 1000


def _pruned_tokenizer_spec(spec: dict, new_id: dict[int, int]) -> dict:
    """tokenizer.json with only the tokens of `new_id` (old id -> new id)."""
    model = spec["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [entry for token_id, entry in enumerate(model["vocab"]) if token_id in new_id]
        if model.get("unk_id") is not None:
            model["unk_id"] = new_id[model["unk_id"]]
    else:  # WordPiece (_pieces refused the rest)
        model["vocab"] = {piece: new_id[token_id] for piece, token_id in model["vocab"].items() if token_id in new_id}
    for added in spec.get("added_tokens") or []:
        added["id"] = new_id[added["id"]]
    _renumber_post_processor(spec.get("post_processor"), new_id)
    return spec


def _renumber_post_processor(processor: dict | None, new_id: dict[int, int]) -> None:
    if not processor:
        return
    if processor["type"] == "Sequence":
        for inner in processor["processors"]:
            _renumber_post_processor(inner, new_id)
    elif processor["type"] == "TemplateProcessing":
        for special in processor["special_tokens"].values():
            special["ids"] = [new_id[token_id] for token_id in special["ids"]]
    elif processor["type"] in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            processor[key][1] = new_id[processor[key][1]]


def prune_vocabulary(model, tokenizer, kept_ids: Sequence[int]):
    """(model, tokenizer) with only the tokens `kept_ids` (sorted, special tokens among them): the embedding rows
    and the tokenizer's entries of the other ids are dropped and the rest renumbered in order. `model` is changed
    in place (a SentenceTagger); the tokenizer returned is a new one."""
    import torch
    from transformers import AutoTokenizer

    kept_ids = sorted(set(kept_ids))
    missing = set(tokenizer.all_special_ids) - set(kept_ids)
    if missing:
        raise VocabularyError(f"the pruned vocabulary must keep the special tokens (ids {sorted(missing)})")
    new_id = {old: new for new, old in enumerate(kept_ids)}
    spec = _pruned_tokenizer_spec(json.loads(tokenizer.backend_tokenizer.to_str()), new_id)
    with tempfile.TemporaryDirectory(prefix="policytag-vocabulary-") as scratch:
        tokenizer.save_pretrained(scratch)
        with open(f"{scratch}/tokenizer.json", "w", encoding="utf-8") as handle:
            json.dump(spec, handle, ensure_ascii=False)
        pruned_tokenizer = AutoTokenizer.from_pretrained(scratch)

    embeddings = model.get_input_embeddings()
    encoder_config = model.config.encoder_config
    pad = encoder_config.pad_token_id
    rows = torch.nn.Embedding(len(kept_ids), embeddings.embedding_dim,
                              padding_idx=new_id[pad] if pad is not None else None)
    with torch.no_grad():
        rows.weight.copy_(embeddings.weight[torch.tensor(kept_ids, device=embeddings.weight.device)])
    rows.weight.requires_grad_(embeddings.weight.requires_grad)
    model.set_input_embeddings(rows.to(embeddings.weight.device))
    encoder_config.vocab_size = len(kept_ids)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if getattr(encoder_config, key, None) is not None:
            setattr(encoder_config, key, new_id[getattr(encoder_config, key)])
    return model, pruned_tokenizer


def same_tokens_share(tokenizer, pruned_tokenizer, kept_ids: Sequence[int], texts: Sequence[str]) -> float:
    """The share of `texts` the pruned tokenizer turns into the same tokens as the full one."""
    if not texts:
        return 1.0
    new_id = {old: new for new, old in enumerate(sorted(set(kept_ids)))}
    full = _plain_backend(tokenizer).encode_batch(list(texts))
    pruned = _plain_backend(pruned_tokenizer).encode_batch(list(texts))
    same = sum([new_id.get(token_id, -1) for token_id in a.ids] == b.ids for a, b in zip(full, pruned))
    return round(same / len(texts), 4)
