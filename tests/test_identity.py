"""Artefact identity (featurebench.store.identity): every join of files, runs, shards, checkpoints and
caches is checked, so two artefacts that share a name but not an identity are refused in one line.

One test per family of docs/reliability.md's "What is checked when artefacts are combined"; each
failed on the main branch before identities (the join went ahead, or ended in a traceback).
Extractions use the NumPy-only ColorStats extractor of crash_driver (no TensorFlow).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import crash_driver
from conftest import make_class_folders
from featurebench.errors import FeaturebenchError
from featurebench.extract import run_extract
from featurebench.store import identity
from featurebench.store.reader import open_feature_file
from featurebench.store.writer import write_feature_arrays


@pytest.fixture()
def color_stats(monkeypatch):
    crash_driver.use_color_stats(monkeypatch.setattr)


def extract(source: Path, output: Path, **kwargs) -> Path:
    run_extract(crash_driver.options(source, output, **kwargs))
    return output


def fit(path: Path, out: Path, **kwargs) -> Path:
    from featurebench.fit import run_fit

    return run_fit(path, "logreg", grid='{"C": [1.0]}', cv=2, n_jobs=1, out=out, command="test", n_boot=20,
                   **kwargs).run_dir


@pytest.fixture()
def train_and_val(tmp_path, color_stats) -> tuple[Path, Path]:
    """Two folders whose files share every relative name (train/ and val/), with other images,
    extracted the same way."""
    train = make_class_folders(tmp_path / "train", classes=("a", "b"), per_class=8, size=(16, 16), seed=1)
    val = make_class_folders(tmp_path / "val", classes=("a", "b"), per_class=8, size=(16, 16), seed=2)
    a, b = extract(train, tmp_path / "train.h5"), extract(val, tmp_path / "val.h5")
    with open_feature_file(a) as fa, open_feature_file(b) as fb:
        assert fa.paths == fb.paths  # the same names: joining by path alone cannot tell them apart
    return a, b


# --- the mechanism --------------------------------------------------------------------------------

def test_identity_is_stored_readable_with_h5py_and_shown_by_info(tmp_path, color_stats):
    from featurebench.info import describe

    source = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=5, size=(16, 16))
    out = extract(source, tmp_path / "f.h5")
    with h5py.File(out, "r") as h5:
        stored = json.loads(h5.attrs["identity"])
        assert stored["source_root"] == str(source.resolve()) and len(stored["content_digest"]) == 64
        assert stored["digest"] == identity.seal(stored)["digest"]
    assert f"identity:     {stored['digest'][:16]}" in describe(out)
    # The same images in another folder have the same content digest, another source root.
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    with open_feature_file(extract(copy, tmp_path / "g.h5")) as other:
        assert other.identity["content_digest"] == stored["content_digest"]
        assert other.identity["source_root"] != stored["source_root"]


def test_old_files_get_a_computed_identity_and_info_says_so(tmp_path):
    from featurebench.info import describe

    path = write_feature_arrays(tmp_path / "old.h5", np.eye(4), [0, 1, 0, 1], ["x", "y"])
    with h5py.File(path, "a") as h5:
        del h5.attrs["identity"]  # as written before identities
    with open_feature_file(path) as features:
        assert features.identity["recorded"] is False and features.identity["rows_digest"]
    assert "written before identities were recorded" in describe(path)


def test_check_joinable_names_the_first_difference():
    a = {"content_digest": None, "source_root": "/data/train", "n_rows": 3, "rows_digest": "r", "seed": 42,
         "split_index": 2}
    identity.check_joinable("fuse", a, dict(a), "A", "B")
    with pytest.raises(FeaturebenchError, match=r"^fuse: B and A are not the same images .*source_root: /data/val "
                                                r"vs /data/train.*same --seed\.$"):
        identity.check_joinable("fuse", a, {**a, "source_root": "/data/val"}, "A", "B")
    # With content digests on both sides, they decide (the same images moved elsewhere are the same).
    moved = {**a, "content_digest": "c", "source_root": "/elsewhere"}
    identity.check_joinable("fuse", {**a, "content_digest": "c"}, moved, "A", "B")


# --- fuse / ensemble: rows lined up by relative path only --------------------------------------------

def test_fuse_refuses_two_folders_whose_files_share_names(train_and_val, tmp_path):
    from featurebench.ensemble import fuse_features

    a, b = train_and_val
    with pytest.raises(FeaturebenchError, match="fuse: .*val.h5 and .*train.h5 are not the same images .*"
                                                "content_digest"):
        fuse_features([a, b], tmp_path / "ab.h5")
    assert not (tmp_path / "ab.h5").exists()


def test_fuse_keeps_the_inputs_skipped_ignored_and_duplicates_tables(tmp_path, color_stats):
    from featurebench.ensemble import fuse_features

    source = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=6, size=(16, 16))
    (source / "a" / "broken.jpg").write_bytes(b"not an image at all")
    (source / "b" / "notes.txt").write_text("not an image candidate")
    shutil.copy(source / "a" / "a_000.jpg", source / "b" / "copy.jpg")
    one = extract(source, tmp_path / "one.h5")
    two = extract(source, tmp_path / "two.h5", resize="center-crop")
    fuse_features([one, two], tmp_path / "fused.h5")
    with open_feature_file(one) as f, open_feature_file(tmp_path / "fused.h5") as fused:
        assert fused.skipped == f.skipped and len(fused.skipped) == 1
        assert fused.ignored == f.ignored and len(fused.ignored) == 1
        assert fused.duplicates == f.duplicates and len(fused.duplicates) == 1
        assert fused.attrs["n_candidates"] == f.attrs["n_candidates"]
        assert fused.identity["content_digest"] == f.identity["content_digest"]


def test_ensemble_refuses_runs_of_two_folders_whose_files_share_names(train_and_val, tmp_path):
    from featurebench.ensemble import run_ensemble

    a, b = train_and_val
    runs = [fit(a, tmp_path / "ra"), fit(b, tmp_path / "rb")]
    with pytest.raises(FeaturebenchError, match="ensemble: .* are not runs on the same images .*content_digest"):
        run_ensemble(runs, tmp_path / "ens", command="test")


def _two_runs(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 2
    path = write_feature_arrays(tmp_path / "f.h5", rng.normal(size=(40, 4)) + labels[:, None], labels, ["x", "y"])
    return [fit(path, tmp_path / "results"), fit(path, tmp_path / "results", scale="standard")]


@pytest.mark.parametrize("damage", ["nan", "negative", "width", "length", "shape"])
def test_ensemble_refuses_damaged_probability_files_naming_the_file(tmp_path, damage):
    from featurebench.ensemble import run_ensemble
    from featurebench.fit.record import read_probabilities

    runs = _two_runs(tmp_path)
    p = read_probabilities(runs[1] / "probabilities.npz")
    scores, paths, y = p["scores"].copy(), p["paths"], p["y_true"]
    if damage == "nan":
        scores[0, 0] = np.nan
    elif damage == "negative":
        scores[0] = [-0.5, 1.5]
    elif damage == "width":
        scores = np.hstack([scores, np.zeros((len(scores), 1))])
    elif damage == "length":
        scores = scores[:-1]
    else:
        scores = scores.ravel()
    np.savez(runs[1] / "probabilities.npz", paths=np.array(paths), y_true=y, scores=scores,  # as a damaged file
             label_names=np.array(p["label_names"]), score_kind=np.array("probability"))
    with pytest.raises(FeaturebenchError, match=f"^{runs[1] / 'probabilities.npz'}: "):
        run_ensemble(runs, tmp_path / "ens", command="test")


def test_ensemble_never_writes_over_a_member(tmp_path):
    from featurebench.ensemble import run_ensemble

    runs = _two_runs(tmp_path)
    before = sorted(p.name for p in runs[0].iterdir())
    with pytest.raises(FeaturebenchError, match="is one of the inputs"):
        run_ensemble(runs, runs[0].parent, run_name=runs[0].name, force=True, command="test")
    with pytest.raises(FeaturebenchError, match="holds one of the inputs"):
        run_ensemble(runs, runs[0].parent.parent, run_name=runs[0].parent.name, force=True, command="test")
    assert sorted(p.name for p in runs[0].iterdir()) == before


def test_fit_never_writes_a_run_folder_over_its_feature_file(tmp_path):
    path = write_feature_arrays(tmp_path / "results" / "run" / "f.h5", np.eye(8), [0, 1] * 4, ["x", "y"])
    with pytest.raises(FeaturebenchError, match="holds one of the inputs"):
        fit(path, tmp_path / "results", run_name="run", force=True)
    assert path.is_file()


# --- merge --virtual: the shards behind the file ---------------------------------------------------

@pytest.fixture()
def virtual(tmp_path, color_stats) -> tuple[Path, Path, list[Path]]:
    from featurebench.scale.merge import merge_shards

    source = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=6, size=(16, 16))
    shards = [extract(source, tmp_path / f"s{i}.h5", shards=2, shard_index=i) for i in range(2)]
    merge_shards(shards, tmp_path / "merged.h5", virtual=True)
    with open_feature_file(tmp_path / "merged.h5"):
        pass  # fine as merged
    return source, tmp_path / "merged.h5", shards


def _refused_everywhere(merged: Path, tmp_path: Path, pattern: str) -> None:
    from featurebench.info import describe
    from featurebench.scale.sweep import run_sweep

    with pytest.raises(FeaturebenchError, match=pattern):
        open_feature_file(merged)
    assert "complete:     NO (unusable:" in describe(merged)
    with pytest.raises(FeaturebenchError, match=pattern):
        fit(merged, tmp_path / "results")
    result = run_sweep([merged], ["logreg"], tmp_path / "sweep", {"grid": '{"C": [1.0]}', "cv": 2, "n_jobs": 1})
    assert not result.runs and pattern.split(".*")[0] in result.failures[0][2]


def test_virtual_file_with_a_deleted_shard_is_refused(virtual, tmp_path):
    _, merged, shards = virtual
    shards[1].unlink()
    _refused_everywhere(merged, tmp_path, "which is missing .*moved or deleted")


def test_virtual_file_copied_elsewhere_is_refused(virtual, tmp_path):
    _, merged, _ = virtual
    (tmp_path / "elsewhere").mkdir()
    copy = Path(shutil.copy(merged, tmp_path / "elsewhere" / "merged.h5"))
    _refused_everywhere(copy, tmp_path, "which is missing")


def test_virtual_file_whose_shard_was_replaced_by_another_extraction_is_refused(virtual, tmp_path, color_stats):
    source, merged, shards = virtual
    extract(source, shards[0], shards=2, shard_index=0, resize="center-crop", force=True)
    _refused_everywhere(merged, tmp_path, "is not the one merged .*digest")


@pytest.mark.parametrize("damage", ["truncated", "resized"])
def test_virtual_file_with_a_truncated_or_resized_shard_is_one_line(virtual, tmp_path, damage):
    _, merged, shards = virtual
    if damage == "truncated":
        data = shards[1].read_bytes()
        shards[1].write_bytes(data[:len(data) // 2])
        pattern = "cannot be read"
    else:
        with h5py.File(shards[1], "a") as h5:
            rows = h5["features"][:-1]
            del h5["features"]
            h5["features"] = rows
        pattern = "holds features of shape"
    _refused_everywhere(merged, tmp_path, pattern)


def test_merge_refuses_shards_of_two_extractions(tmp_path, color_stats):
    from featurebench.scale.merge import merge_shards

    source = make_class_folders(tmp_path / "photos", classes=("a", "b"), per_class=6, size=(16, 16))
    one = extract(source, tmp_path / "s0.h5", shards=2, shard_index=0)
    other = extract(source, tmp_path / "t1.h5", shards=2, shard_index=1, resize="center-crop")
    with pytest.raises(FeaturebenchError, match="merge shards: .* are not shards of one extraction .*shard_of"):
        merge_shards([one, other], tmp_path / "merged.h5")


def test_moving_the_folder_as_a_whole_keeps_a_virtual_file_usable(virtual, tmp_path):
    source, merged, _ = virtual
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("merged.h5", "s0.h5", "s1.h5"):
        shutil.move(tmp_path / name, moved / name)
    with open_feature_file(moved / "merged.h5") as features:
        assert features.read_rows().any()


# --- run names and --skip-existing --------------------------------------------------------------------

def test_run_names_tell_apart_files_that_differ_only_in_extraction_settings(tmp_path, color_stats):
    source = make_class_folders(tmp_path / "photos", classes=("a", "b"), per_class=6, size=(16, 16))
    default = fit(extract(source, tmp_path / "default.h5"), tmp_path / "results")
    assert default.name == "photos__color-stats__logreg"  # today's name when nothing differs
    seeded = fit(extract(source, tmp_path / "seed7.h5", seed=7), tmp_path / "results")
    pooled = fit(extract(source, tmp_path / "pool.h5", layer="stats", pool="max"), tmp_path / "results")
    assert seeded.name == "photos__color-stats__logreg__seed7"
    assert pooled.name == "photos__color-stats__logreg__layer-stats__pool-none"  # ColorStats does not pool
    assert len({default, seeded, pooled}) == 3


def test_skip_existing_refuses_a_run_of_another_file_with_the_same_name(train_and_val, tmp_path):
    a, b = train_and_val
    run = fit(a, tmp_path / "results")
    other = tmp_path / "b" / "train.h5"  # another file of the same name: the same run name
    other.parent.mkdir()
    shutil.copy(b, other)
    with pytest.raises(FeaturebenchError, match="skip-existing: .* are not a run and the feature file it was "
                                                "fitted on .*--force"):
        fit(other, tmp_path / "results", skip_existing=True)
    assert json.loads((run / "metrics.json").read_text())["feature_identity"]["source_root"].endswith("train")
    # The same file is skipped as before.
    from featurebench.fit import run_fit

    assert run_fit(a, "logreg", grid='{"C": [1.0]}', cv=2, n_jobs=1, out=tmp_path / "results",
                   skip_existing=True).skipped


@pytest.mark.parametrize("text", ['{"accuracy": 0.9', "[1, 2]", ""])
def test_skip_existing_with_a_damaged_metrics_json_is_one_line(tmp_path, text):
    path = write_feature_arrays(tmp_path / "f.h5", np.eye(8), [0, 1] * 4, ["x", "y"])
    run = fit(path, tmp_path / "results")
    (run / "metrics.json").write_text(text)
    with pytest.raises(FeaturebenchError, match=r"^--skip-existing: .*metrics.json .*--force"):
        fit(path, tmp_path / "results", skip_existing=True)


def test_sweep_refuses_two_files_that_would_share_run_folders(tmp_path):
    from featurebench.scale.sweep import run_sweep

    rng = np.random.default_rng(0)
    paths = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        paths.append(write_feature_arrays(tmp_path / name / "f.h5", rng.normal(size=(8, 3)), [0, 1] * 4, ["x", "y"],
                                          attrs={"weights_sha256": name * 8}))
    with pytest.raises(FeaturebenchError, match="sweep: .* differ \\(weights_sha256\\) but would write the same"):
        run_sweep(paths, ["logreg"], tmp_path / "results", {"grid": '{"C": [1.0]}', "cv": 2, "n_jobs": 1})
    assert not (tmp_path / "results").exists()


# --- audit --run ----------------------------------------------------------------------------------

def test_audit_refuses_a_run_fitted_on_another_file_with_the_same_row_count(train_and_val, tmp_path):
    from featurebench.audit.run import run_audit

    a, b = train_and_val
    run = fit(a, tmp_path / "results")
    with pytest.raises(FeaturebenchError, match="audit --run: .* are not a run and the feature file it was fitted "
                                                "on .*content_digest"):
        run_audit(b, run, labels=False)
    assert not (run / "audit.json").exists()


# --- train --resume ----------------------------------------------------------------------------------

def _stopped_train_run(tmp_path: Path, source: Path) -> Path:
    """A train run folder as an interrupted ``train`` leaves it (settings, state, a checkpoint), made
    without TensorFlow: the checks run before any model is loaded."""
    import zipfile

    from featurebench.training.checkpoint import TrainState
    from featurebench.training.folder_source import FolderSource
    from featurebench.train.settings import resolve_settings

    settings = resolve_settings("resnet", {"stages": "1", "filters": "4,8", "image_size": 16, "batch_size": 4,
                                           "epochs": 3})
    run = tmp_path / "results" / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "train.json").write_text(json.dumps(settings.to_dict()))
    with zipfile.ZipFile(run / "checkpoint" / "epoch-0001-scratch.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\0" * 1000)
    found = FolderSource(str(source), 16, resize=settings.resize, seed=settings.seed,
                         train_fraction=settings.train_fraction, val_fraction=settings.val_fraction).identity()
    state = TrainState(phase="scratch", epochs_done=1, model_file="epoch-0001-scratch.keras", source_identity=found,
                       history=[{"epoch": 0}])
    (run / "checkpoint" / "state.json").write_text(json.dumps(state.__dict__))
    return run


def _resume(run: Path, source: Path):
    from featurebench.train.run import TrainOptions, run_train

    return run_train(TrainOptions(source=str(source), resume=str(run), command="test"), {})


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("classes", [("a", "b"), ("a", "b", "c")])
def test_train_resume_refuses_another_source_before_touching_the_run(tmp_path, classes):
    first = make_class_folders(tmp_path / "first", classes=("a", "b"), per_class=6, size=(16, 16), seed=1)
    other = make_class_folders(tmp_path / "other", classes=classes, per_class=6, size=(16, 16), seed=2)
    run = _stopped_train_run(tmp_path, first)
    before = _snapshot(run)
    with pytest.raises(FeaturebenchError, match="resume: .* are not the same training source .*"
                                                + ("source_root" if len(classes) == 2 else "source_root")):
        _resume(run, other)
    assert _snapshot(run) == before


@pytest.mark.parametrize("damage", ["empty", "truncated", "state-list", "state-types"])
def test_train_resume_with_a_damaged_checkpoint_is_one_line(tmp_path, damage):
    source = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=6, size=(16, 16))
    run = _stopped_train_run(tmp_path, source)
    model, state = run / "checkpoint" / "epoch-0001-scratch.keras", run / "checkpoint" / "state.json"
    if damage == "empty":
        model.write_bytes(b"")
    elif damage == "truncated":
        model.write_bytes(model.read_bytes()[:300])
    elif damage == "state-list":
        state.write_text("[1, 2]")
    else:
        state.write_text(json.dumps({**json.loads(state.read_text()), "epochs_done": "one", "history": 3}))
    pattern = "damaged or truncated" if damage in ("empty", "truncated") else "Checkpoint state .* is unreadable"
    with pytest.raises(FeaturebenchError, match=pattern):
        _resume(run, source)


# --- extract resume: an ONNX model's external weights ------------------------------------------------

def test_onnx_external_data_is_part_of_the_weights_identity(tmp_path):
    onnx = pytest.importorskip("onnx", reason="pip install onnx (the test extra) to build the model")
    from onnx import TensorProto, helper, numpy_helper

    from featurebench.extractors.hashing import file_provenance

    weights = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [weights])
    model = helper.make_model(graph)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=0)
    before = file_provenance(path, "onnx")
    assert before["weights_files"] == ["m.onnx", "m.onnx.data"]
    data = bytearray((tmp_path / "m.onnx.data").read_bytes())
    data[0] ^= 0xFF  # other weights, same size, the .onnx untouched
    (tmp_path / "m.onnx.data").write_bytes(bytes(data))
    assert file_provenance(path, "onnx")["weights_sha256"] != before["weights_sha256"]
