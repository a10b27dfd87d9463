"""``train`` end to end on tiny synthetic images: learns, records kind=scratch, monitor files,
Ctrl+C -> checkpoint -> ``--resume CHECKPOINT --lr NEW`` continues from that epoch at the new rate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_class_folders
from featurebench.errors import FeaturebenchError

pytest.importorskip("keras")

#: A ResNet small enough to train in a second: one stage, 4 + 8 filters, 16x16 input.
TINY = {"net": "resnet", "stages": "1", "filters": "4,8", "image_size": 16, "batch_size": 4, "l2": 0.0}


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """Three classes x 16 JPEGs of 16x16, each class bright in its own colour channel."""
    return make_class_folders(tmp_path_factory.mktemp("scratch") / "colours", classes=("r", "g", "b"),
                              per_class=16, size=(16, 16))


def train(source, out, on_epoch=None, resume=None, **settings):
    from featurebench.train.run import TrainOptions, run_train

    opts = TrainOptions(source=str(source), out=str(out), resume=str(resume) if resume else None, command="test")
    return run_train(opts, {**TINY, **settings} if resume is None else settings, on_epoch=on_epoch)


def test_tiny_train_learns_and_writes_a_scratch_record(tmp_path, separable):
    epochs = []
    result = train(separable, tmp_path / "results", epochs=2, on_epoch=epochs.append)
    run = result.run_dir
    assert run.name == "colours__resnet__scratch-none"
    for name in ("metrics.json", "model.keras", "history.json", "monitor.png", "train.json", "probabilities.npz",
                 "classification_report.txt", "confusion.csv", "checkpoint/state.json"):
        assert (run / name).is_file(), name
    assert (run / "monitor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert [h["learning_rate"] for h in history] == pytest.approx([0.1, 0.05])   # resnet: poly decay, power 1
    assert [e["lr"] for e in epochs] == pytest.approx([0.1, 0.05]) and epochs[-1]["eta_seconds"] == 0

    m = json.loads((run / "metrics.json").read_text())
    assert (m["kind"], m["classifier"], m["extractor"], m["random_init"]) == ("scratch", "scratch", "resnet", False)
    assert (m["n_train"], m["n_val"], m["n_test"]) == (32, 4, 12)
    assert m["accuracy"] > 0.6, m["accuracy"]       # chance is 1/3
    assert m["provenance"]["net_options"] == {"stages": [1], "filters": [4, 8], "l2": 0.0}
    from featurebench.fit.record import read_probabilities

    pred = read_probabilities(run / "probabilities.npz")
    assert len(pred["paths"]) == 12 and np.allclose(pred["scores"].sum(axis=1), 1, atol=1e-5)
    assert np.mean(pred["scores"].argmax(axis=1) == pred["y_true"]) == pytest.approx(m["accuracy"])

    from featurebench.report.collect import collect_runs
    from featurebench.report.tables import markdown_summary

    runs = collect_runs(tmp_path / "results").runs
    assert [r.metrics["kind"] for r in runs] == ["scratch"]
    assert "resnet (trained from scratch)" in markdown_summary(runs)


def test_interrupt_then_resume_an_older_checkpoint_at_a_new_lr(tmp_path, separable):
    from featurebench.train.loop import TrainInterrupted

    def stop_after_third(info):
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainInterrupted) as stop:
        train(separable, tmp_path / "r", epochs=6, schedule="constant", lr=0.05, keep_every=2,
              on_epoch=stop_after_third)
    assert stop.value.epochs_done == 3 and stop.value.checkpoint.name == "epoch-0003-scratch.keras"
    run = stop.value.run_dir
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [0, 1, 2]   # monitor per epoch
    assert (run / "monitor.png").is_file() and not (run / "metrics.json").exists()
    kept = sorted(p.name for p in (run / "checkpoint").glob("*.keras"))
    assert kept == ["epoch-0002-scratch.keras", "epoch-0003-scratch.keras"]   # every 2nd kept + the latest

    with pytest.raises(FeaturebenchError, match="augment"):
        train(separable, tmp_path / "r", resume=run, augment="flip", lr=0.01)
    seen = []
    result = train(separable, tmp_path / "r", resume=run / "checkpoint" / "epoch-0002-scratch.keras", lr=0.01,
                   epochs=4, on_epoch=seen.append)
    assert [e["epoch"] for e in seen] == [2, 3]                           # continues from the checkpoint's epoch
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert [h["learning_rate"] for h in history] == pytest.approx([0.05, 0.05, 0.01, 0.01])
    assert result.metrics["epochs_run"] == 4 and result.metrics["kind"] == "scratch"
    assert json.loads((run / "train.json").read_text())["lr"] == 0.01

    with pytest.raises(FeaturebenchError, match="pass --epochs N"):
        train(separable, tmp_path / "r", resume=run)
    with pytest.raises(FeaturebenchError, match="already exists"):
        train(separable, tmp_path / "r", epochs=1)


def test_cli_train_with_means_patches_ten_crop_then_ensemble_two_seeds(tmp_path, separable):
    import typer
    from typer.testing import CliRunner

    from featurebench.ensemble import commands as ensemble_commands
    from featurebench.train import commands as train_commands
    from featurebench.training import commands as training_commands

    app, runner = typer.Typer(), CliRunner()
    for fn in (training_commands.build_images, train_commands.train, ensemble_commands.ensemble,
               ensemble_commands.fuse):
        app.command()(fn)
    images = tmp_path / "images.h5"
    assert runner.invoke(app, ["build-images", str(separable), "-o", str(images), "--size", "20"]).exit_code == 0
    runs = []
    for seed in ("1", "2"):
        result = runner.invoke(app, ["train", str(images), "--net", "resnet", "--stages", "1", "--filters", "4,8",
                                     "--image-size", "16", "--batch-size", "4", "--epochs", "1", "--seed", seed,
                                     "--normalize", "dataset-mean", "--patch", "--ten-crop", "--out",
                                     str(tmp_path / "results"), "--run-name", "{net}-{seed}"])
        assert result.exit_code == 0, result.output
        assert "epoch    1/1" in result.output and "ETA" in result.output and "test accuracy" in result.output
        runs.append(tmp_path / "results" / f"resnet-{seed}")
    m = json.loads((runs[0] / "metrics.json").read_text())
    assert m["provenance"]["test_crops"] == "10-crop average" and m["provenance"]["means_rgb"] is not None
    result = runner.invoke(app, ["ensemble", *map(str, runs), "--out", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    ens = json.loads((tmp_path / "results" / "colours__ensemble__resnet-scratch+resnet-scratch" / "metrics.json")
                     .read_text())
    assert ens["kind"] == "ensemble" and [x["kind"] for x in ens["members"]] == ["scratch", "scratch"]
    result = runner.invoke(app, ["fuse", str(images), str(images), "-o", str(tmp_path / "x.h5")])
    assert result.exit_code != 0 and "featurebench feature file" in str(result.exception)
