"""``featurebench inspect``: layer tables for registry models and Keras files, tensor tables for TFLite."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


def test_registry_vgg16_indices_match_the_classic_cut():
    from featurebench.explain.inspection import format_table, inspect_model

    result = inspect_model("vgg16", weights="none")
    rows = result.rows
    assert len(rows) == 19 and result.totals["params"] == 14_714_688
    assert (rows[15].index, rows[15].name, rows[15].kind) == ("15", "block5_conv1", "Conv2D")
    assert rows[15].shape == "(None, 14, 14, 512)" and rows[15].params == 2_359_808 and rows[15].trainable == "yes"
    assert rows[18].name == "block5_pool" and rows[18].shape == "(None, 7, 7, 512)"
    table = format_table(result)
    assert re.search(r"^15\s+block5_conv1\s+Conv2D\s+\(None, 14, 14, 512\)\s+2,359,808\s+yes$", table, re.M)
    assert "random-init" in table.splitlines()[0]

    # --include-top adds the classifier (MobileNet here: VGG16's 124M-parameter top is slow to initialise).
    top = inspect_model("mobilenet", include_top=True, weights="none")
    assert top.rows[-1].name == "predictions" and top.rows[-1].shape == "(None, 1000)"
    assert "include_top=True" in top.title


def test_keras_file_and_json(tiny_model_file):
    from featurebench.explain.inspection import inspect_model

    result = inspect_model(str(tiny_model_file))
    assert [(r.index, r.kind) for r in result.rows] == [
        ("0", "InputLayer"), ("1", "Rescaling"), ("2", "Conv2D"), ("3", "GlobalAveragePooling2D"), ("4", "Dense")]
    assert [r.name for r in result.rows[2:]] == ["conv", "gap", "embedding"]
    assert result.rows[2].params == 3 * 3 * 3 * 8 + 8 and result.rows[4].shape == "(None, 8)"
    data = json.loads(result.to_json())
    assert data["backend"] == "keras" and data["rows"][4]["name"] == "embedding"


def test_tflite_tensors(coral_extractor_path):
    from featurebench.explain.inspection import format_table, inspect_model

    result = inspect_model(str(coral_extractor_path))
    assert result.backend == "tflite"
    inputs = [row for row in result.rows if row.trainable.startswith("input")]
    assert len(inputs) == 1 and inputs[0].shape == "(1, 224, 224, 3)" and inputs[0].kind == "uint8"
    assert "zero_point=128" in inputs[0].trainable
    outputs = [row for row in result.rows if row.trainable.startswith("output")]
    assert outputs and outputs[0].shape == "(1, 1, 1, 1024)"
    assert "role / quantization" in format_table(result)


def test_missing_file_and_unknown_model():
    from featurebench.errors import FeaturebenchError
    from featurebench.explain.inspection import inspect_model

    with pytest.raises(FeaturebenchError, match="does not exist"):
        inspect_model("nowhere.keras")
    with pytest.raises(FeaturebenchError, match="Unknown model"):
        inspect_model("vgg17")


def test_cli_inspect_and_commands_import_without_tensorflow(tiny_model_file):
    import typer
    from typer.testing import CliRunner

    from featurebench.explain import commands
    from featurebench.training import commands as training_commands

    app = typer.Typer()
    app.command()(commands.inspect)
    app.command()(training_commands.build_images)
    result = CliRunner().invoke(app, ["inspect", str(tiny_model_file), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"][2]["name"] == "conv"

    code = ("import sys, featurebench.finetune, featurebench.finetune.commands, featurebench.finetune.recipes, "
            "featurebench.training, featurebench.training.commands, featurebench.explain.commands; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
