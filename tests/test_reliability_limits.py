"""Hostile inputs, round three: numbers that make garbage, sizes that exhaust memory, and the
messages of the newer commands (sweep, audit, merge, shards, predict, train, ensemble, explain).

One test (or one parametrized test) per family of docs/reliability.md's "Round three" table;
each failed on the main branch before these fixes (accepted the value and wrote garbage,
allocated gigabytes, stopped a sweep, or ended in a traceback or a misleading message).
No TensorFlow model is built here: extraction uses the NumPy ``color-stats`` extractor or
tiny ONNX graphs, training stops before its first epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import crash_driver
from conftest import make_class_folders, mounted_tmpfs
from featurebench.errors import FeaturebenchError
from featurebench.extract import run_extract
from featurebench.store.journal import partial_dir_for
from featurebench.store.reader import open_feature_file
from featurebench.store.writer import write_feature_arrays

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture()
def dataset(class_folders) -> Path:
    """Two classes x 6 JPEGs (conftest's ``class_folders``)."""
    return class_folders


def _features(path: Path, n: int = 40, dim: int = 4, classes=("a", "b"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(classes)
    return write_feature_arrays(path, rng.normal(size=(n, dim)) + y[:, None] * 3, y, list(classes))


# --- numbers that make garbage are refused before any work ----------------------------------------

@pytest.mark.parametrize("flag,value", [
    ("lr", float("nan")), ("lr", float("inf")), ("lr", 1e300), ("lr", 0.0), ("momentum", float("nan")),
    ("momentum", 1.5), ("power", float("inf")), ("step_factor", float("nan")), ("l2", float("nan")),
    ("width", 1e300), ("image_size", 5000), ("load_size", 5000),
])
def test_train_numbers_that_make_garbage_are_refused(flag, value):
    """``train --lr nan`` used to train (NaN loss from the first step); ``--image-size 5000`` ran
    out of memory. Checked when the settings resolve, before the source is opened."""
    from featurebench.train.settings import resolve_settings

    net = "minigooglenet" if flag == "width" else "alexnet" if flag == "l2" else "minivggnet"
    overrides = {flag: value, **({"schedule": "poly"} if flag == "power" else {}),
                 **({"schedule": "step"} if flag == "step_factor" else {})}
    with pytest.raises(FeaturebenchError, match=f"--{flag.replace('_', '-')} "):
        resolve_settings(net, overrides)


@pytest.mark.parametrize("key,value", [("lr", "nan"), ("warmup_lr", "1e400"), ("lr", 1e300), ("momentum", "nan"),
                                       ("image_size", 5000)])
def test_finetune_recipe_numbers_that_make_garbage_are_refused(key, value):
    from featurebench.finetune.recipes import apply_overrides, load_recipe

    with pytest.raises(FeaturebenchError, match=key):
        apply_overrides(load_recipe(None), {key: value}, where="recipe")


@pytest.mark.parametrize("preprocess", ["mean=1e400;std=1", "mean=0;std=1e-40", "mean=nan;std=0.2", "mean=0;std=inf",
                                        "mean=0.5;std=0"])
def test_preprocess_values_that_overflow_are_refused_before_the_model_is_built(preprocess, dataset, tmp_path,
                                                                               monkeypatch):
    import featurebench.extractors as extractors

    monkeypatch.setattr(extractors, "load_extractor",
                        lambda *a, **k: pytest.fail("the extractor was built: --preprocess was checked too late"))
    with pytest.raises(FeaturebenchError, match="--preprocess .*finite"):
        run_extract(crash_driver.options(dataset, tmp_path / "out.h5", preprocess=preprocess))
    assert not partial_dir_for(tmp_path / "out.h5").exists()


class _Broken(crash_driver.ColorStats):
    """Colour statistics, but one value of the third batch (or of every batch) is ``value``."""

    def __init__(self, value: float, every_batch: bool = False):
        self.value, self.every_batch, self.batches = value, every_batch, 0

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        self.batches += 1
        out = super()._forward(batch)
        if self.every_batch or self.batches == 3:
            out[-1, 2] = self.value
        return out


@pytest.mark.parametrize("value,dtype,fragment", [(np.nan, "float32", "NaN or infinite"),
                                                  (np.inf, "float32", "NaN or infinite"),
                                                  (1e6, "float16", "float16's range")])
def test_non_finite_features_stop_extract_before_a_file_every_reader_refuses(value, dtype, fragment, dataset,
                                                                             tmp_path, monkeypatch):
    """On main, `extract` said "Wrote …" (exit 0) and `fit`/`info` then refused the file. Now the
    batch is refused as it is computed; the shards before it stay in the journal."""
    import featurebench.extractors as extractors

    monkeypatch.setattr(extractors, "load_extractor", lambda *a, **k: _Broken(value))
    output = tmp_path / "out.h5"
    with pytest.raises(FeaturebenchError, match=fragment) as info:
        run_extract(crash_driver.options(dataset, output, batch_size=2, flush_rows=2, dtype=dtype))
    assert "no feature file is written" in str(info.value) and str(dataset) in str(info.value)
    assert not output.exists()
    assert sorted(p.name for p in partial_dir_for(output).glob("rows-*.npz")) == [
        "rows-000000000-000000002.npz", "rows-000000002-000000004.npz"]  # the two good batches
    monkeypatch.setattr(extractors, "load_extractor", lambda *a, **k: _Broken(value, every_batch=True))
    with pytest.raises(FeaturebenchError, match="nothing was written"):
        run_extract(crash_driver.options(dataset, tmp_path / "first.h5", batch_size=2, dtype=dtype))
    assert not partial_dir_for(tmp_path / "first.h5").exists()  # no journal a fixed model would not match


# --- ONNX model inputs and outputs ---------------------------------------------------------------

def _onnx(path: Path, height: int, width: int, tail=(), out_shape=("N", 4), inits=(), weight=1.0) -> Path:
    """image (N,3,H,W) -> 1x1 conv to 4 channels -> global average -> flatten "f" -> ``tail`` nodes -> "out"."""
    onnx = pytest.importorskip("onnx", reason="pip install 'featurebench[onnx]' to build test graphs")
    pytest.importorskip("openvino", reason="ONNX models run on OpenVINO (featurebench[onnx])")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Conv", ["image", "W", "B"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f" if tail else "out"]), *tail]
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.full((4, 3, 1, 1), weight, np.float32), "W"),
         numpy_helper.from_array(np.zeros(4, np.float32), "B"), *inits])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _onnx_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    from onnx import helper, numpy_helper

    ints = lambda name, v: numpy_helper.from_array(np.array([v], np.int64), name)  # noqa: E731
    return {
        "input-12000x12000": (_onnx(tmp_path / "big.onnx", 12000, 12000), "12000x12000 input .*4096x4096"),
        "zero-width": (_onnx(tmp_path / "zero.onnx", 8, 8, [helper.make_node("Slice", ["f", "s", "e", "a"], ["out"])],
                             ("N", 0), [ints("s", 0), ints("e", 0), ints("a", 1)]), "at least one value per image"),
        "scalar": (_onnx(tmp_path / "scalar.onnx", 8, 8, [helper.make_node("ReduceMean", ["f"], ["out"], keepdims=0)],
                         ()), "batch axis first"),
        "mean-over-batch": (_onnx(tmp_path / "bm.onnx", 8, 8, [helper.make_node("ReduceMean", ["f"], ["out"], axes=[0],
                                                                                keepdims=0)], (4,)),
                            "for a batch of 2 images; features need the batch first"),
        "batch-last": (_onnx(tmp_path / "t.onnx", 8, 8, [helper.make_node("Transpose", ["f"], ["out"], perm=[1, 0])],
                             (4, "N")), "only the batch, axis 0, may vary"),
    }


def test_onnx_input_over_the_cap_and_unusable_outputs_are_refused_when_the_model_loads(dataset, tmp_path):
    """On main the 12000x12000 model started decoding (1.7 GB per image, a MemoryError reported
    as an image failure); zero-width and scalar tensors failed after every image ran."""
    cases = _onnx_cases(tmp_path)
    for name, (model, fragment) in cases.items():
        with pytest.raises(FeaturebenchError, match=fragment):
            run_extract(crash_driver.options(dataset, tmp_path / f"{name}.h5", model=str(model)))
        assert not partial_dir_for(tmp_path / f"{name}.h5").exists(), name
    ok = _onnx(tmp_path / "ok.onnx", 8, 8)
    assert run_extract(crash_driver.options(dataset, tmp_path / "ok.h5", model=str(ok))).n_rows == 12


# --- audit -----------------------------------------------------------------------------------------

def _heavily_duplicated(path: Path) -> tuple[Path, np.ndarray]:
    """60 images in 3 classes; 80% of them have an exact copy and a near copy (noise 0.01);
    rows shuffled. Returns the file and each row's original image."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(60, 32)) + np.repeat(rng.normal(size=(3, 32)) * 3, 20, axis=0)
    rows, labels, origin = [], [], []
    for i in range(60):
        copies = [base[i], base[i].copy(), base[i] + rng.normal(scale=0.01, size=32)] if i % 5 else [base[i]]
        rows += copies
        labels += [i // 20] * len(copies)
        origin += [i] * len(copies)
    order = rng.permutation(len(rows))
    write_feature_arrays(path, np.array(rows)[order], np.array(labels)[order], ["a", "b", "c"])
    return path, np.array(origin)[order]


def test_audit_threshold_stays_meaningful_when_most_rows_have_copies(tmp_path):
    """On main the median nearest-neighbour distance was 0, the threshold cosine 1.0, and 18 of
    the 34 test rows with a copy in train were reported."""
    from featurebench.audit.run import run_audit

    path, origin = _heavily_duplicated(tmp_path / "dup.h5")
    result = run_audit(path, out=tmp_path / "audit", labels=False)
    split = open_feature_file(path).split_index
    expected = {row for row in range(split, len(origin)) if origin[row] in set(origin[:split])}
    found = {p["test_row"] for p in result.record["near_duplicates"]["pairs"]}
    assert found == expected and len(expected) > 30
    assert all(origin[p["train_row"]] == origin[p["test_row"]] for p in result.record["near_duplicates"]["pairs"])
    assert result.record["near_duplicates"]["threshold"] < 0.999


def test_audit_refuses_splits_it_cannot_work_on_and_describes_an_all_duplicate_test_set(tmp_path):
    from featurebench.audit.run import run_audit

    for name, n, classes in (("one-class", 20, ("a",)), ("two-images", 2, ("a", "b"))):
        path = _features(tmp_path / f"{name}.h5", n=n, classes=classes)
        with pytest.raises(FeaturebenchError, match="at least 2 classes") as info:
            run_audit(path, out=tmp_path / name, labels=False)
        assert str(path) in str(info.value)
    X = np.random.default_rng(0).normal(size=(12, 4))
    X[9:] = X[:3]  # the 3 test rows are copies of train rows
    path = write_feature_arrays(tmp_path / "alldup.h5", X, [0, 1] * 6, ["a", "b"])
    text = run_audit(path, out=tmp_path / "alldup", labels=False).describe()
    assert "every test row has a near-duplicate in train" in text


def test_label_names_with_line_breaks_keep_exclude_rows_one_row_per_line(tmp_path):
    pytest.importorskip("cleanlab", reason="the label audit needs the [audit] extra (cleanlab)")
    from featurebench.audit.run import run_audit
    from featurebench.fit.exclude import read_rows_file

    rng = np.random.default_rng(0)
    y = np.arange(80) % 2
    noisy = y.copy()
    noisy[[3, 10, 20]] = 1 - noisy[[3, 10, 20]]
    path = write_feature_arrays(tmp_path / "nl.h5", rng.normal(size=(80, 4)) + y[:, None] * 4, noisy,
                                ["new\nline", "b"])
    result = run_audit(path, out=tmp_path / "audit")
    issues = {r["row"] for r in result.record["label_issues"]["rows"]}
    assert issues
    lines = [line for line in result.exclude_path.read_text().splitlines() if line.strip()]
    assert all(line.startswith("#") or line.split()[0].isdigit() for line in lines), lines
    with open_feature_file(path) as features:
        assert set(read_rows_file(result.exclude_path, features).tolist()) == issues


# --- sweep -----------------------------------------------------------------------------------------

def test_local_sweep_goes_on_after_an_unexpected_error(tmp_path, monkeypatch):
    """On main the first unexpected error ended a local sweep; later cells never ran."""
    import featurebench.fit as fit

    files = [_features(tmp_path / f"f{k}.h5", seed=k) for k in range(2)]
    real = fit.run_fit

    def breaks_on_the_first_file(features, clf, **kwargs):
        if Path(features).name == "f0.h5":
            raise RuntimeError("something nobody expected")
        return real(features, clf, **kwargs)

    monkeypatch.setattr(fit, "run_fit", breaks_on_the_first_file)
    monkeypatch.setenv("FEATUREBENCH_LOG_DIR", str(tmp_path / "logs"))
    from featurebench.scale.sweep import run_sweep

    result = run_sweep(files, ["logreg"], tmp_path / "out", {"n_jobs": 1})
    assert len(result.runs) == 1 and len(result.failures) == 1
    path, clf, message = result.failures[0]
    assert path.endswith("f0.h5") and "RuntimeError: something nobody expected" in message
    log = next((tmp_path / "logs").iterdir())
    assert str(log) in message and "Traceback" in log.read_text()


def test_ray_sweep_failure_is_plain_text_with_its_cause(tmp_path, ray_cluster, monkeypatch):
    """On main a failed Ray task printed Ray's coloured banner (ANSI escapes) and no cause."""
    from featurebench.scale import sweep

    def broken_cell(features, clf, out, fit_args):
        raise ValueError("the cause")

    monkeypatch.setattr(sweep, "fit_cell", broken_cell)
    result = sweep.run_sweep([_features(tmp_path / "f.h5")], ["logreg"], tmp_path / "out", ray=True,
                             address=ray_cluster)
    (_, _, message), = result.failures
    assert "\x1b" not in message and "ValueError: the cause" in message, message


# --- feature files, shards and merge ----------------------------------------------------------------

def test_feature_file_without_paths_is_refused_by_name_in_fuse(tmp_path):
    """On main fuse/fit/sweep ended in KeyError (fuse naming the other file)."""
    from featurebench.ensemble.fuse import fuse_features

    good = _features(tmp_path / "good.h5")
    broken = _features(tmp_path / "nopaths.h5", seed=1)
    with h5py.File(broken, "a") as h5:
        del h5["paths"]
    for order in ([good, broken], [broken, good]):
        with pytest.raises(FeaturebenchError, match="missing paths") as info:
            fuse_features(order, tmp_path / "fused.h5")
        assert str(broken) in str(info.value) and "good.h5" not in str(info.value)


def test_shard_count_too_large_is_refused_before_any_work(dataset, tmp_path, monkeypatch):
    crash_driver.use_color_stats(monkeypatch.setattr)
    with pytest.raises(FeaturebenchError, match="--shards 99999999999999999999 must be between 1 and"):
        run_extract(crash_driver.options(dataset, tmp_path / "s.h5", shards=99999999999999999999))
    assert not partial_dir_for(tmp_path / "s.h5").exists()


def test_empty_shard_is_a_success_and_merges(tmp_path, monkeypatch):
    """2 images in 3 shards: shard 0 holds none. On main it exited 2 ("None of the 0 images ...")
    although its file was complete; a mismatched set printed ``np.int64(2)``."""
    crash_driver.use_color_stats(monkeypatch.setattr)
    from featurebench.scale.merge import merge_shards

    data = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=1, size=(24, 32))
    shards = [tmp_path / f"s{i}.h5" for i in range(3)]
    summaries = [run_extract(crash_driver.options(data, shard, shards=3, shard_index=i)) for i, shard in
                 enumerate(shards)]
    assert [s.n_rows for s in summaries] == [0, 1, 1]
    with open_feature_file(shards[0]) as empty:
        assert empty.n_rows == 0
    assert merge_shards(shards, tmp_path / "merged.h5")["n_rows"] == 2
    other = run_extract(crash_driver.options(data, tmp_path / "o.h5", shards=2, shard_index=0))
    with pytest.raises(FeaturebenchError, match=r"\(shard_count: 2 vs 3\)") as info:
        merge_shards([shards[0], shards[1], other.output], tmp_path / "bad.h5")
    assert "np." not in str(info.value)


# --- Ctrl+C and interrupted set-up ---------------------------------------------------------------

def test_ctrl_c_before_any_batch_does_not_claim_a_saved_partial(dataset, tmp_path):
    code = f"""
import sys
import featurebench.extractors as extractors
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
extractors.load_extractor = interrupted
sys.argv = ["featurebench", "extract", {str(dataset)!r}, "-o", {str(tmp_path / 'out.h5')!r}, "--model", "x"]
from featurebench.cli import main
main()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 130, result.stderr[-2000:]
    assert "nothing was saved" in result.stderr and ".partial" not in result.stderr, result.stderr
    assert not partial_dir_for(tmp_path / "out.h5").exists()


def test_train_interrupted_during_set_up_leaves_no_folder_that_demands_force(tmp_path, monkeypatch):
    """On main a Ctrl+C before the first epoch left the run folder, and the same command then
    said it already exists (pass --force)."""
    import featurebench.train.loop as loop
    from featurebench.train.loop import TrainInterrupted
    from featurebench.train.run import TrainOptions, run_train

    data = make_class_folders(tmp_path / "data", per_class=4, size=(16, 16))
    opts = TrainOptions(source=str(data), out=str(tmp_path / "results"), command="test")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train_and_record", interrupted)
    try:
        run_train(opts, {"net": "minivggnet", "image_size": 16})
    except KeyboardInterrupt as exc:  # a plain one would stop pytest itself
        stop = exc
    assert isinstance(stop, TrainInterrupted) and stop.checkpoint is None
    assert not (tmp_path / "results" / "data__minivggnet__scratch-none").exists()
    monkeypatch.setattr(loop, "train_and_record", lambda *args, **kwargs: "trained")
    assert run_train(opts, {"net": "minivggnet", "image_size": 16}) == "trained"  # no --force needed


# --- predict on run folders -------------------------------------------------------------------------

def test_predict_takes_a_fit_run_folder_and_names_what_a_train_model_is(tmp_path):
    """On main `predict RUN_DIR` said the folder "does not exist"; a train run's model.keras
    gave "KeyError"."""
    from featurebench.fit.bundle import load_bundle
    from featurebench.fit.run import run_fit

    run = run_fit(_features(tmp_path / "f.h5"), "logreg", out=tmp_path / "results", n_jobs=1).run_dir
    assert load_bundle(run).path == run / "model.skops" and load_bundle(run).label_names == ["a", "b"]
    scratch = tmp_path / "results" / "colours__resnet__scratch-none"
    scratch.mkdir()
    (scratch / "model.keras").write_bytes(b"PK\x03\x04 a keras zip")
    for target in (scratch, scratch / "model.keras"):
        with pytest.raises(FeaturebenchError, match="is a Keras network .*featurebench explain"):
            load_bundle(target)
    with pytest.raises(FeaturebenchError, match="folder without model.skops"):
        load_bundle(tmp_path)


# --- read-only outputs: checked before the work ---------------------------------------------------

@pytest.fixture()
def read_only_folder(tmp_path):
    yield from mounted_tmpfs(tmp_path / "ro", "ro,size=1m")


def test_read_only_outputs_of_the_newer_commands_are_refused_first(tmp_path, read_only_folder, monkeypatch):
    """ensemble, audit, explain, train and build-images checked their output after the work
    (explain after every image) or not at all (a raw OSError)."""
    from featurebench.audit.run import run_audit
    from featurebench.ensemble.average import run_ensemble
    from featurebench.explain.run import explain_images
    from featurebench.training.image_file import BuildImagesOptions, build_images
    from featurebench.fit.run import run_fit
    from featurebench.train.run import TrainOptions, run_train

    features = _features(tmp_path / "f.h5")
    runs = [run_fit(features, clf, out=tmp_path / "results", n_jobs=1).run_dir for clf in ("logreg", "knn")]
    data = make_class_folders(tmp_path / "data", per_class=4, size=(16, 16))
    ro = read_only_folder / "out"
    checks = {
        "ensemble": lambda: run_ensemble(runs, out=ro),
        "audit": lambda: run_audit(features, out=ro, labels=False),
        "explain": lambda: explain_images(runs[0], [data], ro),
        "train": lambda: run_train(TrainOptions(source=str(data), out=str(ro)), {"net": "minivggnet",
                                                                                 "image_size": 16}),
        "build-images": lambda: build_images(BuildImagesOptions(source=str(data), output=str(read_only_folder /
                                                                                              "images.h5"))),
    }
    for name, call in checks.items():
        with pytest.raises(FeaturebenchError, match="Read-only file system") as info:
            call()
        assert str(read_only_folder) in str(info.value), name
