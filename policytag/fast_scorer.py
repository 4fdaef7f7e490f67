"""Choosing how sentences are scored: int8 ONNX Runtime on a CPU, bf16 PyTorch on a GPU, or the fp32 PyTorch
classifier (the reference the faster paths are checked against).

The int8 path: the classifier exported once with torch.onnx, checked against PyTorch, quantised with ONNX Runtime
(weights int8 per channel, reduced range; activations per token, policytag.int8_graph) and scored in batches of
one token count, so a sentence's scores do not depend on its batch. The export is cached under `cache_dir()`,
keyed by the weights, never inside the classifier directory (a DVC output). Why each choice:
docs/architecture.md, "Scoring on a CPU".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from policytag.cpu import available_cores
from policytag.int8_graph import same_length_batches
from policytag.labels import validate_labels
from policytag.model import (
    Classifier,
    ClassifierError,
    SentenceTagger,
    SentenceTaggerConfig,
    SentenceTokenizer,
    WEIGHTS_FILE,
    padded_batches,
    read_thresholds,
    weights_version,
)

PRECISIONS = ("auto", "fp32", "int8", "bf16")
INT8_BATCH_SIZE = 32
"""At most this many sentences per ONNX Runtime call; a call holds sentences of one token count only."""
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 64, 1024
"""Sentences per PyTorch forward pass by default, on a CPU and on a GPU."""
GPU_MAX_TOKENS, GPU_WIDTH_MULTIPLE = 1 << 16, 8
"""On a GPU a batch also stops at this many tokens (padding included), so that long sentences come in smaller
batches and short ones in larger, and its width is a multiple of 8."""
CALL_SENTENCES, GPU_CALL_SENTENCES = 512, 65536
"""Sentences to hand a scorer per predict_proba call when tagging (`call_size`): on a GPU a call ends in a
synchronisation, so calls are large there."""
GPU_SLICE = 16384
"""On a GPU, the sentences of one predict_proba call are tokenised this many at a time, each slice in a
background thread while the GPU works through the slice before."""
ONNX_RECIPE = ("torch.onnx dynamo opset18 eager-attention | quantize_dynamic QInt8 per_channel reduce_range, "
               "config.int8_float_layers top layers float | per-token activations, row-wise pooling | v3")
"""What the cached file is; change it when the export or quantisation changes, so that old caches are not used."""
ONNX_FILE = "model.int8.onnx"
CACHE_ENV = "POLICYTAG_CACHE_DIR"


def configure_threads() -> int:
    """Use every core available to the process, one PyTorch intra-op thread each."""
    cores = available_cores()
    torch.set_num_threads(cores)
    return cores


def cache_dir() -> Path:
    """$POLICYTAG_CACHE_DIR, else $XDG_CACHE_HOME/policytag, else ~/.cache/policytag."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "policytag"


def onnx_cache_path(model_dir: str | os.PathLike, model_version: str | None = None) -> Path:
    """Where the int8 export of the classifier in `model_dir` lives: one folder per weights + config + recipe."""
    model_dir = Path(model_dir)
    model_version = model_version or weights_version(model_dir)
    digest = hashlib.sha256((model_dir / "config.json").read_bytes() + ONNX_RECIPE.encode()).hexdigest()[:8]
    return cache_dir() / "onnx" / f"{model_version}-{digest}" / ONNX_FILE


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * logits.astype(np.float32)))).astype(np.float32)


@contextlib.contextmanager
def _quiet():
    """The exporter and the quantiser log advice meant for their own developers (torchvision is missing, run
    pre-processing first); policytag says what it is doing itself. Errors still raise."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder:  # else logging.warning() would install a stderr handler on the root logger for good
        root.addHandler(placeholder)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        if placeholder:
            root.removeHandler(placeholder)


@contextlib.contextmanager
def _export_lock(onnx_path: Path):
    """Held while exporting, so that processes starting together (Ray actors on one node) export once: the others
    wait, then find the file. Where there is no fcntl, each exports (the result is the same, written atomically)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    onnx_path.parent.parent.mkdir(parents=True, exist_ok=True)
    with open(onnx_path.parent.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Logits(torch.nn.Module):
    """SentenceTagger.forward as a plain function of two tensors, for the exporter."""

    def __init__(self, model: SentenceTagger):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _probe_inputs(config: SentenceTaggerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Three rows of different lengths (one padded), not the shapes the export traced with, to check that the
    batch and sequence axes stay dynamic."""
    generator = np.random.default_rng(0)
    vocab = config.encoder_config.vocab_size
    ids = generator.integers(5, vocab, size=(3, 23), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 17:] = 0
    ids[mask == 0] = config.encoder_config.pad_token_id or 0
    return ids, mask


def export_int8_onnx(model_dir: str | os.PathLike, out_path: str | os.PathLike, per_token: bool = True) -> Path:
    """Export the classifier in `model_dir` to ONNX, check it against PyTorch, quantise it to int8 and write it
    to `out_path` atomically (a partial file never has the final name). `per_token=False` keeps ONNX Runtime's
    per-batch activation scales (benchmarks/int8_per_token.py compares the two). The top
    `config.int8_float_layers` encoder layers stay float: those fine-tuning changed, whose quantisation error
    moves decisions most (on the fold-average classifier, keeping its 3 trained layers float cut the mean
    absolute logit error from 0.217 to 0.128); the frozen pretrained layers below take int8's speed."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from policytag.int8_graph import check_batch_invariance, layer_nodes, per_token_activations, row_wise_pooling

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # The eager attention exports as plain MatMul/Softmax, which quantises and fuses well in ONNX Runtime.
    model = SentenceTagger.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    max_positions = model.config.encoder_config.max_position_embeddings
    layers, float_layers = model.config.encoder_config.num_hidden_layers, model.config.int8_float_layers
    if not 0 <= float_layers <= layers:
        raise ValueError(f"{model_dir}/config.json: int8_float_layers {float_layers} is not between 0 and the "
                         f"encoder's {layers} layers; retrain, or edit it to a number in that range")
    example = (torch.full((2, 16), 5, dtype=torch.long), torch.ones(2, 16, dtype=torch.long))
    batch, sequence = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1, max=max_positions)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out_path.parent))
    try:
        fp32_path, int8_path = work / "model.fp32.onnx", work / ONNX_FILE
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                _Logits(model), example, str(fp32_path), input_names=["input_ids", "attention_mask"],
                output_names=["logits"], opset_version=18, dynamo=True, external_data=True, verbose=False,
                dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
            )
        ids, mask = _probe_inputs(model.config)
        with torch.no_grad():
            expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
        session = onnxruntime.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
        got = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        del session
        tolerance = 1e-3 * max(1.0, float(np.abs(expected).max()))
        if got.shape != expected.shape or not np.allclose(got, expected, atol=tolerance, rtol=0):
            raise RuntimeError(f"the ONNX export of {model_dir} does not reproduce PyTorch's logits "
                               f"(max difference {np.abs(got - expected).max():.2e})")
        graph = onnx.load(str(fp32_path), load_external_data=False)  # the node scopes are enough here
        keep_float = layer_nodes(graph, range(layers - float_layers, layers))
        with _quiet():
            quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, nodes_to_exclude=keep_float)
        if per_token:
            onnx.save(row_wise_pooling(per_token_activations(onnx.load(str(int8_path)))), str(int8_path))
            session = onnxruntime.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
            check_batch_invariance(session, model.config.encoder_config.vocab_size,
                                   model.config.encoder_config.pad_token_id or 0)
            del session
        (work / "export.json").write_text(json.dumps({
            "recipe": ONNX_RECIPE, "model_version": weights_version(model_dir), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }, indent=1) + "\n", encoding="utf-8")
        os.replace(work / "export.json", out_path.parent / "export.json")
        os.replace(int8_path, out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_path


class OnnxScorer:
    """The classifier as an int8 ONNX Runtime session on the CPU; tokenises with the classifier's own tokenizer
    (as policytag.model.tokenize does) and scores sentences of one token count at a time (nothing padded), so that
    a sentence's scores do not depend on the other sentences of the call."""

    def __init__(self, model_dir: str | os.PathLike, batch_size: int = INT8_BATCH_SIZE, threads: int | None = None):
        import onnxruntime

        model_dir = Path(model_dir)
        if not (model_dir / WEIGHTS_FILE).is_file() or not (model_dir / "config.json").is_file():
            raise ClassifierError(f"{model_dir} holds no classifier (config.json and {WEIGHTS_FILE} expected); "
                                  "train one with `dvc repro train` or pass the right directory")
        self.labels, self.thresholds = read_thresholds(model_dir, precision="int8")
        self.config = SentenceTaggerConfig.from_pretrained(str(model_dir))
        if list(self.config.label_names) != self.labels:
            raise ClassifierError(f"{model_dir}: thresholds.json labels {self.labels} differ from the model's "
                                  f"{self.config.label_names}; retrain the classifier")
        validate_labels(self.labels)
        self.model_version = weights_version(model_dir)
        self.batch_size = batch_size
        self.onnx_path = onnx_cache_path(model_dir, self.model_version)
        self.exported = False  # True when this load made the export (the cache had none)
        if not self.onnx_path.is_file():
            with _export_lock(self.onnx_path):
                if not self.onnx_path.is_file():
                    print(f"policytag: exporting {model_dir} to int8 ONNX, once per model (a minute or two for "
                          f"multilingual-e5-small) -> {self.onnx_path}", file=sys.stderr, flush=True)
                    started = time.perf_counter()
                    export_int8_onnx(model_dir, self.onnx_path)
                    self.exported = True
                    print(f"policytag: int8 ONNX model ready in {time.perf_counter() - started:.0f} s",
                          file=sys.stderr, flush=True)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        # Worker threads sleep between calls instead of spinning: a few % slower alone, but they leave the cores to
        # tokenisation, to other scorers (Ray actors) and to anyone sharing the machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        # tokenizer.json alone: the Hugging Face tokenizer would hold a second copy of the vocabulary
        self.token_ids = SentenceTokenizer.from_directory(model_dir, self.config.max_length, self.config.input_prefix)
        self.call_size, self.on_gpu = CALL_SENTENCES, False
        self.description = (f"onnxruntime {onnxruntime.__version__} int8 on CPU, "
                            f"{options.intra_op_num_threads} threads, batch {batch_size}")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Sigmoid scores [len(texts), len(labels)], in input order."""
        texts = list(texts)
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for rows, input_ids, attention_mask in same_length_batches(self.token_ids(texts), self.batch_size):
            logits = self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
            scores[rows] = sigmoid(logits)
        return scores


class TorchScorer:
    """The PyTorch classifier: fp32 (the reference the fast paths are checked against) or bf16 on a GPU.

    Sentences are sorted by token count and batched, each batch padded only to its longest. On a GPU, batches
    also stop at `max_tokens` and are as wide as a multiple of 8; inputs go through pinned memory without
    blocking, scores stay on the GPU until the call ends, and each slice of `slice_size` sentences is tokenised
    in a background thread while the GPU works through the slice before."""

    def __init__(self, classifier: Classifier, batch_size: int, max_tokens: int | None = None):
        self.classifier = classifier
        self.labels = classifier.labels
        self.thresholds = classifier.thresholds
        self.model_version = classifier.model_version
        self.batch_size = batch_size
        self.on_gpu = classifier.device.type == "cuda"
        self.max_tokens = max_tokens if max_tokens is not None else (GPU_MAX_TOKENS if self.on_gpu else None)
        self.width_multiple = GPU_WIDTH_MULTIPLE if self.on_gpu else 1
        self.slice_size = GPU_SLICE if self.on_gpu else None  # None: a call is tokenised in one go
        self.call_size = GPU_CALL_SENTENCES if self.on_gpu else CALL_SENTENCES
        config = classifier.model.config
        self.token_ids = SentenceTokenizer(classifier.tokenizer, config.max_length, config.input_prefix)
        dtype = str(classifier.model.dtype).removeprefix("torch.")
        self.description = f"torch {torch.__version__} {dtype} on {classifier.device}, batch {batch_size}" + (
            f" or {self.max_tokens} tokens" if self.max_tokens else "")

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.on_gpu:
            return tensor.pin_memory().to(self.classifier.device, non_blocking=True)
        return tensor

    def _score_slice(self, token_ids: list[list[int]]) -> tuple[np.ndarray, torch.Tensor]:
        """The slice's rows in batch order, and their scores (on the model's device, not yet copied back)."""
        order, scores = [], []
        for rows, input_ids, attention_mask in padded_batches(token_ids, self.token_ids.pad_id, self.batch_size,
                                                              self.max_tokens, self.width_multiple):
            logits = self.classifier.model(input_ids=self._to_device(input_ids),
                                           attention_mask=self._to_device(attention_mask)).logits
            order.append(rows)
            scores.append(torch.sigmoid(logits.float()))
        return np.concatenate(order), torch.cat(scores)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Sigmoid scores [len(texts), len(labels)], in input order."""
        texts = list(texts)
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return scores
        self.classifier.model.eval()
        slice_size = self.slice_size or len(texts)
        starts = range(0, len(texts), slice_size)
        done = []
        with torch.inference_mode(), ThreadPoolExecutor(1, thread_name_prefix="policytag-tokenize") as ahead:
            pending = ahead.submit(self.token_ids, texts[:slice_size])
            for start in starts:
                token_ids = pending.result()
                if start + slice_size < len(texts):
                    pending = ahead.submit(self.token_ids, texts[start + slice_size : start + 2 * slice_size])
                rows, on_device = self._score_slice(token_ids)
                done.append((rows + start, on_device))
            for rows, on_device in done:
                scores[rows] = on_device.cpu().numpy()
        return scores


def load_scorer(model_dir: Path, precision: str = "auto", batch_size: int | None = None, threads: int | None = None):
    """The scorer for `precision`: "auto" is int8 (ONNX Runtime) on a CPU and bf16 (PyTorch) on a GPU; "fp32"
    is the PyTorch reference. If the int8 path cannot be built for "auto", this says why on stderr and falls back
    to fp32; for an explicit "int8" it is an error. `threads`: CPU threads to compute with (default: every core
    available to the process); an ONNX Runtime session cannot change them once it is made."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    on_gpu = torch.cuda.is_available()
    requested = precision
    if precision == "auto":
        precision = "bf16" if on_gpu else "int8"
    if precision == "int8":
        try:
            return OnnxScorer(model_dir, batch_size or INT8_BATCH_SIZE, threads)
        except ClassifierError:
            raise
        except Exception as error:  # a missing package, an exporter that fails on this model, a read-only cache
            reason = f"{type(error).__name__}: {error}"
            if requested == "int8":
                from policytag.model import check_classifier_files

                check_classifier_files(model_dir)  # a damaged file of the classifier is named as such
                advice = "install onnxruntime, onnx and onnxscript, or" if isinstance(error, ImportError) else "or"
                raise ClassifierError(f"cannot build the int8 ONNX model of {model_dir} ({reason}); {advice} "
                                      "use --precision fp32") from error
            print(f"policytag: int8 path unavailable ({reason}); scoring with fp32 PyTorch", file=sys.stderr)
            precision = "fp32"
    if threads:
        torch.set_num_threads(threads)
    else:
        configure_threads()
    classifier = Classifier.load(model_dir)
    if precision == "bf16":
        classifier.model.to(torch.bfloat16)
    default_batch = GPU_BATCH_SIZE if classifier.device.type == "cuda" else CPU_BATCH_SIZE
    return TorchScorer(classifier, batch_size or default_batch)
