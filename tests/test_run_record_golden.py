"""Run records and file formats stay the same across refactors: a tiny ``build-images`` file, a tiny
``train`` run on it and a tiny ``finetune`` run, compared with goldens made by the code before the
training core was split out of ``finetune/`` (tests/golden/run_records.json).

What is compared: the build-images file's attributes, dataset names, dtypes, shapes and a hash of its
pixels/labels/paths; for both runs the list of files in the run folder, ``metrics.json`` (every key, in
order), the run's settings file (``train.json`` / ``recipe.json``), ``run.json`` and the keys of every
``history.json`` row and of ``checkpoint/state.json``.

Left out, because they legitimately vary from one run to the next:

* ``created`` (timestamps) and ``build_seconds`` / ``fit_seconds`` / ``predict_seconds`` / ``train_seconds`` /
  a history row's ``seconds`` (durations);
* absolute paths (``provenance.data.source``, the file's ``source_root``): replaced by ``<tmp>``; and
  ``feature_identity.source_digest``, a digest over the source's identity, absolute root included;
* ``versions`` and ``provenance.keras_version`` (the installed libraries, not the code under test).

Numbers that come out of the trained weights (accuracies, F1s, losses, the confusion cells) are compared
to 0.1 (cells to 1): oneDNN's round-off differs between CPU classes (AVX2 / AVX-512 / AMX), which can flip
one of the few test images. On one machine old and new code agree exactly. Everything else is exact.

Regenerate (only with the code whose behaviour is the reference!):
``FEATUREBENCH_WRITE_GOLDEN=1 python -m pytest tests/test_run_record_golden.py``. The committed golden was
written by main's code at 454cf47 (finetune/ before the move), with this file's import of
``build_images`` pointed at ``featurebench.finetune.image_file``. Edited by hand since, only where the
behaviour changed on purpose: issue 25 (one ``--checkpoint-every`` for train and finetune) made the train
settings' ``checkpoint_every`` 1 (write every epoch, as before) and added ``keep_every`` 5 (the old
``checkpoint_every`` 5: keep every 5th), in ``train.json`` and ``metrics.json``'s ``provenance.settings``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import make_class_folders
from finetune_support import tiny_recipe

pytest.importorskip("keras")

GOLDEN = Path(__file__).resolve().parent / "golden" / "run_records.json"
WRITE = os.environ.get("FEATUREBENCH_WRITE_GOLDEN") == "1"

#: Dropped everywhere they occur (timestamps, durations, library versions).
VARYING_KEYS = {"created", "build_seconds", "fit_seconds", "predict_seconds", "train_seconds", "seconds", "versions",
                "keras_version", "source_digest"}
#: Values computed from the trained weights: compared with a tolerance (see the module docstring).
OUTCOME_KEYS = {"accuracy", "accuracy_ci95", "rank1", "rank5", "mean_per_class_accuracy", "macro_precision",
                "macro_recall", "macro_f1", "weighted_f1", "precision", "recall", "f1", "final_train_accuracy",
                "loss", "val_loss", "val_accuracy", "matrix"}


def normalised(value, tmp: str):
    """``value`` without the varying keys and with ``tmp`` (the test's folder) replaced by ``<tmp>``."""
    if isinstance(value, dict):
        return {k: normalised(v, tmp) for k, v in value.items() if k not in VARYING_KEYS}
    if isinstance(value, (list, tuple)):
        return [normalised(v, tmp) for v in value]
    if isinstance(value, str):
        return value.replace(tmp, "<tmp>")
    if isinstance(value, np.generic):
        return value.item()
    return value


def assert_same(actual, expected, where: str = "", outcome: bool = False) -> None:
    """Same keys in the same order, same types; exact values except outcome numbers (see above)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}", outcome or key in OUTCOME_KEYS)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{i}]", outcome)
    elif outcome and isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
        assert actual == pytest.approx(expected, abs=1 if isinstance(expected, int) else 0.1), where
    else:
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} != {expected!r}"


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def run_folder(run: Path, settings_file: str, tmp: str) -> dict:
    """What the test compares of one run folder (see the module docstring)."""
    history = read_json(run / "history.json")
    return {
        "files": sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()),
        "metrics": normalised(read_json(run / "metrics.json"), tmp),
        "settings": normalised(read_json(run / settings_file), tmp),
        "run": normalised(read_json(run / "run.json"), tmp),
        "history_keys": [list(row) for row in history],
        "history": normalised(history, tmp),
        "state_keys": list(read_json(run / "checkpoint" / "state.json")),
    }


def image_file(path: Path, tmp: str) -> dict:
    """Attributes, layout and a content hash of a build-images file."""
    import h5py

    layout, digest = {}, hashlib.sha256()
    with h5py.File(path, "r") as h5:
        attrs = normalised({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in sorted(h5.attrs.items())},
                           tmp)
        attrs.pop("featurebench_version", None)

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                layout[name] = [str(obj.dtype), list(obj.shape)]
                data = obj[()]
                digest.update(name.encode())
                digest.update(np.asarray(data).astype(str).tobytes() if data.dtype.kind == "O" else data.tobytes())

        h5.visititems(visit)
    return {"attrs": attrs, "layout": layout, "sha256": digest.hexdigest()}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Build a tiny images file, train on it from scratch, fine-tune the tiny body; what to compare."""
    from featurebench.finetune.run import FinetuneOptions, run_finetune
    from featurebench.train.run import TrainOptions, run_train

    tmp_dir = tmp_path_factory.mktemp("golden")
    tmp = str(tmp_dir)
    colours = make_class_folders(tmp_dir / "colours", classes=("r", "g", "b"), per_class=12, size=(20, 20))
    from featurebench.training.image_file import BuildImagesOptions, build_images

    images = tmp_dir / "colours.h5"
    build_images(BuildImagesOptions(source=str(colours), output=str(images), size=20, command="test"))
    train = run_train(TrainOptions(source=str(images), out=str(tmp_dir / "results"), command="test"),
                      {"net": "resnet", "stages": "1", "filters": "4,8", "image_size": 16, "batch_size": 4,
                       "l2": 0.0, "epochs": 2, "patch": True, "ten_crop": True})
    flowers = make_class_folders(tmp_dir / "flowers", classes=("daisy", "rose", "tulip"), per_class=8, size=(30, 36))
    finetune = run_finetune(FinetuneOptions(source=str(flowers), recipe=tiny_recipe(), out=str(tmp_dir / "results"),
                                            command="test"))
    return {"build_images": image_file(images, tmp), "train": run_folder(train.run_dir, "train.json", tmp),
            "finetune": run_folder(finetune.run_dir, "recipe.json", tmp)}


def test_run_records_and_image_file_match_the_golden(records):
    if WRITE:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    golden = read_json(GOLDEN)
    assert list(records) == list(golden)
    for name in golden:
        assert_same(records[name], golden[name], name)


def test_the_comparison_can_fail(records):
    """The comparison notices a changed key order, a changed value and a lost key."""
    metrics = records["train"]["metrics"]
    reordered = dict(reversed(list(metrics.items())))
    with pytest.raises(AssertionError, match="keys"):
        assert_same(reordered, metrics)
    with pytest.raises(AssertionError):
        assert_same({**metrics, "n_train": metrics["n_train"] + 1}, metrics)
    with pytest.raises(AssertionError):
        assert_same({**metrics, "accuracy": metrics["accuracy"] - 0.5}, metrics)
    with pytest.raises(AssertionError, match="keys"):
        assert_same({k: v for k, v in metrics.items() if k != "kind"}, metrics)
