"""`policytag recipes` on the real code path: the crossval stage on a tiny backbone and the keyword dataset, then the
recipes compared on its folds (the current recipe taken from the stage, a variant fitted, the free rows computed)."""

from __future__ import annotations

import json

import pytest
import yaml

from policytag.evaluation import recipes
from policytag.training import crossval

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE = {"epochs": 1, "batch_size": 16, "encoder_lr": 5e-3, "head_lr": 5e-2, "freeze_embeddings": False,
          "trainable_layers": 1, "seed": 13}


def test_recipes_compare_variants_on_the_crossval_folds(keyword_dataset_dir, tiny_backbone, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "train": RECIPE,
        "crossval": {"models": ["zeroshot", "transformer"], "folds": 2},
        "recipes": {"variants": [{"name": "epochs_2", "params": {"epochs": 2}}], "blends": [0.5]},
    }))
    common = ["--params", str(params), "--dataset", str(keyword_dataset_dir), "--backbone", str(tiny_backbone)]
    assert crossval.main([*common, "--out", str(tmp_path / "crossval")]) == 0
    out, report = tmp_path / "recipes.json", tmp_path / "recipes.md"
    argv = [*common, "--crossval", str(tmp_path / "crossval"), "--out", str(out), "--report", str(report)]
    assert recipes.main(argv) == 0, capsys.readouterr().err

    results = json.loads(out.read_text())
    by_name = {result["name"]: result for result in results.values()}
    assert set(by_name) == {"current", "epochs_2", "blend_zeroshot_0.5", "thresholds_per_language"}
    assert by_name["current"]["reused"] == str(tmp_path / "crossval"), "the stage's run of the recipe is not refitted"
    assert by_name["epochs_2"]["changes"] == {"epochs": 2} and by_name["epochs_2"]["seconds"] > 0
    for result in results.values():
        scores = result["scores"]
        assert 0 <= scores["macro_f1"] <= 1 and {"macro_f1_en", "f1_en", "f1"} <= set(scores)
    text = report.read_text()
    for name in by_name:
        assert f"| {name} |" in text

    capsys.readouterr()
    assert recipes.main(argv) == 0
    assert "epochs_2: macro-F1" not in capsys.readouterr().err, "a rerun fits only what is new"
    assert json.loads(out.read_text()) == results
