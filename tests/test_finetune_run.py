"""``finetune`` end to end on a tiny registered body: run folder, metrics.json contract, resume, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from finetune_support import register_tiny, tiny_recipe, tiny_set  # noqa: F401 - fixture

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def documented_keys() -> set[str]:
    """Every key in the first column of the docs/metrics.md table."""
    keys = set()
    for line in DOCS.read_text().splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return keys


def finetune(source, out, recipe, **kwargs):
    from featurebench.finetune.run import FinetuneOptions, run_finetune

    on_epoch = kwargs.pop("on_epoch", None)
    return run_finetune(FinetuneOptions(source=str(source), recipe=recipe, out=str(out), **kwargs), on_epoch=on_epoch)


def test_run_folder_metrics_contract_and_model_as_extractor(tmp_path, tiny_set):
    epochs = []
    result = finetune(tiny_set, tmp_path / "results", tiny_recipe(), on_epoch=epochs.append)
    run = result.run_dir
    assert run == tmp_path / "results" / "flowers__tinybody__finetune-tiny"
    for name in ("metrics.json", "model.keras", "history.json", "monitor.png", "recipe.json", "run.json",
                 "classification_report.txt", "confusion.csv", "checkpoint/state.json"):
        assert (run / name).is_file(), name
    assert (run / "monitor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(e["phase"], e["epoch"]) for e in epochs] == [("warmup", 0), ("finetune", 1)]

    metrics = json.loads((run / "metrics.json").read_text())
    assert documented_keys() <= set(metrics), documented_keys() - set(metrics)
    assert len(documented_keys()) >= 39
    assert metrics["schema"] == "featurebench-run" and metrics["schema_version"] == 1
    assert (metrics["kind"], metrics["classifier"], metrics["extractor"]) == ("finetune", "finetune", "tinybody")
    assert metrics["random_init"] is True and metrics["weights"] == "random-init (seed 42)"
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"], metrics["n_classes"]) == (15, 3, 6, 3)
    assert (metrics["layer"], metrics["pool"], metrics["feature_dim"]) == ("pool", "flatten", 150)
    assert metrics["rank5"] is None and metrics["rank1"] == metrics["accuracy"]
    assert metrics["split"] == "index" and metrics["cv"] is None and metrics["dataset"] == "flowers"
    assert sum(map(sum, metrics["confusion"]["matrix"])) == 6
    lines = (run / "predictions.csv").read_text().splitlines()  # the report's gallery of mistakes reads it
    assert lines[0] == "row,path,true,predicted,score,true_score" and len(lines) == 1 + 6
    root = Path(metrics["provenance"]["data"]["source"])
    assert all((root / line.split(",")[1]).is_file() for line in lines[1:])
    assert [row["label"] for row in metrics["per_class"]] == ["daisy", "rose", "tulip"]
    assert metrics["best_params"]["unfreeze_from"] == "c2" and metrics["epochs_run"] == 2
    prov = metrics["provenance"]
    assert prov["unfreeze_index"] == 4 and prov["unfreeze_layer"] == "c2"
    assert prov["phases"]["finetune"]["trainable_body_layers"] == ["c2"]
    assert prov["phases"]["finetune"]["frozen_batchnorm_layers"] == 2
    assert prov["data"]["n_test"] == 6 and metrics["versions"]["tensorflow"]

    collect = pytest.importorskip("featurebench.report.collect")
    collect.validate(metrics)
    runs = collect.collect_runs(tmp_path / "results").runs
    assert [r.metrics["kind"] for r in runs] == ["finetune"]

    history = json.loads((run / "history.json").read_text())
    assert [(h["epoch"], h["phase"]) for h in history] == [(0, "warmup"), (1, "finetune")]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])

    # The fine-tuned model is an extractor: it takes 0..255 RGB, normalisation is inside.
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.extractors import load_extractor

    extractor = load_extractor(str(run / "model.keras"), layer="head_fc")
    assert extractor.feature_dim == 8 and extractor.preprocessing == "none"
    summary = run_extract(ExtractOptions(source=str(tiny_set), output=str(tmp_path / "f.h5"),
                                         model=str(run / "model.keras"), layer="head_fc"))
    with h5py.File(summary.output, "r") as h5:
        assert h5["features"].shape == (24, 8) and h5.attrs["layer"] == "head_fc"


def test_resume_continues_the_epoch_count(tmp_path, tiny_set):
    from featurebench.finetune.surgery import body_of
    from featurebench.training.checkpoint import load_checkpoint_model, load_state

    recipe = tiny_recipe(warmup_epochs=2, epochs=2)
    seen = []

    def interrupt_after_third_epoch(info):
        seen.append(info["epoch"])
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_set, tmp_path, recipe, on_epoch=interrupt_after_third_epoch)
    run = tmp_path / "flowers__tinybody__finetune-tiny"
    assert not (run / "metrics.json").exists()
    state = load_state(run)
    assert (state.phase, state.epochs_done, state.finetune_start, state.unfreeze_index) == ("finetune", 3, 2, 4)
    checkpoint = load_checkpoint_model(run, state)
    body = body_of(checkpoint)
    assert body.get_layer("c2").trainable and not body.get_layer("c1").trainable
    assert not body.get_layer("bn2").trainable
    assert type(checkpoint.optimizer).__name__ == "SGD" and int(checkpoint.optimizer.iterations) == 2

    with pytest.raises(FeaturebenchError, match="--resume"):
        finetune(tiny_set, tmp_path, recipe)
    with pytest.raises(FeaturebenchError, match="head: 'fc' -> 'gap'"):
        finetune(tiny_set, tmp_path, tiny_recipe(warmup_epochs=2, epochs=2, head="gap"), resume=str(run))

    seen.clear()
    result = finetune(tiny_set, tmp_path, recipe, resume=str(run), on_epoch=lambda info: seen.append(info["epoch"]))
    assert seen == [3]
    history = json.loads((run / "history.json").read_text())
    assert [(h["epoch"], h["phase"]) for h in history] == [(0, "warmup"), (1, "warmup"), (2, "finetune"),
                                                          (3, "finetune")]
    assert result.metrics["epochs_run"] == 4 and result.metrics["provenance"]["finetune_start_epoch"] == 2
    assert len(list((run / "checkpoint").glob("*.keras"))) == 1


def cli_app():
    import typer

    from featurebench.explain import commands as explain_commands
    from featurebench.finetune import commands
    from featurebench.training import commands as training_commands

    app = typer.Typer()
    for fn in (explain_commands.inspect, commands.finetune, training_commands.build_images):
        app.command()(fn)
    return app


def test_cli_build_images_then_finetune_with_means_patches_and_ten_crop(tmp_path, tiny_set):
    from typer.testing import CliRunner

    register_tiny()
    app, runner = cli_app(), CliRunner()
    images = tmp_path / "images.h5"
    result = runner.invoke(app, ["build-images", str(tiny_set), "-o", str(images), "--size", "28",
                                 "--val-fraction", "0"])
    assert result.exit_code == 0, result.output
    args = ["finetune", str(images), "--model", "tinybody", "--weights", "none", "--warmup-epochs", "1",
            "--unfreeze-from", "none", "--head", "gap", "--head-dropout", "0.2", "--normalize", "dataset-mean",
            "--patch", "--ten-crop", "--augment", "classic", "--batch-size", "8", "--val-fraction", "0",
            "--out", str(tmp_path / "results"), "--run-name", "{dataset}-{head}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "after 1 epoch (" in result.stdout and "warmup" not in result.stdout  # a result, not "1 epochs"
    run = tmp_path / "results" / "flowers-gap"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pool"] == "avg" and metrics["feature_dim"] == 6 and metrics["n_train"] == 18
    assert metrics["provenance"]["test_crops"] == "10-crop average"
    assert len((run / "predictions.csv").read_text().splitlines()) == 1 + metrics["n_test"]
    assert metrics["provenance"]["unfreeze_index"] is None and metrics["epochs_run"] == 1
    assert "warmup" in metrics["provenance"]["phases"] and "finetune" not in metrics["provenance"]["phases"]
    means = json.loads((run / "means.json").read_text())
    with h5py.File(images, "r") as h5:
        train = h5["images"][h5["split"][()] == 0].reshape(-1, 3).astype(np.float64)
    assert means["n_images"] == 18 and means["split"] == "train"
    np.testing.assert_allclose([means["R"], means["G"], means["B"]], train.mean(axis=0))

    result = runner.invoke(app, ["inspect", str(run / "model.keras")])
    assert result.exit_code == 0, result.output
    assert re.search(r"^2\.4\s+c2\s+Conv2D", result.output, re.M)
    assert re.search(r"normalize_dataset_mean\s+Normalization", result.output)

    result = runner.invoke(app, ["finetune", str(images), "--model", "tinybody", "--weights", "none",
                                 "--out", str(tmp_path / "results"), "--run-name", "{dataset}-{head}", "--head", "gap"])
    assert result.exit_code != 0 and "already exists" in str(result.exception)


def test_finetune_refuses_unusable_inputs(tmp_path, tiny_set):
    from featurebench.finetune.recipes import Recipe

    with pytest.raises(FeaturebenchError, match="--model"):
        finetune(tiny_set, tmp_path, Recipe())
    with pytest.raises(FeaturebenchError, match="built for 24px input only"):
        finetune(tiny_set, tmp_path, tiny_recipe(image_size=32))
    with pytest.raises(FeaturebenchError, match="2 or more"):
        finetune(tiny_set / "rose", tmp_path, tiny_recipe(), label_pattern=r"^(rose)_")
