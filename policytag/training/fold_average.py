"""The classifier as the average of the cross-validation fold models' weights (a "uniform model soup").

The crossval stage fits the train recipe once per grouped fold, each fold model on the other folds' documents; all
start from the same pretrained encoder and head prior, train the same layers with the same schedule, and stay close
to their start. Averaging their trained weights gives one model of the same size and speed that has learned from every
train and validation document, without a further fine-tuning run: the `train` stage's `train.final_model:
fold_average` (params.yaml). The crossval stage writes each fold model's trained parameters (the top encoder layers
and the head; everything frozen is the backbone's and is not stored) to
models/crossval/<run>.folds/fold-<k>.safetensors; this module writes and reads them and builds the averaged model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch

from policytag.labels import LABEL_NAMES
from policytag.model import SentenceTagger
from policytag.training.params import TrainParams

FOLD_FILE = "fold-{fold}.safetensors"


class FoldWeightsError(ValueError):
    """Fold weights that cannot make the classifier; the message names the files and what to rerun."""


def folds_dir(crossval_dir: str | os.PathLike, run: str) -> Path:
    """Where the crossval stage keeps run `run`'s fold models (models/crossval/<run>.folds)."""
    return Path(crossval_dir) / f"{run}.folds"


def trained_parameters(model: SentenceTagger) -> dict[str, torch.Tensor]:
    """The parameters that training changed (requires_grad), by name, float32 and contiguous."""
    return {name: parameter.detach().float().contiguous().cpu()
            for name, parameter in model.named_parameters() if parameter.requires_grad}


def save_fold_weights(directory: str | os.PathLike, fold: int, model: SentenceTagger, facts: dict) -> Path:
    """Write fold `fold`'s trained parameters, with `facts` (JSON-able: what the fold was fitted on) as metadata."""
    from safetensors.torch import save_file

    path = Path(directory) / FOLD_FILE.format(fold=fold)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(trained_parameters(model), str(path), metadata={"facts": json.dumps(facts, sort_keys=True)})
    return path


def fold_files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("fold-*.safetensors"), key=lambda path: int(path.stem.split("-")[1]))
    if not files:
        raise FoldWeightsError(f"{directory}: no fold models (fold-<k>.safetensors); rerun the crossval stage "
                               "(`dvc repro crossval`) with the transformer in params.yaml crossval.models")
    return files


def averaged_weights(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the fold files' tensors; every file must hold the same names and shapes."""
    from safetensors.torch import load_file

    total: dict[str, torch.Tensor] = {}
    for path in files:
        weights = load_file(str(path))
        if total and (weights.keys() != total.keys()
                      or any(weights[name].shape != total[name].shape for name in total)):
            raise FoldWeightsError(f"{path}: holds other parameters than {files[0].name}; the fold models come from "
                                   "different recipes: rerun `dvc repro crossval`")
        for name, tensor in weights.items():
            total[name] = total[name] + tensor.double() if name in total else tensor.double()
    return {name: (tensor / len(files)).float() for name, tensor in total.items()}


def fold_facts(files: Sequence[Path]) -> list[dict]:
    from safetensors import safe_open

    facts = []
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            facts.append(json.loads((handle.metadata() or {}).get("facts", "{}")))
    return facts


def fold_average_model(backbone_dir: str | os.PathLike, params: TrainParams, crossval_dir: str | os.PathLike,
                       run: str = "transformer", device: str | torch.device = "cpu") -> tuple[SentenceTagger, dict]:
    """The backbone's encoder with the fold models' averaged trained parameters loaded over it (in eval mode), and
    what it was made of: the fold files and each fold's facts."""
    files = fold_files(folds_dir(crossval_dir, run))
    average = averaged_weights(files)
    model = SentenceTagger.from_backbone(backbone_dir, LABEL_NAMES, classifier_dropout=params.dropout,
                                         max_length=params.max_length)
    own = dict(model.named_parameters())
    unknown = sorted(set(average) - set(own))
    if unknown or any(own[name].shape != tensor.shape for name, tensor in average.items()):
        raise FoldWeightsError(f"{files[0].parent}: the fold models do not fit the backbone in {backbone_dir} "
                               f"(unknown or reshaped: {', '.join(unknown) or 'shapes differ'}); rerun "
                               "`dvc repro crossval`")
    model.load_state_dict(average, strict=False)
    model.to(device).eval()
    return model, {"fold_files": [path.name for path in files], "folds": fold_facts(files)}
