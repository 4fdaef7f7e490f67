"""benchmarks/truncate_layers.py: a classifier cut to its first K encoder layers loads and scores like any other,
with the kept layers' weights unchanged."""

import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from policytag.model import WEIGHTS_FILE, Classifier

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "truncate_layers.py"


def test_truncated_copy_keeps_the_first_layers(tiny_classifier, tmp_path):
    out = tmp_path / "one-layer"
    result = subprocess.run([sys.executable, str(SCRIPT), str(tiny_classifier), "1", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr

    original, cut = load_file(tiny_classifier / WEIGHTS_FILE), load_file(out / WEIGHTS_FILE)
    assert set(cut) < set(original)
    assert any(".layer.0." in name for name in cut) and not any(".layer.1." in name for name in cut)
    assert all(torch.equal(cut[name], original[name]) for name in cut)

    classifier = Classifier.load(out)
    assert classifier.model.config.encoder_config.num_hidden_layers == 1
    scores = classifier.predict_proba(["The ministry ordered the platform to remove the posts.", "Hello."])
    assert scores.shape == (2, len(classifier.labels))


def test_refuses_more_layers_than_the_model_has(tiny_classifier, tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tiny_classifier), "9", str(tmp_path / "x")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "ask for 1 to 2" in result.stderr
    assert not (tmp_path / "x").exists()
