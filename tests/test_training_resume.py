"""One resume interface for ``train`` and ``finetune`` (issue 25): ``--resume RUN_DIR|CHECKPOINT`` and
``--checkpoint-every N`` are worded, defaulted and behave the same in both; the old flag-only
``finetune --resume`` is refused in one line naming the new form."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_support import tiny_model, tiny_recipe, tiny_set  # noqa: F401 - fixture
from test_train_run import separable, train  # noqa: F401 - fixture

SHARED = ("resume", "checkpoint_every")
REPO = Path(__file__).resolve().parents[1]
RUN = "colours__resnet__scratch-none"


def _command(name: str):
    import typer

    from featurebench.cli import app

    return typer.main.get_command(app).commands[name]


def _help(name: str) -> str:
    from typer.testing import CliRunner

    from featurebench.cli import app

    result = CliRunner().invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_train_and_finetune_help_word_resume_and_checkpoint_every_alike():
    train_params = {p.name: p for p in _command("train").params}
    finetune_params = {p.name: p for p in _command("finetune").params}
    for name in SHARED:
        mine, theirs = train_params[name], finetune_params[name]
        assert (mine.opts, mine.metavar, mine.help, mine.default) == \
            (theirs.opts, theirs.metavar, theirs.help, theirs.default), name
    assert "RUN_DIR|CHECKPOINT" in train_params["resume"].metavar
    assert "(default 1)" in train_params["checkpoint_every"].help
    train_help, finetune_help = _help("train"), _help("finetune")
    for name in SHARED:
        shown = " ".join(train_params[name].help.split())
        assert shown in train_help and shown in finetune_help, name


@pytest.mark.parametrize("args", [["finetune", "SRC", "--recipe", "classic-flowers17", "--resume"],
                                  ["finetune", "SRC", "--resume", "--epochs", "3"],
                                  ["train", "SRC", "--resume", "--lr", "0.01"]])
def test_resume_without_its_path_is_one_line_naming_the_new_form(args, tmp_path):
    code = f"import sys; sys.argv = ['featurebench', *{args!r}]; from featurebench.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: --resume takes the run to continue: featurebench {args[0]} SOURCE --resume RUN_DIR "
                     "(its latest checkpoint) or --resume RUN_DIR/checkpoint/epoch-NNNN-PHASE.keras."], lines
    assert result.stdout == ""


def test_train_writes_every_n_epochs_and_ctrl_c_then_resumes_from_the_run_folder(tmp_path, separable):
    from featurebench.training.session import TrainingInterrupted

    def stop_after_third(info):
        if info["epoch"] == 2:
            assert (tmp_path / RUN / "checkpoint" / "epoch-0002-scratch.keras").is_file()   # N = 2: epoch 3 unsaved
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as stop:
        train(separable, tmp_path, epochs=5, schedule="constant", checkpoint_every=2, keep_every=0,
              on_epoch=stop_after_third)
    run = stop.value.run_dir
    assert stop.value.epochs_done == 3 and stop.value.checkpoint.name == "epoch-0003-scratch.keras"  # Ctrl+C wrote it
    assert sorted(p.name for p in (run / "checkpoint").glob("*.keras")) == ["epoch-0003-scratch.keras"]

    seen = []
    result = train(separable, tmp_path, resume=run, on_epoch=lambda info: seen.append(info["epoch"]))
    assert seen == [3, 4]
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [0, 1, 2, 3, 4]
    # every 2nd epoch and the last (5, odd) are written; keep_every 0 leaves only the latest
    assert sorted(p.name for p in (run / "checkpoint").glob("*.keras")) == ["epoch-0005-scratch.keras"]
    assert result.metrics["epochs_run"] == 5


def test_ctrl_c_mid_epoch_checkpoints_the_last_finished_epoch_from_memory(tmp_path, tiny_model):
    """With --checkpoint-every 3, epoch 4 is not written when it ends; a Ctrl+C during epoch 5 (after one
    of its batches moved the weights) writes epoch 4's model and optimizer state, not the moved ones."""
    import keras
    import numpy as np

    from featurebench.training.checkpoint import TrainState, load_checkpoint_model, load_state
    from featurebench.training.epochs import Phase, epoch_callback, fit_epochs
    from featurebench.training.optimization import compile_model

    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 255, (16, 24, 24, 3)).astype("float32"), rng.integers(0, 3, 16)
    compile_model(tiny_model, "sgd", 0.05, 0.9)
    state = TrainState(phase="scratch")
    epoch_end = epoch_callback(state, tmp_path, Phase("scratch", 10, "sgd", 0.05, 0.9), 0, "t", None, 3)
    finished = {}

    class Remember(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            finished[epoch + 1] = [v.numpy() for v in self.model.variables]

    class CtrlCInFifthEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 4:
                assert load_state(tmp_path).model_file == "epoch-0003-scratch.keras"
                finished["moved"] = [v.numpy() for v in self.model.variables]
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_epochs(tiny_model, epoch_end, images, y=labels, batch_size=8, epochs=10,
                   callbacks=[epoch_end, Remember(), CtrlCInFifthEpoch()], verbose=0, shuffle=False)
    saved = load_state(tmp_path)
    assert (saved.epochs_done, saved.model_file) == (4, "epoch-0004-scratch.keras")
    assert [row["epoch"] for row in saved.history] == [0, 1, 2, 3]
    model = load_checkpoint_model(tmp_path, saved)
    assert int(model.optimizer.iterations) == 8                 # 4 epochs x 2 batches, not the 9th step
    assert not all(np.array_equal(a, b) for a, b in zip(finished["moved"], finished[4]))
    compared = 0
    for loaded, expected in zip(model.variables, finished[4]):
        if "seed_generator" not in loaded.path:   # a .keras file does not hold dropout's RNG state at all
            np.testing.assert_array_equal(loaded.numpy(), expected, err_msg=loaded.path)
            compared += 1
    assert compared == len(model.weights) >= 10


def test_finetune_resumes_from_the_run_folder_and_from_an_older_checkpoint_file(tmp_path, tiny_set):
    from typer.testing import CliRunner

    from featurebench.cli import app
    from featurebench.finetune.run import FinetuneOptions, run_finetune
    from featurebench.training.session import TrainingInterrupted

    recipe = tiny_recipe(warmup_epochs=2, epochs=2)
    warmup_end = tmp_path / "epoch-0002-warmup.keras"

    def keep_warmup_end_then_stop(info):
        if info["epoch"] == 1:    # the warm-up's last checkpoint, deleted once phase 2 writes its first
            shutil.copy(run / "checkpoint" / warmup_end.name, warmup_end)
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    run = tmp_path / "results" / "flowers__tinybody__finetune-tiny"
    with pytest.raises(TrainingInterrupted) as stop:
        run_finetune(FinetuneOptions(source=str(tiny_set), recipe=recipe, out=str(tmp_path / "results")),
                     on_epoch=keep_warmup_end_then_stop)
    assert (stop.value.run_dir, stop.value.epochs_done) == (run, 3)

    # The run folder alone: the recipe comes from the run, the flags given change what a resume may.
    result = CliRunner().invoke(app, ["finetune", str(tiny_set), "--resume", str(run), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    history = json.loads((run / "history.json").read_text())
    assert [(h["epoch"], h["phase"]) for h in history] == [(0, "warmup"), (1, "warmup"), (2, "finetune"),
                                                          (3, "finetune"), (4, "finetune")]
    assert json.loads((run / "recipe.json").read_text())["epochs"] == 3

    # An older checkpoint file: back to the warm-up's end, phase 2 again from its start.
    shutil.copy(warmup_end, run / "checkpoint" / warmup_end.name)
    seen = []
    result = run_finetune(FinetuneOptions(source=str(tiny_set), recipe=recipe, out="unused",
                                          resume=str(run / "checkpoint" / warmup_end.name)),
                          on_epoch=lambda info: seen.append((info["epoch"], info["phase"])))
    assert seen == [(2, "finetune"), (3, "finetune")]
    assert result.metrics["epochs_run"] == 4 and result.metrics["provenance"]["finetune_start_epoch"] == 2
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [0, 1, 2, 3]


def test_resume_refuses_what_is_not_a_run_of_that_command(tmp_path, tiny_set):
    from featurebench.errors import FeaturebenchError
    from featurebench.finetune.run import FinetuneOptions, run_finetune

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FeaturebenchError, match="not a checkpoint file; pass --resume RUN_DIR"):
        run_finetune(FinetuneOptions(source=str(tiny_set), recipe=tiny_recipe(), resume=str(tmp_path / "notes.txt")))
    with pytest.raises(FeaturebenchError, match="no such run folder"):
        run_finetune(FinetuneOptions(source=str(tiny_set), recipe=tiny_recipe(), resume=str(tmp_path / "gone")))
    with pytest.raises(FeaturebenchError, match="has no recipe.json; it is not a `featurebench finetune` run"):
        run_finetune(FinetuneOptions(source=str(tiny_set), recipe=tiny_recipe(), resume=str(tmp_path)))
