"""The sentence classifier, defined once: trained by policytag/training/train.py, loaded by the tagger.

`SentenceTagger` is a BERT encoder (multilingual-e5-small by default), attention-mask mean pooling (the pooling e5
was trained with), dropout and one linear layer with an output per label; sigmoid scores, so a sentence may carry
any number of labels, or none. It is a standard `PreTrainedModel`: `save_pretrained` writes config.json and
model.safetensors, `from_pretrained` (or `AutoModel`, once this module is imported) reads them back, with no
pickle and no remote code. A classifier directory also holds the tokenizer and `thresholds.json`, the per-label
decision thresholds; `Classifier` loads the three together for inference.

e5 is a retriever trained on "query: ..." / "passage: ..." pairs; `encoder_text` is the one place that prefixes
(and NFC-normalises) a sentence before it reaches the tokenizer, for training and tagging alike.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from policytag.labels import LABEL_NAMES, validate_labels
from policytag.text import normalise_text

QUERY_PREFIX = "query: "
"""What e5 expects before a text it embeds as a query; the label descriptions get it too (see policytag/training/)."""
DEFAULT_MAX_LENGTH = 128
THRESHOLDS_FILE = "thresholds.json"
WEIGHTS_FILE = "model.safetensors"


def encoder_text(text: str, prefix: str = QUERY_PREFIX) -> str:
    """The string the tokenizer sees for a sentence: NFC-normalised, with e5's prefix."""
    return prefix + normalise_text(text)


class SentenceTaggerConfig(PreTrainedConfig):
    r"""Configuration of a `SentenceTagger`.

    encoder_config (`BertConfig` or dict): the encoder's own configuration (the backbone's config.json).
    label_names (`list[str]`): the output labels, in output order (schema order when trained by policytag).
    pooling (`str`): how token states become a sentence vector; only "mean" (over the attention mask).
    classifier_dropout (`float`): dropout on the pooled vector before the linear head.
    input_prefix (`str`): prepended to every text before tokenising (e5's "query: ").
    max_length (`int`): tokens per sentence at inference (longer ones are truncated).
    int8_float_layers (`int`): the top encoder layers that the int8 export keeps in float (the layers fine-tuning
        changed; policytag/fast_scorer.py); 0 quantises every layer.
    """

    model_type = "policytag_sentence_tagger"
    # Not named `backbone_config`: transformers treats that key as a vision backbone (timm / hub resolution).
    sub_configs_defaults = {"encoder_config": BertConfig}

    encoder_config: dict | PreTrainedConfig | None = None
    label_names: list[str] | None = None
    pooling: str = "mean"
    classifier_dropout: float = 0.1
    input_prefix: str = QUERY_PREFIX
    max_length: int = DEFAULT_MAX_LENGTH
    int8_float_layers: int = 0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.label_names = list(self.label_names) if self.label_names is not None else list(LABEL_NAMES)
        if self.pooling != "mean":
            raise ValueError(f"unknown pooling {self.pooling!r}; only 'mean' is implemented")
        # Standard fields, so that every tool of the Hugging Face ecosystem sees which output is which label.
        self.id2label = dict(enumerate(self.label_names))
        self.label2id = {name: i for i, name in enumerate(self.label_names)}
        self.problem_type = "multi_label_classification"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token states where attention_mask is 1 (padding excluded), as e5 embeds."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceTagger(PreTrainedModel):
    """BERT encoder + mean pooling + dropout + linear head; forward returns one logit per label."""

    config_class = SentenceTaggerConfig
    config: SentenceTaggerConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _no_split_modules = ["BertEmbeddings", "BertLayer"]

    def __init__(self, config: SentenceTaggerConfig):
        super().__init__(config)
        self.encoder = BertModel(config.encoder_config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.head = nn.Linear(config.encoder_config.hidden_size, len(config.label_names))
        self.post_init()

    def _init_weights(self, module):
        if module is getattr(self, "head", None):
            std = getattr(self.config.encoder_config, "initializer_range", 0.02)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)
        else:
            super()._init_weights(module)

    @classmethod
    def from_backbone(cls, backbone_dir: str | os.PathLike, label_names: Sequence[str] = LABEL_NAMES,
                      classifier_dropout: float = 0.1, max_length: int = DEFAULT_MAX_LENGTH) -> "SentenceTagger":
        """A new tagger whose encoder is the pretrained BERT checkpoint in `backbone_dir` (head initialised at
        random; policytag/training/ re-initialises it)."""
        encoder = BertModel.from_pretrained(str(backbone_dir))  # with BERT's pooler, as the backbone is saved
        encoder_config = BertConfig.from_dict(encoder.config.to_dict())
        encoder_config.name_or_path = ""  # no machine's path in the classifier's config.json
        config = SentenceTaggerConfig(
            encoder_config=encoder_config, label_names=list(label_names),
            classifier_dropout=classifier_dropout, max_length=max_length,
        )
        model = cls(config)
        state = {name: value for name, value in encoder.state_dict().items() if not name.startswith("pooler.")}
        model.encoder.load_state_dict(state, strict=True)
        return model

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled sentence vectors (before dropout and head)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, pos_weight: torch.Tensor | None = None,
                **kwargs) -> SequenceClassifierOutput:
        """Logits [batch, labels]; with multi-hot `labels`, also the mean BCE-with-logits loss, where
        `pos_weight` [labels] weighs each label's positives (neg/pos for rare labels)."""
        logits = self.head(self.dropout(self.embed(input_ids, attention_mask)))
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, labels.to(logits.dtype), pos_weight=pos_weight
            )
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(SentenceTaggerConfig.model_type, SentenceTaggerConfig, exist_ok=True)
AutoModel.register(SentenceTaggerConfig, SentenceTagger, exist_ok=True)


def tokenize(tokenizer, texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH,
             prefix: str = QUERY_PREFIX, padding: bool | str = "longest"):
    """Tokenise sentences the way the model was trained on them: NFC, prefix, truncation to `max_length`."""
    return tokenizer(
        [encoder_text(text, prefix) for text in texts], padding=padding, truncation=True,
        max_length=max_length, return_token_type_ids=False, return_tensors="pt" if padding else None,
    )


class SentenceTokenizer:
    """Token ids of sentences exactly as `policytag.model.tokenize` makes them (NFC, the model's prefix, special
    tokens, truncation to max_length), from the Rust tokenizer's batch call without offsets or padding: about
    twice as fast as calling the Hugging Face tokenizer, and it runs without the GIL. It works on a copy of the
    tokenizer's backend, so the tokenizer's own settings stay as they are; `from_directory` reads the classifier
    directory's tokenizer.json alone, for a scorer that needs no Hugging Face tokenizer."""

    def __init__(self, tokenizer, max_length: int, prefix: str):
        from tokenizers import Tokenizer

        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._use(Tokenizer.from_str(tokenizer.backend_tokenizer.to_str()), pad_id, max_length, prefix)

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, max_length: int, prefix: str) -> "SentenceTokenizer":
        """The tokenizer of a classifier directory, read from its tokenizer.json (which `save_classifier` writes
        from the Hugging Face tokenizer's own backend) without loading that tokenizer: one copy of the vocabulary
        in memory instead of two, about 300 MB less for multilingual-e5-small's 250,002 tokens. A directory
        without tokenizer.json goes through AutoTokenizer."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        if not (directory / "tokenizer.json").is_file():
            return cls(AutoTokenizer.from_pretrained(str(directory)), max_length, prefix)
        backend = Tokenizer.from_file(str(directory / "tokenizer.json"))
        pad_token = _tokenizer_setting(directory, "pad_token")
        pad_id = backend.token_to_id(pad_token) if pad_token else None
        tokenizer = cls.__new__(cls)
        tokenizer._use(backend, pad_id if pad_id is not None else 0, max_length, prefix)
        return tokenizer

    def _use(self, backend, pad_id: int, max_length: int, prefix: str) -> None:
        self.backend = backend
        self.backend.no_padding()
        self.backend.enable_truncation(max_length)
        self.prefix = prefix
        self.pad_id = pad_id
        self._encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._encode([encoder_text(text, self.prefix) for text in texts])]


def _tokenizer_setting(directory: Path, key: str) -> str | None:
    """A special token's text from tokenizer_config.json (written as a string, or as {"content": ...})."""
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text(encoding="utf-8")).get(key)
    return value.get("content") if isinstance(value, dict) else value


def padded_batches(token_ids: Sequence[Sequence[int]], pad_id: int, max_sentences: int,
                   max_tokens: int | None = None, width_multiple: int = 1):
    """(rows, input_ids, attention_mask) batches over sentences sorted by token count: each holds at most
    `max_sentences` sentences and, when given, `max_tokens` tokens (padding included), and is padded only to its
    own longest sentence, rounded up to `width_multiple` (8 on a GPU: fewer distinct shapes, aligned for its
    matrix units). `rows` are the sentences' indices in `token_ids`."""
    lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
    order = np.argsort(lengths, kind="stable")
    widths = -(-lengths[order] // width_multiple) * width_multiple  # in sorted order, so ascending
    start = 0
    while start < len(order):
        stop = min(start + max_sentences, len(order))
        if max_tokens:  # k sentences from `start` take k * (the k-th one's width) tokens
            padded_sizes = np.arange(1, stop - start + 1) * widths[start:stop]
            stop = start + max(1, int(np.searchsorted(padded_sizes, max_tokens, side="right")))
        rows = order[start:stop]
        row_lengths = lengths[rows]
        attention_mask = np.arange(widths[stop - 1]) < row_lengths[:, None]
        input_ids = np.full(attention_mask.shape, pad_id, dtype=np.int64)
        input_ids[attention_mask] = np.fromiter(itertools.chain.from_iterable(token_ids[i] for i in rows),
                                                dtype=np.int64, count=int(row_lengths.sum()))
        yield rows, input_ids, attention_mask.astype(np.int64)
        start = stop


def write_thresholds(directory: str | os.PathLike, labels: Sequence[str], thresholds: Sequence[float],
                     int8_thresholds: Sequence[float] | None = None) -> Path:
    """thresholds.json: the labels, their thresholds, and optionally the int8 model's own thresholds (the int8 export
    scores a little differently from fp32; its thresholds make it decide as fp32 does, see
    policytag/training/int8_thresholds.py)."""
    if len(labels) != len(thresholds) or (int8_thresholds is not None and len(int8_thresholds) != len(labels)):
        raise ValueError(f"{len(labels)} labels but {len(thresholds)} thresholds")
    path = Path(directory) / THRESHOLDS_FILE
    payload = {"labels": list(labels), "thresholds": [round(float(t), 6) for t in thresholds]}
    if int8_thresholds is not None:
        payload["int8_thresholds"] = [round(float(t), 6) for t in int8_thresholds]
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return path


def read_thresholds(directory: str | os.PathLike, precision: str = "fp32") -> tuple[list[str], np.ndarray]:
    """Labels and thresholds of a classifier directory; with precision "int8", the int8 thresholds where the file
    has them (else the fp32 ones)."""
    path = Path(directory) / THRESHOLDS_FILE
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        key = "int8_thresholds" if precision == "int8" and "int8_thresholds" in payload else "thresholds"
        labels, thresholds = list(payload["labels"]), np.asarray(payload[key], dtype=np.float32)
    except FileNotFoundError:
        raise ClassifierError(f"{path} is missing: not a classifier directory; train one with "
                              "`dvc repro train` (or python -m policytag.training.train)") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ClassifierError(f"{path}: malformed thresholds file ({error}); retrain the classifier") from None
    if len(labels) != len(thresholds):
        raise ClassifierError(f"{path}: {len(labels)} labels but {len(thresholds)} thresholds")
    return labels, thresholds


def save_classifier(directory: str | os.PathLike, model: SentenceTagger, tokenizer,
                    thresholds: Sequence[float]) -> Path:
    """Write checkpoint (safetensors), tokenizer and thresholds.json into `directory` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    write_thresholds(directory, model.config.label_names, thresholds)
    return directory


class ClassifierError(RuntimeError):
    """A classifier directory that cannot be loaded; the message names it and says what to do."""


CHECKED_JSON_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def check_classifier_files(directory: str | os.PathLike) -> None:
    """Raise ClassifierError naming the file when a file of the classifier directory is damaged (truncated by an
    interrupted copy or download, or not what its name says): the weights' safetensors header must describe the
    whole file, and its JSON files must parse. Cheap: the weights are not read."""
    from safetensors import safe_open

    directory = Path(directory)
    fix = "copy or pull it again (`dvc pull`), or retrain (`dvc repro train`)"
    weights = directory / WEIGHTS_FILE
    try:
        with safe_open(str(weights), framework="np"):
            pass
    except FileNotFoundError:
        raise ClassifierError(f"{weights} is missing; {fix}") from None
    except Exception as error:  # SafetensorError: header incomplete, file shorter than its header says, ...
        raise ClassifierError(f"{weights} is damaged or truncated ({error}); {fix}") from None
    for name in CHECKED_JSON_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ClassifierError(f"{path} is damaged or truncated (not valid JSON: {error}); {fix}") from None


def weights_version(directory: str | os.PathLike) -> str:
    """A short content hash of the weights file: the same weights give the same version anywhere."""
    digest = hashlib.sha256()
    with open(Path(directory) / WEIGHTS_FILE, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


@dataclass
class Classifier:
    """A trained SentenceTagger with its tokenizer and thresholds, ready to score sentences."""

    model: SentenceTagger
    tokenizer: object
    labels: list[str]
    thresholds: np.ndarray
    model_version: str
    device: torch.device
    token_ids: SentenceTokenizer | None = field(default=None, repr=False)  # made at the first call

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device | None = None) -> "Classifier":
        directory = Path(directory)
        if not (directory / WEIGHTS_FILE).is_file() or not (directory / "config.json").is_file():
            raise ClassifierError(f"{directory} holds no classifier (config.json and {WEIGHTS_FILE} expected); "
                                  "train one with `dvc repro train` or pass the right directory")
        check_classifier_files(directory)
        labels, thresholds = read_thresholds(directory)
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = SentenceTagger.from_pretrained(str(directory)).to(device).eval()
        if list(model.config.label_names) != labels:
            raise ClassifierError(f"{directory}: thresholds.json labels {labels} differ from the model's "
                                  f"{model.config.label_names}; retrain the classifier")
        validate_labels(labels)
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        return cls(model, tokenizer, labels, thresholds, weights_version(directory), device)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sigmoid scores [len(texts), len(labels)], in input order. Sentences are batched by token count (each
        batch padded to its longest), so that little time goes on padding."""
        texts = list(texts)
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if self.token_ids is None:
            config = self.model.config
            self.token_ids = SentenceTokenizer(self.tokenizer, config.max_length, config.input_prefix)
        self.model.eval()
        with torch.inference_mode():
            for rows, input_ids, attention_mask in padded_batches(self.token_ids(texts), self.token_ids.pad_id,
                                                                  batch_size):
                logits = self.model(input_ids=torch.from_numpy(input_ids).to(self.device),
                                    attention_mask=torch.from_numpy(attention_mask).to(self.device)).logits
                scores[rows] = torch.sigmoid(logits.float()).cpu().numpy()
        return scores

    def decide(self, scores: np.ndarray) -> list[list[str]]:
        """Label names whose score reaches the label's threshold, for each row of `scores`."""
        chosen = np.asarray(scores) >= self.thresholds
        return [[label for label, on in zip(self.labels, row) if on] for row in chosen]

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[list[str]]:
        return self.decide(self.predict_proba(texts, batch_size=batch_size))
