"""The from-scratch training itself: build or load the model, fit with the LR schedule, score, record.

It defines the loop's contract too (what :mod:`featurebench.train.run` imports): the run's file and
phase names, :class:`TrainResult` and :class:`TrainInterrupted`. Built on the training core
(:mod:`featurebench.training`): the tf.data pipeline (per-epoch reseeded order, patch crops,
augmentation layers), the epoch callback (history, checkpoint, monitor, caller's hook),
normalisation layers, 10-crop prediction and the run record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from featurebench import __version__
from featurebench.store.identity import RUN_IDENTITY_KEY, run_identity
from featurebench.train.settings import TrainSettings
from featurebench.training.checkpoint import TrainState
from featurebench.training.session import TrainingInterrupted, TrainingResult

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
PHASE = "scratch"

#: What :func:`run_train` returns (run folder, name, metrics, state, warnings).
TrainResult = TrainingResult


#: Ctrl+C during a run (the training core's, as ``finetune``'s): where the last checkpoint is.
TrainInterrupted = TrainingInterrupted


def device_note() -> str:
    """Which device TensorFlow trains on, in one line."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"Training on GPU ({', '.join(g.name for g in gpus)})."
    return (f"No GPU visible to TensorFlow: training on the CPU ({os.cpu_count()} cores), slowly; "
            "the ETA follows each epoch.")


def _feature_layer(model: Any) -> tuple[str, int]:
    """The layer feeding the classifier (``logits``, the last layer but its softmax) and its width."""
    names = [layer.name for layer in model.layers]
    return names[names.index("logits") - 1], int(model.get_layer("logits").input.shape[-1])


def _fit(model, settings: TrainSettings, source, run_dir: Path, state: TrainState, title: str,
         on_epoch: Callable[[dict], None] | None) -> TrainState:
    import keras

    from featurebench.training.augment import build_augmenter
    from featurebench.training.epochs import Phase, epoch_callback, fit_epochs
    from featurebench.training.pipeline import make_dataset

    size, bs = int(settings.image_size), settings.batch_size
    augment = build_augmenter(settings.augment, settings.seed)
    start_epoch = state.epochs_done
    session: list[float] = []

    def report(info: dict) -> None:
        session.append(info["seconds"])
        remaining = settings.epochs - info["epoch"] - 1
        info.update(epochs=settings.epochs, lr=info["logs"].get("learning_rate"),
                    eta_seconds=remaining * sum(session) / len(session))
        if on_epoch:
            on_epoch(info)

    phase = Phase(PHASE, settings.epochs, settings.optimizer, settings.lr, settings.momentum)
    epoch_end = epoch_callback(state, run_dir, phase, 0, title, report, settings.checkpoint_every, settings.keep_every)
    train_data = make_dataset(source, "train", bs, size, True, settings.seed, augment, settings.patch, start_epoch)
    val = make_dataset(source, "val", bs, size) if source.count("val") else None
    fit_epochs(model, epoch_end, train_data, validation_data=val, epochs=settings.epochs, initial_epoch=start_epoch,
               callbacks=[keras.callbacks.LearningRateScheduler(settings.schedule_fn()), epoch_end], verbose=0,
               shuffle=False)
    return state


def train_and_record(opts, settings: TrainSettings, source, run_dir: Path, name: str, state: TrainState | None,
                     on_epoch, say, warnings: list[str]):
    """Train ``settings.net`` on ``source`` into ``run_dir`` (continuing ``state``), then test and record."""
    import keras

    from featurebench.train.nets import get_net
    from featurebench.training.checkpoint import load_checkpoint_model
    from featurebench.training.evaluate import predict_split
    from featurebench.training.normalize import normalization_layer
    from featurebench.training.optimization import compile_model, precision_policy
    from featurebench.training.pipeline import check_sizes
    from featurebench.training.record import build_record, report_files, write_record
    from featurebench.training.session import training_means

    size = int(settings.image_size)
    check_sizes(source.image_size, size)
    spec = get_net(settings.net)
    say(device_note())
    with precision_policy(settings.precision) as policy:
        keras.utils.set_random_seed(settings.seed)
        means = training_means(source, run_dir, settings.batch_size, state is not None, say) \
            if settings.normalize == "dataset-mean" else None
        if state is None:
            model = spec.build(size, len(source.label_names), normalization_layer(settings.normalize, "none", means),
                               **settings.net_options())
            compile_model(model, settings.optimizer, settings.lr, settings.momentum)
            run_info = {"params": int(model.count_params()), "layers": len(model.layers)}
            (run_dir / RUN_FILE).write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
            state = TrainState(phase=PHASE, source_identity=source.identity())
            say(f"{spec.name}: {run_info['params']:,} parameters, {size}x{size} input, {settings.epochs} epochs, "
                f"{settings.optimizer} lr {settings.lr:g} ({settings.schedule}), batch {settings.batch_size}, "
                f"augment {settings.augment}")
        else:
            say(f"Resuming {name} from epoch {state.epochs_done} ({state.model_file}), lr {settings.lr:g} "
                f"({settings.schedule}).")
            model = load_checkpoint_model(run_dir, state)
            run_info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        title = f"{source.dataset} · {spec.name} from scratch · augment {settings.augment}"
        _fit(model, settings, source, run_dir, state, title, on_epoch)  # Ctrl+C: run_train says where to resume
        model.save(run_dir / MODEL_FILE)
        y_true, proba, predict_seconds = predict_split(model, source, "test", size, settings.batch_size,
                                                       settings.ten_crop)
    layer, feature_dim = _feature_layer(model)
    provenance = {
        "model": spec.name, "model_source": "scratch", "architecture": spec.description, "params": run_info["params"],
        "net_options": settings.net_options(), "input_size": [size, size], "normalization": settings.normalize,
        "means_rgb": means.tolist() if means is not None else None, "data": source.describe(),
        "settings": settings.to_dict(), "epochs_run": state.epochs_done, "precision": policy,
        "lr_per_epoch": [row.get("learning_rate") for row in state.history],
        "test_crops": "10-crop average" if settings.ten_crop else "center",
        "featurebench_version": __version__, "keras_version": keras.__version__, "command": opts.command,
    }
    best_params = {**settings.net_options(), **{k: getattr(settings, k) for k in (
        "image_size", "optimizer", "lr", "momentum", "schedule", "batch_size", "epochs", "augment", "normalize")}}
    best_params["epochs_run"] = state.epochs_done
    record = build_record(
        run_name=name, dataset=source.dataset, extractor=spec.name, layer=layer, pool="none",
        weights=f"scratch (seed {settings.seed})", random_init=False, y_true=y_true, proba=proba,
        label_names=source.label_names, seed=settings.seed, best_params=best_params, n_train=source.count("train"),
        feature_dim=feature_dim, fit_seconds=state.train_seconds, predict_seconds=predict_seconds,
        provenance=provenance, command=opts.command, kind="scratch",
        extra={"net": spec.name, "seed": settings.seed, "n_val": source.count("val"), "epochs_run": state.epochs_done,
               "final_train_accuracy": state.history[-1].get("accuracy") if state.history else None,
               "model_file": MODEL_FILE, "history_file": "history.json", "probabilities_file": "probabilities.npz",
               "warnings": warnings,
               RUN_IDENTITY_KEY: run_identity(state.source_identity or source.identity(), source.split_paths("test"))},
    )
    test_paths = source.split_paths("test")
    write_record(run_dir, record, report_files(record, y_true, proba, source.label_names, test_paths), test_paths,
                 y_true, proba, source.label_names)
    return TrainResult(run_dir, name, record, state, warnings)


__all__ = ["MODEL_FILE", "PHASE", "RUN_FILE", "TrainInterrupted", "TrainResult", "device_note", "train_and_record"]
