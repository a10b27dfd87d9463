"""Hostile inputs, round two: no hang, no unbounded read, no lost file, no traceback.

One test (or one parametrized test) per family of docs/reliability.md's "Round two"
table; each failed on the main branch before these fixes (hung, ate memory, replaced
or deleted a file, or ended in a raw traceback). The corpus cases of these families
(special files, the byte cap, class-level links, high bit depth, 1x20000) run through
the one corpus extraction in test_reliability_corpus.py.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import crash_driver
from conftest import default_sigint, make_class_folders, mounted_tmpfs
from featurebench.data.decode import SkipImage, read_image_bytes
from featurebench.errors import FeaturebenchError
from featurebench.extract import run_extract
from featurebench.info import describe
from featurebench.store.journal import partial_dir_for
from featurebench.store.reader import open_feature_file
from featurebench.store.writer import write_feature_arrays

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture()
def dataset(tmp_path) -> Path:
    return make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=6, size=(24, 32))


@pytest.fixture()
def color_stats(monkeypatch):
    crash_driver.use_color_stats(monkeypatch.setattr)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")])}


# --- must not hang or eat memory ---------------------------------------------------------------

def _finishes(function, seconds: float = 5.0):
    """Run ``function`` in a daemon thread; its result, or a failure if it is still running."""
    box: dict = {}

    def target():
        try:
            box["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked on a read?)"
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_special_files_are_never_opened_and_reads_are_capped(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    zeros = tmp_path / "zeros.jpg"
    zeros.symlink_to("/dev/zero")
    for path, kind in ((fifo, "FIFO"), (zeros, "character device")):
        with pytest.raises(SkipImage) as info:
            _finishes(lambda: read_image_bytes(path))
        assert info.value.reason == "unreadable" and "not a regular file" in info.value.detail, info.value
        assert kind in info.value.detail
    big = tmp_path / "big.png"
    big.write_bytes(bytes(3 << 20))
    with pytest.raises(SkipImage) as info:
        read_image_bytes(big, max_bytes=1 << 20)
    assert info.value.reason == "too large" and "--max-file-mb" in info.value.detail
    assert read_image_bytes(big, max_bytes=4 << 20) == bytes(3 << 20)


def test_center_crop_memory_is_flat_at_extreme_aspect_ratios():
    """1x100000 and 100000x1 through center-crop to 224x224 under a 1 GB address-space limit
    (scaling the whole image first needs 224 x 22,400,000 x 3 bytes = 15 GB)."""
    code = """
import resource, numpy as np
from featurebench.data.resize import resize_image
image_tall, image_wide = np.full((100000, 1, 3), 77, np.uint8), np.full((1, 100000, 3), 77, np.uint8)
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
for image in (image_tall, image_wide):
    out = resize_image(image, (224, 224), "center-crop")
    assert out.shape == (224, 224, 3) and int(out.min()) == int(out.max()) == 77, out.shape
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) // 1024)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) < 400


def test_center_crop_cuts_the_centre_like_before():
    """Cropping in source coordinates keeps what the old resize-then-crop kept."""
    from featurebench.data.resize import resize_image

    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 200  # the centre third is bright
    out = resize_image(image, (50, 50), "center-crop")
    assert out.shape == (50, 50, 3) and out.min() == 200


def test_ctrl_c_ends_extract_promptly_while_a_read_is_blocked(dataset, tmp_path):
    """A decode thread stuck in a read that never returns (a hung network share): SIGINT still
    ends `featurebench extract` within seconds, exit code 130, and the command can resume."""
    marker = tmp_path / "blocked"
    code = f"""
import faulthandler, signal, sys, time
from pathlib import Path
faulthandler.register(signal.SIGUSR1)  # the test asks for every thread's stack if the exit hangs
import crash_driver
from featurebench.data import pipeline
crash_driver.use_color_stats()
real = pipeline.read_bytes
def read(location, *args):
    if Path(str(location)).name == "b_003.jpg":
        Path({str(marker)!r}).write_text("x")
        time.sleep(3600)
    return real(location, *args)
pipeline.read_bytes = read
sys.argv = ["featurebench", "extract", {str(dataset)!r}, "-o", {str(tmp_path / 'out.h5')!r}, "--model", "color-stats",
            "--batch-size", "2", "--flush-rows", "2", "--precision", "fp32"]
from featurebench.cli import main
main()
"""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_env(), preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the blocking read was never reached"
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # where it hangs, for the failure message
            time.sleep(1)
            process.kill()
            pytest.fail("extract did not end within 15 s of Ctrl+C; its threads:\n" + process.communicate()[1][-6000:])
    finally:
        if process.poll() is None:
            process.kill()
    assert time.monotonic() - started < 10
    assert process.returncode == 130, stderr[-2000:]
    assert "Interrupted" in stderr and "Traceback" not in stderr


def _zip_bomb(path: Path, schema_bytes: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("schema.json", "w", force_zip64=True) as member:
            block = b" " * (1 << 20)
            for _ in range(schema_bytes >> 20):
                member.write(block)
    return path


def test_bundle_zip_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    """A schema that inflates past the cap is refused from the zip directory (the cap is
    lowered to 256 KiB here so that the bomb stays quick to build)."""
    from featurebench.fit import bundle
    from featurebench.fit.bundle import load_bundle

    monkeypatch.setattr(bundle, "MAX_SCHEMA_BYTES", 256 << 10)
    bomb = _zip_bomb(tmp_path / "model.skops", 4 << 20)
    assert bomb.stat().st_size < 20_000
    with pytest.raises(FeaturebenchError, match="zip bomb") as info:
        load_bundle(bomb)
    assert str(bomb) in str(info.value)


# --- must not lose or corrupt data --------------------------------------------------------------

def test_output_finished_by_another_run_meanwhile_is_not_replaced(dataset, tmp_path, color_stats, monkeypatch):
    """Run B passed the 'already exists' check; run A then renames its file into place. B must
    neither replace A's file nor leave a journal behind: re-checked after taking the lock."""
    from featurebench import extract

    output = tmp_path / "out.h5"
    real_open = extract.Journal.open

    def other_run_finishes_first(out, manifest, force=False):
        output.write_bytes(b"the other run's finished file")
        return real_open(out, manifest, force)

    monkeypatch.setattr(extract.Journal, "open", other_run_finishes_first)
    with pytest.raises(FeaturebenchError, match="already exists"):
        run_extract(crash_driver.options(dataset, output))
    assert output.read_bytes() == b"the other run's finished file"
    assert not partial_dir_for(output).exists()


def test_output_appearing_during_the_final_rename_is_kept(dataset, tmp_path, color_stats, monkeypatch):
    """The last step never renames over a file without --force (hard link: atomic check)."""
    from featurebench.store import writer

    output = tmp_path / "out.h5"
    real_check = writer._check_free_space

    def appears(*args):
        output.write_bytes(b"theirs")
        return real_check(*args)

    monkeypatch.setattr(writer, "_check_free_space", appears)
    with pytest.raises(FeaturebenchError, match="appeared while this run was finishing"):
        run_extract(crash_driver.options(dataset, output))
    assert output.read_bytes() == b"theirs"
    assert partial_dir_for(output).exists()  # this run's work is kept
    monkeypatch.setattr(writer, "_check_free_space", real_check)
    summary = run_extract(crash_driver.options(dataset, output, force=True))
    assert summary.n_rows == 12 and open_feature_file(output).n_rows == 12


def test_glob_characters_in_the_output_name_touch_no_other_file(dataset, tmp_path, color_stats):
    other_temp = tmp_path / ".feat1.h5.tmp-99999"
    other_temp.write_bytes(b"another extraction's temporary file")
    run_extract(crash_driver.options(dataset, tmp_path / "feat[12].h5"))
    assert other_temp.exists()
    assert (tmp_path / "feat[12].h5").exists()


def test_class_folder_links_are_ignored_unless_opted_in(dataset, tmp_path):
    from featurebench.data.sources import list_source

    outside = tmp_path / "outside"
    make_class_folders(outside, classes=("z",), per_class=2)
    (dataset / "again").symlink_to(".", target_is_directory=True)
    (dataset / "extra").symlink_to(outside / "z", target_is_directory=True)
    listing = list_source(dataset)
    assert listing.label_names == ["a", "b"] and len(listing.candidates) == 12
    reasons = dict(listing.ignored)
    assert reasons["again"].startswith("link to a folder (not followed)") and "--follow-class-links" in reasons["extra"]
    followed = list_source(dataset, follow_class_links=True)
    assert "extra" in followed.label_names and len(followed.candidates) > 12


# --- every failure is a clear message, found before any work -------------------------------------

@pytest.mark.parametrize("changes,fragment", [
    ({"compression": "foo"}, "--compression 'foo'"),
    ({"seed": -1}, "--seed -1"),
    ({"batch_size": -3}, "--batch-size -3"),
    ({"workers": 0}, "--workers 0"),
    ({"output": "folder", "force": True}, "is a folder"),
    ({"output": "n" * 250 + ".h5"}, "file name is 253 bytes"),
], ids=["compression", "seed", "batch-size", "workers", "output-is-folder", "name-too-long"])
def test_bad_extract_options_are_refused_before_any_work(changes, fragment, dataset, tmp_path, monkeypatch):
    import featurebench.extractors as extractors

    def never(*args, **kwargs):
        raise AssertionError("the extractor was built: options were checked too late")

    monkeypatch.setattr(extractors, "load_extractor", never)
    (tmp_path / "folder").mkdir()
    output = tmp_path / changes.pop("output", "out.h5")
    with pytest.raises(FeaturebenchError, match=fragment.replace("(", r"\(")):
        run_extract(crash_driver.options(dataset, output, **changes))


@pytest.fixture()
def read_only_folder(tmp_path):
    """A real read-only file system (root ignores permission bits): a tmpfs mounted ro."""
    yield from mounted_tmpfs(tmp_path / "ro", "ro,size=1m")


def test_read_only_outputs_are_clear_errors(dataset, read_only_folder, tmp_path, color_stats):
    from featurebench.fit.run import run_fit
    from featurebench.report import build_report

    with pytest.raises(FeaturebenchError, match="Read-only file system"):
        run_extract(crash_driver.options(dataset, read_only_folder / "out.h5"))
    features = write_feature_arrays(tmp_path / "f.h5", np.random.default_rng(0).normal(size=(40, 4)),
                                    [i % 2 for i in range(40)], ["a", "b"])
    with pytest.raises(FeaturebenchError, match="--out .*Read-only file system"):
        run_fit(features, "logreg", out=read_only_folder / "results", n_jobs=1)
    run_fit(features, "logreg", out=tmp_path / "results", n_jobs=1)
    with pytest.raises(FeaturebenchError, match="-o .*Read-only file system"):
        build_report(tmp_path / "results", read_only_folder / "report.html", plots=False)


def test_disk_full_writing_the_manifest_is_clear(dataset, tmp_path, color_stats, monkeypatch):
    from featurebench.store import journal

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal, "_atomic_write", disk_full)
    with pytest.raises(FeaturebenchError, match="manifest.json .*No space left on device"):
        run_extract(crash_driver.options(dataset, tmp_path / "out.h5"))
    assert not partial_dir_for(tmp_path / "out.h5").exists()


@pytest.mark.parametrize("failure", ["free-space", "h5py-runtime-error"])
def test_disk_full_writing_the_final_file_is_clear_and_resumable(failure, dataset, tmp_path, color_stats,
                                                                  monkeypatch):
    """Too little space is found before HDF5 writes (h5py handles a full disk badly: RuntimeError,
    then a crash on close); a RuntimeError from h5py is a clear message too. Nothing is lost."""
    from featurebench.store import writer

    output = tmp_path / "out.h5"
    if failure == "free-space":
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(writer.shutil, "disk_usage", lambda folder: usage._replace(free=1000))
        expected = "Not enough free space"
    else:
        real_file = h5py.File

        class FullDisk(real_file):
            def create_dataset(self, *args, **kwargs):
                raise RuntimeError("Can't write data (file write failed: errno = 28, No space left on device)")

        monkeypatch.setattr(writer.h5py, "File", FullDisk)
        expected = "No space left on device"
    with pytest.raises(FeaturebenchError, match=expected) as info:
        run_extract(crash_driver.options(dataset, output))
    assert str(output) in str(info.value) and "without recomputing" in str(info.value)
    assert not output.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    monkeypatch.undo()
    crash_driver.use_color_stats(monkeypatch.setattr)
    summary = run_extract(crash_driver.options(dataset, output))
    assert summary.resumed_from == summary.n_candidates  # nothing recomputed


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 4 MB tmpfs (needs root and mount rights: skipped otherwise)."""
    yield from mounted_tmpfs(tmp_path / "tiny", "size=4m")


def test_real_disk_full_inside_hdf5_is_a_clear_error_not_a_segfault(tmp_path, tiny_disk):
    """The free-space check switched off and the disk filled just before the final file: HDF5
    fails mid-write (on the code before, the process then segfaulted freeing the file's objects).
    One clear line, exit 2, the journal kept; with space again the same command finishes."""
    disk = tiny_disk
    data = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=100, size=(24, 32))
    code = f"""
import os, sys
from pathlib import Path
import crash_driver
import featurebench.extract as extract
from featurebench.store import writer
disk = Path({str(disk)!r})
crash_driver.use_color_stats()
writer._check_free_space = lambda *args: None
real = extract.assemble_feature_file
def fill_then_assemble(*args, **kwargs):
    if not (disk / "filler").exists() and os.path.ismount(disk):  # only ever fill the small tmpfs
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > 20000:
                os.write(fd, bytes(4096))
        finally:
            os.close(fd)
    return real(*args, **kwargs)
extract.assemble_feature_file = fill_then_assemble
sys.argv = ["featurebench", "extract", {str(data)!r}, "-o", str(disk / "out.h5"), "--model", "color-stats",
            "--precision", "fp32"]  # the exact path: the stand-in has no OpenVINO model to quantise
from featurebench.cli import main
main()
"""
    assert os.path.ismount(disk)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "without recomputing" in errors[0]
    assert partial_dir_for(disk / "out.h5").exists() and not (disk / "out.h5").exists()
    (disk / "filler").unlink()
    (disk / "filler").mkdir()  # the hook must not fill the disk again
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert result.returncode == 0, result.stderr[-2000:]
    with open_feature_file(disk / "out.h5") as features:
        assert features.n_rows == 200


def test_damaged_journal_shard_is_a_clear_error(dataset, tmp_path, color_stats):
    output = tmp_path / "out.h5"

    def stop(done, total):
        if done >= 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extract(crash_driver.options(dataset, output, flush_rows=2, batch_size=2), progress=stop)
    shard = sorted(partial_dir_for(output).glob("rows-*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:50])
    with pytest.raises(FeaturebenchError, match="is damaged") as info:
        run_extract(crash_driver.options(dataset, output, flush_rows=2, batch_size=2))
    assert str(shard) in str(info.value) and "--force" in str(info.value)


def test_damaged_tflite_is_a_clear_error(dataset, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="the LiteRT runtime is not installed: pip install ai-edge-litert")
    from featurebench.extract import ExtractOptions

    model = tmp_path / "broken.tflite"
    model.write_bytes(b"TFL3" + bytes(200))
    with pytest.raises(FeaturebenchError, match="not a usable TFLite model"):
        run_extract(ExtractOptions(str(dataset), str(tmp_path / "out.h5"), str(model)))


def test_csv_paths_outside_the_root_are_skipped_with_their_reason(dataset, tmp_path, color_stats):
    table = dataset / "labels.csv"
    table.write_text("path,label\na/a_000.jpg,a\nb/b_000.jpg,b\n../../etc/passwd.jpg,c\n/etc/hosts.png,d\n")
    summary = run_extract(crash_driver.options(table, tmp_path / "out.h5"))
    assert summary.n_rows == 2 and summary.n_skipped == 2
    assert all("outside the dataset root" in reason for _, reason in summary.skipped)


def test_fit_grid_values_and_out_are_checked_before_the_fit(tmp_path, monkeypatch):
    from featurebench.fit import run as fit_run
    from featurebench.fit.run import run_fit

    features = write_feature_arrays(tmp_path / "f.h5", np.random.default_rng(0).normal(size=(40, 4)),
                                    [i % 2 for i in range(40)], ["a", "b"])
    monkeypatch.setattr(fit_run, "search", lambda *a, **k: pytest.fail("the fit ran before the check"))
    with pytest.raises(FeaturebenchError, match="--grid C='abc' is not valid for --clf logreg"):
        run_fit(features, "logreg", grid='{"C": "abc"}', out=tmp_path / "r", n_jobs=1)
    with pytest.raises(FeaturebenchError, match="--seed -1"):
        run_fit(features, "logreg", seed=-1, out=tmp_path / "r", n_jobs=1)
    with pytest.raises(FeaturebenchError, match="n_neighbors=-2"):
        run_fit(features, "knn", grid='{"n_neighbors": [3, -2]}', out=tmp_path / "r", n_jobs=1)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FeaturebenchError, match="is a file, not a folder"):
        run_fit(features, "logreg", out=tmp_path / "a-file", n_jobs=1)


def test_knn_on_tiny_folds_fits_its_grid_to_the_fold_size(tmp_path, recwarn):
    from featurebench.fit.run import run_fit

    features = write_feature_arrays(tmp_path / "tiny.h5", np.random.default_rng(0).normal(size=(8, 4)),
                                    [i % 2 for i in range(8)], ["a", "b"])
    result = run_fit(features, "knn", out=tmp_path / "r", n_jobs=1)
    assert any("n_neighbors [5, 9, 15] left out" in w for w in result.warnings)
    assert result.metrics["best_params"]["n_neighbors"] <= 4
    sklearn_noise = [w for w in recwarn if "fits failed" in str(w.message) or "n_neighbors" in str(w.message)
                     and "left out" not in str(w.message)]
    assert not sklearn_noise, [str(w.message)[:200] for w in sklearn_noise]


def test_report_outputs_checked_first_and_broken_runs_listed(tmp_path):
    from featurebench.fit.run import run_fit
    from featurebench.report import build_report

    features = write_feature_arrays(tmp_path / "f.h5", np.random.default_rng(0).normal(size=(40, 4)),
                                    [i % 2 for i in range(40)], ["a", "b"])
    results = tmp_path / "results"
    good = run_fit(features, "logreg", out=results, n_jobs=1).run_dir
    record = (good / "metrics.json").read_text()
    for name, text in (("deep", record.rstrip()[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
                       ("huge-int", record.replace('"accuracy": ', '"accuracy": 1' + "0" * 400 + ', "was": ', 1))):
        (results / name).mkdir()
        (results / name / "metrics.json").write_text(text)
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(FeaturebenchError, match="is a folder"):
        build_report(results, tmp_path / "a-folder", plots=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "f.h5", "results"]  # no temp file
    summary = build_report(results, tmp_path / "report.html", plots=False)
    assert len(summary.runs) == 1
    reasons = {bad.name: bad.reason for bad in summary.unreadable}
    assert "nested too deeply" in reasons["deep"] and "OverflowError" in reasons["huge-int"]
    assert "deep" in (tmp_path / "report.html").read_text()


# --- feature files: one validation for every reader ---------------------------------------------

def _replace(h5, name, data, **kwargs):
    del h5[name]
    h5.create_dataset(name, data=data, **kwargs)


def _non_utf8_path(h5):
    paths = [bytes(p) for p in h5["paths"][()]]
    paths[0] = b"caf\xe9.png"
    _replace(h5, "paths", np.array(paths, dtype=object), dtype=h5py.string_dtype("ascii"))


def _set_feature(h5, value):
    block = h5["features"][()]
    block[5, 2] = value
    h5["features"][...] = block


FEATURE_FILE_EDITS = {
    "features-1d": (lambda h5: _replace(h5, "features", np.zeros(40, np.float32)), "2-D numeric array"),
    "features-group": (lambda h5: (h5.__delitem__("features"), h5.create_group("features")), "is a group"),
    "label-minus-one": (lambda h5: h5["labels"].__setitem__(3, -1), "label -1 is negative"),
    "nan-feature": (lambda h5: _set_feature(h5, np.nan), "NaN or infinite"),
    "inf-feature": (lambda h5: _set_feature(h5, np.inf), "NaN or infinite"),
    "split-index-float": (lambda h5: h5.attrs.__setitem__("split_index", 12.5), "split_index 12.5"),
    "warnings-not-json": (lambda h5: h5.attrs.__setitem__("warnings", "not json ["), "'warnings' attribute"),
    "path-not-utf8": (_non_utf8_path, "not valid UTF-8"),
    "paths-missing": (lambda h5: h5.__delitem__("paths"), "missing paths"),
}


@pytest.fixture(scope="module")
def good_features(tmp_path_factory) -> Path:
    return write_feature_arrays(tmp_path_factory.mktemp("ff") / "good.h5",
                                np.random.default_rng(0).normal(size=(40, 5)), [i % 2 for i in range(40)], ["a", "b"])


@pytest.mark.parametrize("case", list(FEATURE_FILE_EDITS))
def test_one_feature_file_validation_for_info_and_fit(case, good_features, tmp_path):
    edit, fragment = FEATURE_FILE_EDITS[case]
    path = tmp_path / f"{case}.h5"
    shutil.copy(good_features, path)
    with h5py.File(path, "a") as h5:
        edit(h5)
    with pytest.raises(FeaturebenchError, match=fragment) as info:
        open_feature_file(path)
    assert str(path) in str(info.value)
    from featurebench.fit.run import run_fit

    with pytest.raises(FeaturebenchError, match=fragment):
        run_fit(path, "logreg", out=tmp_path / "results", n_jobs=1)
    try:
        text = describe(path)
    except FeaturebenchError as exc:  # not readable as a feature file at all: the same reason
        assert fragment in str(exc)
    else:
        assert "complete:     NO (unusable: " in text and fragment in text and "complete:     yes" not in text


# --- the last line of defence --------------------------------------------------------------------

def test_unexpected_error_is_one_line_with_a_log_file(tmp_path):
    code = """
import sys
import featurebench.info as info
from featurebench.errors import note_file
def broken(path, **kwargs):
    note_file(path)
    raise RuntimeError("something nobody expected")
info.describe = broken
sys.argv = ["featurebench", "info", "some file.h5"]
from featurebench.cli import main
main()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**_env(), "FEATUREBENCH_LOG_DIR": str(tmp_path / "logs")})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert "featurebench info failed unexpectedly while processing some file.h5" in line
    assert "RuntimeError: something nobody expected" in line
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback" in logs[0].read_text() and "something nobody expected" in logs[0].read_text()


def test_predict_offers_the_flag_its_hint_names():
    from typer.testing import CliRunner

    from featurebench.cli import app

    help_text = CliRunner().invoke(app, ["predict", "--help"], env={"COLUMNS": "200"}).output
    assert "--unsafe-model" in help_text
