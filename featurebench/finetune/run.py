"""``featurebench finetune``: source + recipe -> ``RESULTS_DIR/<run-name>/`` with a trained model and metrics.json.

Steps: open the source (a ``build-images`` file, or a folder/CSV streamed through
the decode pipeline), compute the training-split RGB means if the recipe
subtracts them, build body + normalisation + head (or load the checkpoint on
``--resume RUN_DIR|CHECKPOINT``), train both phases, save ``model.keras``, score the test split
(centre or 10-crop) and write the run record.

Run folder: ``metrics.json``, ``model.keras`` (takes 0..255 RGB; usable with
``featurebench extract --model RUN/model.keras --layer head_fc``), ``history.json``,
``monitor.png``, ``recipe.json``, ``run.json``, ``means.json`` (dataset-mean only),
``classification_report.txt``, ``confusion.csv``, ``checkpoint/``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from featurebench import __version__
from featurebench.data.pipeline import SourceOptions
from featurebench.errors import FeaturebenchError
from featurebench.finetune.recipes import Recipe, apply_overrides, validate
from featurebench.training.checkpoint import load_checkpoint_model, locate_resume, remove_checkpoints, resume_state
from featurebench.training.options import CHECKPOINT_EVERY
from featurebench.training.session import (TrainingResult, check_resume_settings, check_same_source, enter_run_dir,
                                           interrupted, open_training_source, prepare_run_dir, slug,
                                           training_means)

RUN_NAME_TEMPLATE = "{dataset}__{extractor}__finetune-{recipe}"
MODEL_FILE = "model.keras"
RECIPE_FILE = "recipe.json"
RUN_FILE = "run.json"
#: Recipe keys a ``--resume`` may change (to extend or shorten training); the rest must match.
RESUMABLE_CHANGES = ("warmup_epochs", "epochs", "early_stopping", "description", "name")


@dataclass
class FinetuneOptions(SourceOptions):
    """Everything ``finetune`` needs besides the recipe; the CLI flags map one to one (source flags: SourceOptions)."""

    source: str
    recipe: Recipe
    out: str = "results"
    run_name: str | None = None
    #: A run folder or one of its checkpoint files to continue from (``recipe`` must be the run's,
    #: but for :data:`RESUMABLE_CHANGES`).
    resume: str | None = None
    force: bool = False
    dataset_name: str | None = None
    checkpoint_every: int = CHECKPOINT_EVERY
    keep_checkpoint: bool = True
    command: str = field(default_factory=lambda: " ".join(sys.argv))


#: What :func:`run_finetune` returns (run folder, name, metrics, state, warnings).
FinetuneResult = TrainingResult


def run_name_for(dataset: str, recipe: Recipe, template: str | None = None) -> str:
    fields = {"dataset": dataset, "extractor": recipe.model, "recipe": recipe.name, "head": recipe.head,
              "seed": recipe.seed}
    try:
        return slug((template or RUN_NAME_TEMPLATE).format(**fields))
    except (KeyError, IndexError, ValueError) as exc:
        raise FeaturebenchError(f"--run-name {template!r}: unknown field {exc}; fields are {', '.join(fields)}") from None


def run_finetune(opts: FinetuneOptions, on_epoch: Callable[[dict], None] | None = None,
                 say: Callable[[str], None] | None = None) -> FinetuneResult:
    """Train (or resume) a fine-tuning run and write its folder. ``on_epoch(info)`` after every
    epoch; ``say(message)`` for phase starts and notes."""
    from featurebench.finetune.surgery import body_spec

    say = say or (lambda message: None)
    recipe = validate(opts.recipe)
    if not recipe.model:
        raise FeaturebenchError("Pass --model NAME (see `featurebench models`) or a --recipe that names one.")
    spec = body_spec(recipe.model, recipe.image_size)
    recipe = replace(recipe, model=spec.name, image_size=spec.input_size)
    image_size = spec.input_size
    if opts.resume:
        run_dir, checkpoint = locate_resume(opts.resume, RECIPE_FILE, "finetune")
        check_resume_settings(run_dir, RECIPE_FILE, recipe.to_dict(), RESUMABLE_CHANGES)
        state = resume_state(run_dir, checkpoint)
    else:
        state, run_dir = None, None
    created = None  # the run folder this run made (removed again if stopped before a checkpoint)
    try:
        source, warnings = open_training_source(opts.source, image_size, recipe, opts, opts.dataset_name,
                                                "fine-tuning")
        if opts.resume:
            check_same_source(run_dir, state, source, say)
            name = run_dir.name
        else:
            name = slug(opts.run_name) if opts.run_name and "{" not in opts.run_name else \
                run_name_for(source.dataset, recipe, opts.run_name)
            run_dir = Path(opts.out).expanduser().resolve() / name
            prepare_run_dir(run_dir, opts.force, [Path(opts.source)])
            created = run_dir
        enter_run_dir(run_dir, RECIPE_FILE, recipe.to_dict(), warnings, say)
        return _train_and_record(opts, recipe, spec, source, image_size, run_dir, name, state, on_epoch, say,
                                 warnings)
    except KeyboardInterrupt:
        raise interrupted(run_dir, created) from None


def saved_recipe(resume: str) -> Recipe:
    """The recipe of the run a ``--resume`` argument names (its ``recipe.json``), to resume without
    repeating ``--recipe`` and the flags."""
    run_dir, _ = locate_resume(resume, RECIPE_FILE, "finetune")
    path = run_dir / RECIPE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise FeaturebenchError(f"--resume: {path} is unreadable ({' '.join(str(exc).split())[:160]}); start over "
                                "with --force.") from None
    return apply_overrides(Recipe(), data, where=str(path))


def _train_and_record(opts, recipe, spec, source, image_size, run_dir, name, state, on_epoch, say, warnings):
    import keras

    from featurebench.finetune.heads import HEAD_INFO
    from featurebench.finetune.surgery import assemble, body_of, build_body
    from featurebench.finetune.training import train
    from featurebench.training.augment import build_augmenter
    from featurebench.training.evaluate import predict_split
    from featurebench.training.normalize import describe, normalization_layer
    from featurebench.training.optimization import precision_policy
    from featurebench.training.pipeline import check_sizes, make_dataset
    from featurebench.training.record import build_record, report_files, write_record

    check_sizes(source.image_size, image_size)
    bs = recipe.batch_size
    with precision_policy(recipe.precision) as policy:
        keras.utils.set_random_seed(recipe.seed)
        means = training_means(source, run_dir, bs, state is not None, say) \
            if recipe.normalize == "dataset-mean" else None
        if state is None:
            body, weights_info = build_body(spec, recipe.weights, recipe.seed)
            model = assemble(body, len(source.label_names), recipe.head, recipe.head_hidden, recipe.head_dropout,
                             normalization_layer(recipe.normalize, spec.preprocessing, means), recipe.seed)
            run_info = {"weights": weights_info, "body": body.name, "body_layers": len(body.layers),
                        "body_output_layer": body.layers[-1].name}
            (run_dir / RUN_FILE).write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
        else:
            say(f"Resuming from epoch {state.epochs_done} ({state.phase} phase).")
            model = load_checkpoint_model(run_dir, state)
            run_info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        if run_info["weights"].get("random_init"):
            warnings.append("random-init body (--weights none): a baseline, not transfer learning")
        augment = build_augmenter(recipe.augment, recipe.seed)
        make_train = lambda epoch: make_dataset(source, "train", bs, image_size, True, recipe.seed, augment,  # noqa: E731
                                                recipe.patch, epoch)
        make_val = None
        if source.count("val"):
            make_val = lambda epoch: make_dataset(source, "val", bs, image_size)  # noqa: E731
        phases: dict[str, Any] = {}

        def on_phase(phase: str, summary: dict) -> None:
            phases[phase] = summary
            say(f"{phase}: {summary['trainable_params']:,} trainable / {summary['non_trainable_params']:,} frozen "
                f"parameters; {len(summary['trainable_body_layers'])} body layers train, "
                f"{summary['frozen_batchnorm_layers']} BatchNorm layers frozen")

        title = f"{source.dataset} · {spec.name} · {recipe.name}"
        state = train(model, recipe, make_train, make_val, run_dir, state, on_epoch, on_phase, title,
                      opts.checkpoint_every, source.identity())
        model.save(run_dir / MODEL_FILE)
        y_true, proba, predict_seconds = predict_split(model, source, "test", image_size, bs, recipe.ten_crop)
    pool, feature_layer = HEAD_INFO[recipe.head]
    feature_dim = int(model.get_layer(feature_layer).output.shape[-1])
    body = body_of(model)
    unfreeze_layer = body.layers[state.unfreeze_index].name if state.unfreeze_index is not None else None
    weights_info = run_info["weights"]
    provenance = {
        "model": spec.name, "model_source": "registry", **weights_info, "input_size": [image_size, image_size],
        "preprocessing": spec.preprocessing, "normalization": describe(recipe.normalize, spec.preprocessing),
        "means_rgb": means.tolist() if means is not None else None, "data": source.describe(),
        "recipe": recipe.to_dict(), "body": run_info["body"], "body_layers": run_info["body_layers"],
        "unfreeze_index": state.unfreeze_index, "unfreeze_layer": unfreeze_layer, "phases": phases,
        "finetune_start_epoch": state.finetune_start, "epochs_run": state.epochs_done, "precision": policy,
        "test_crops": "10-crop average" if recipe.ten_crop else "center",
        "featurebench_version": __version__, "keras_version": keras.__version__, "command": opts.command,
    }
    best_params = {k: getattr(recipe, k) for k in ("head", "head_hidden", "head_dropout", "warmup_epochs",
                                                   "warmup_optimizer", "warmup_lr", "epochs", "optimizer", "lr",
                                                   "momentum", "unfreeze_from", "batch_size", "augment", "normalize",
                                                   "patch", "ten_crop", "image_size")}
    best_params["epochs_run"] = state.epochs_done
    record = build_record(
        run_name=name, dataset=source.dataset, extractor=spec.name, layer=run_info["body_output_layer"], pool=pool,
        weights=weights_info["weights"], random_init=bool(weights_info.get("random_init")), y_true=y_true,
        proba=proba, label_names=source.label_names, seed=recipe.seed, best_params=best_params,
        n_train=source.count("train"), feature_dim=feature_dim, fit_seconds=state.train_seconds,
        predict_seconds=predict_seconds, provenance=provenance, command=opts.command,
        extra={"recipe": recipe.name, "seed": recipe.seed, "n_val": source.count("val"),
               "epochs_run": state.epochs_done, "model_file": MODEL_FILE, "history_file": "history.json",
               "probabilities_file": "probabilities.npz",
               "warnings": warnings},
    )
    test_paths = source.split_paths("test")
    write_record(run_dir, record, report_files(record, y_true, proba, source.label_names, test_paths), test_paths,
                 y_true, proba, source.label_names)
    if not opts.keep_checkpoint:
        remove_checkpoints(run_dir)
    return FinetuneResult(run_dir, name, record, state, warnings)


__all__ = ["FinetuneOptions", "FinetuneResult", "RUN_NAME_TEMPLATE", "run_finetune", "saved_recipe"]
