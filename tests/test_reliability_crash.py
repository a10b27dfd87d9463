"""Crash and resume torture: SIGKILL at exact points, write errors, disk full, readers during a write.

Each interrupted extraction is re-run with the same command and must give the
uninterrupted run's file: same rows in the same order, same features, same
skipped/duplicate tables, no leftovers. A partial file is never taken for a
complete one. The extractor is NumPy-only (tests/crash_driver.py) so each killed
process starts fast; tests/test_extract_resume.py does SIGKILL/SIGINT with a
real Keras model.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import crash_driver
from conftest import make_class_folders, mounted_tmpfs
from featurebench.errors import FeaturebenchError
from featurebench.extract import run_extract
from featurebench.info import describe
from featurebench.store.journal import partial_dir_for, shard_ranges
from featurebench.store.reader import open_feature_file

DRIVER = Path(crash_driver.__file__)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """150 images in 3 classes, plus files that are skipped and a duplicate: ~10 shards."""
    root = make_class_folders(tmp_path_factory.mktemp("crash") / "data", classes=("a", "b", "c"), per_class=50,
                              size=(40, 56))
    (root / "a" / "notes.jpg").write_text("not an image")
    (root / "b" / "empty.png").write_bytes(b"")
    shutil.copy(root / "c" / "c_000.jpg", root / "a" / "copy.jpg")
    return root


RUN_SECONDS: list[float] = []


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    """The uninterrupted run (its duration sets the random kill times)."""
    output = tmp_path_factory.mktemp("reference") / "out.h5"
    with pytest.MonkeyPatch.context() as patch:
        crash_driver.use_color_stats(patch.setattr)
        RUN_SECONDS.append(run_extract(crash_driver.options(dataset, output)).seconds)
    return output


@pytest.fixture()
def color_stats(monkeypatch):
    crash_driver.use_color_stats(monkeypatch.setattr)


def _content(path: Path) -> dict:
    with h5py.File(path, "r") as h5:
        return {key: h5[key][()] for key in ("paths", "labels", "features", "skipped/path", "skipped/reason",
                                             "duplicates/path", "duplicates/first_path")} | {
            "n_rows": h5.attrs["n_rows"], "complete": h5.attrs["complete"]}


def assert_same_file(output: Path, reference: Path) -> None:
    got, want = _content(output), _content(reference)
    assert got["complete"] and got["n_rows"] == want["n_rows"] == len(got["paths"])
    assert list(got["paths"]) == list(want["paths"]), "rows differ or are in another order"
    assert len(set(got["paths"])) == len(got["paths"]), "a row appears twice"
    np.testing.assert_array_equal(got["labels"], want["labels"])
    np.testing.assert_allclose(got["features"], want["features"], rtol=1e-6, atol=1e-6)
    for key in ("skipped/path", "skipped/reason", "duplicates/path", "duplicates/first_path"):
        assert list(got[key]) == list(want[key]), key
    assert not partial_dir_for(output).exists(), "the journal folder was left behind"
    assert not list(output.parent.glob(f".{output.name}.tmp-*")), "a temporary file was left behind"
    open_feature_file(output).close()


def _kill_at(point: str, source: Path, output: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(DRIVER), str(source), str(output), point], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, f"not killed at {point}: rc={result.returncode}\n{result.stderr}"
    return result


@pytest.mark.parametrize("point", crash_driver.KILL_POINTS)
def test_sigkill_then_same_command_gives_the_uninterrupted_file(point, dataset, reference, tmp_path, color_stats):
    output = tmp_path / "out.h5"
    _kill_at(point, dataset, output)
    partial = partial_dir_for(output)
    shards = shard_ranges(partial) if partial.exists() else []
    n_candidates = _content(reference)["n_rows"] + len(_content(reference)["skipped/path"])

    if point == "before-journal-removal":
        # The final file was renamed into place: it is complete; only the journal is left over.
        assert output.exists() and partial.exists()
        assert_same_file_but_leftover_journal(output, reference)
        with pytest.raises(FeaturebenchError, match="already exists; pass --force"):
            run_extract(crash_driver.options(dataset, output))
        return

    # Killed before the rename: there is no file under the real name, only the journal.
    assert not output.exists() and (partial / "manifest.json").exists()
    expected_shards = {"before-first-flush": 0, "between-shards": 2, "mid-shard-write": 1}
    if point in expected_shards:
        assert len(shards) == expected_shards[point]
    if point == "mid-shard-write":
        assert list(partial.glob(".rows-*.tmp-*")), "the half-written shard should be on disk"
    if point == "before-rename":
        assert shards[-1][1] == n_candidates
        leftovers = list(tmp_path.glob(".out.h5.tmp-*"))
        assert leftovers and h5py.File(leftovers[0], "r").attrs["complete"]  # complete, but not under the name
    with pytest.raises(FeaturebenchError, match="in progress or was interrupted"):
        open_feature_file(output)
    assert "extraction not finished" in describe(output)

    summary = run_extract(crash_driver.options(dataset, output))
    assert summary.resumed_from == (shards[-1][1] if shards else 0)
    assert_same_file(output, reference)


def assert_same_file_but_leftover_journal(output: Path, reference: Path) -> None:
    with open_feature_file(output) as features:
        assert features.attrs["complete"]
    got, want = _content(output), _content(reference)
    assert list(got["paths"]) == list(want["paths"])
    np.testing.assert_allclose(got["features"], want["features"], rtol=1e-6, atol=1e-6)
    assert describe(output).splitlines()[1].strip() == "complete:     yes"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_a_random_moment(seed, dataset, reference, tmp_path, color_stats):
    """Once the journal exists, wait a seeded random fraction of a run's duration, then SIGKILL."""
    output = tmp_path / "out.h5"
    manifest = partial_dir_for(output) / "manifest.json"
    process = subprocess.Popen([sys.executable, str(DRIVER), str(dataset), str(output), "none"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not manifest.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(random.Random(seed).uniform(0.1, 0.9) * RUN_SECONDS[0])
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    if not output.exists():
        with pytest.raises(FeaturebenchError):
            open_feature_file(output)
        run_extract(crash_driver.options(dataset, output))
    assert_same_file(output, reference)


# --- write errors ----------------------------------------------------------------------------------

def test_write_error_in_a_shard_is_clear_keeps_earlier_shards_and_resumes(dataset, reference, tmp_path,
                                                                          color_stats, monkeypatch):
    from featurebench.store import journal

    output = tmp_path / "out.h5"
    savez = np.savez
    calls = {"n": 0}

    def disk_full_on_third_shard(file, **arrays):
        calls["n"] += 1
        if calls["n"] == 3:
            file.write(b"partial bytes")
            raise OSError(errno.ENOSPC, "No space left on device")
        return savez(file, **arrays)

    monkeypatch.setattr(journal.np, "savez", disk_full_on_third_shard)
    with pytest.raises(FeaturebenchError) as info:
        run_extract(crash_driver.options(dataset, output))
    message = str(info.value)
    assert "No space left on device" in message and "re-run the same command" in message
    assert str(partial_dir_for(output)) in message and "rows-" in message  # names the file it could not write
    partial = partial_dir_for(output)
    shards = shard_ranges(partial)
    assert len(shards) == 2 and not list(partial.glob(".*.tmp-*"))
    assert not output.exists()

    monkeypatch.setattr(journal.np, "savez", savez)
    summary = run_extract(crash_driver.options(dataset, output))
    assert summary.resumed_from == shards[-1][1] > 0
    assert_same_file(output, reference)


def test_write_error_in_the_final_file_keeps_every_shard_and_resumes(dataset, reference, tmp_path,
                                                                     color_stats, monkeypatch):
    from featurebench.store import writer

    output = tmp_path / "out.h5"
    real_file = h5py.File

    def failing_file(name, mode="r", *args, **kwargs):
        if mode == "w":
            raise OSError(errno.EIO, "Input/output error")
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(writer.h5py, "File", failing_file)
    with pytest.raises(FeaturebenchError) as info:
        run_extract(crash_driver.options(dataset, output))
    message = str(info.value)
    assert str(output) in message and "Input/output error" in message and "without recomputing" in message
    monkeypatch.setattr(writer.h5py, "File", real_file)
    progress = describe(output)
    assert "extraction not finished" in progress
    summary = run_extract(crash_driver.options(dataset, output))
    assert summary.resumed_from == summary.n_candidates  # nothing recomputed
    assert_same_file(output, reference)


@pytest.fixture()
def tiny_filesystem(tmp_path):
    """A small (8 MB) tmpfs (needs root and mount rights: skipped otherwise)."""
    yield from mounted_tmpfs(tmp_path / "tiny", "size=8m")


def test_real_disk_full_mid_run_then_resume(dataset, reference, tiny_filesystem, color_stats):
    """Fill the filesystem for real after two shards: ENOSPC, clear error, then free space and resume."""
    output = tiny_filesystem / "out.h5"
    filler = tiny_filesystem / "filler"

    def fill_after_two_shards(done: int, total: int) -> None:
        partial = partial_dir_for(output)
        if not filler.exists() and len(shard_ranges(partial)) >= 2:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)

    with pytest.raises(FeaturebenchError, match="No space left on device"):
        run_extract(crash_driver.options(dataset, output), progress=fill_after_two_shards)
    done_before = len(shard_ranges(partial_dir_for(output)))
    assert done_before >= 2 and not output.exists()
    filler.unlink()
    summary = run_extract(crash_driver.options(dataset, output))
    assert summary.resumed_from > 0
    assert_same_file(output, reference)


# --- readers while a write is in progress ----------------------------------------------------------

def test_info_and_fit_during_an_extraction(dataset, reference, tmp_path, color_stats):
    """`featurebench info` (another process) reports progress; open/fit refuse clearly; nothing is disturbed."""
    output = tmp_path / "out.h5"
    seen: dict[str, object] = {}

    def look(done: int, total: int) -> None:
        if "cli" in seen or len(shard_ranges(partial_dir_for(output))) < 2:
            return
        seen["describe"] = describe(output)
        seen["cli"] = subprocess.run([sys.executable, "-m", "featurebench", "info", str(output)],
                                     capture_output=True, text=True, timeout=60)
        try:
            open_feature_file(output)
        except FeaturebenchError as exc:
            seen["open"] = str(exc)
        try:
            from featurebench.fit.run import run_fit
        except ImportError:
            return
        try:
            run_fit(output, "logreg", out=tmp_path / "results", n_jobs=1)
        except FeaturebenchError as exc:
            seen["fit"] = str(exc)

    run_extract(crash_driver.options(dataset, output), progress=look)
    assert "extraction not finished" in seen["describe"] and "images done" in seen["describe"]
    cli = seen["cli"]
    assert cli.returncode == 0, cli.stderr
    assert "extraction not finished" in cli.stdout
    assert "in progress or was interrupted" in seen["open"]
    if "fit" in seen:
        assert "in progress or was interrupted" in seen["fit"]
    assert_same_file(output, reference)


def test_journal_progress_survives_the_journal_vanishing(tmp_path):
    from featurebench.store.journal import journal_progress

    output = tmp_path / "out.h5"
    partial = partial_dir_for(output)
    partial.mkdir()
    (partial / "manifest.json").write_text('{"candidates": [')  # as if caught mid-way by a reader
    assert journal_progress(output) is None
    shutil.rmtree(partial)
    assert journal_progress(output) is None


# --- partial or inconsistent files are never taken for complete ones -------------------------------

def _copy_and_edit(reference: Path, tmp_path: Path, edit) -> Path:
    path = tmp_path / "edited.h5"
    shutil.copy(reference, path)
    with h5py.File(path, "r+") as h5:
        edit(h5)
    return path


def _drop_last_label(h5):
    labels = h5["labels"][()]
    del h5["labels"]
    h5["labels"] = labels[:-1]


def _drop_last_path(h5):
    paths = h5["paths"][()]
    del h5["paths"]
    h5.create_dataset("paths", data=paths[:-1], dtype=h5py.string_dtype("utf-8"))


@pytest.mark.parametrize("edit,fragment", [
    (lambda h5: h5.attrs.__setitem__("complete", False), "marked incomplete"),
    (lambda h5: h5.attrs.__delitem__("complete"), "marked incomplete"),
    (_drop_last_label, "labels"),
    (_drop_last_path, "paths"),
    (lambda h5: h5.attrs.__setitem__("n_rows", int(h5.attrs["n_rows"]) + 5), "n_rows attribute"),
], ids=["complete-false", "no-complete-flag", "labels-short", "paths-short", "n_rows-attr"])
def test_partial_or_inconsistent_file_is_refused(edit, fragment, reference, tmp_path):
    path = _copy_and_edit(reference, tmp_path, edit)
    with pytest.raises(FeaturebenchError, match=fragment) as info:
        open_feature_file(path)
    assert str(path) in str(info.value)
    try:
        from featurebench.fit.run import run_fit
    except ImportError:
        return
    with pytest.raises(FeaturebenchError, match=fragment):
        run_fit(path, "logreg", out=tmp_path / "results", n_jobs=1)


@pytest.mark.parametrize("cut", [0, 100, 0.5], ids=["empty", "header-cut", "half"])
def test_truncated_hdf5_is_a_clear_error(cut, reference, tmp_path):
    data = reference.read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    with pytest.raises(FeaturebenchError, match=r"cut\.h5"):
        open_feature_file(path)
    with pytest.raises(FeaturebenchError):
        describe(path)


# --- Ctrl+C at every statement ---------------------------------------------------------------------

def _traced_functions():
    from featurebench import extract
    from featurebench.store import journal, writer

    return [extract.run_extract, extract._flush, journal.Journal.commit, journal._atomic_write,
            writer.assemble_feature_file, journal.Journal.remove]


def _run_with_tracer(opts, on_line) -> None:
    codes = {f.__code__ for f in _traced_functions()}

    def local(frame, event, arg):
        if event == "line":
            on_line(frame.f_code, frame.f_lineno)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code in codes else None

    sys.settrace(tracer)
    try:
        run_extract(opts)
    finally:
        sys.settrace(None)


def test_ctrl_c_at_every_statement_of_the_write_path_resumes_exactly(tmp_path, color_stats, monkeypatch):
    """KeyboardInterrupt raised at each executed line of run_extract, _flush, Journal.commit,
    _atomic_write, assemble_feature_file and Journal.remove (at its 2nd and 3rd execution), then the
    same command again: always the uninterrupted file, never a duplicate row or a gap."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability on power loss is not under test; speed is
    source = make_class_folders(tmp_path / "data", classes=("a", "b"), per_class=5, size=(24, 24))
    (source / "a" / "bad.jpg").write_bytes(b"nope")
    shutil.copy(source / "a" / "a_000.jpg", source / "b" / "copy.jpg")
    options = {"flush_rows": 4, "batch_size": 2}
    reference = tmp_path / "reference.h5"
    counts: dict[tuple, int] = {}
    _run_with_tracer(crash_driver.options(source, reference, **options),
                     lambda code, line: counts.__setitem__((code, line), counts.get((code, line), 0) + 1))
    assert len(counts) > 40
    failures = []
    # Each line at its 2nd and 3rd execution: with two batches per shard, that is both phases of the
    # flush cycle (the batch that triggers a flush and the one after it).
    plan = [(code, line, hits, target) for (code, line), hits in sorted(counts.items(), key=lambda kv: (
        kv[0][0].co_name, kv[0][1])) for target in sorted({min(2, hits), min(3, hits)})]
    for number, (code, line, hits, target) in enumerate(plan):
        output = tmp_path / f"out-{number}.h5"
        seen = {"n": 0}

        def interrupt(c, l, key=(code, line), target=target, seen=seen):
            if (c, l) == key:
                seen["n"] += 1
                if seen["n"] == target:
                    raise KeyboardInterrupt

        where = f"{code.co_name} line {line} (hit {target} of {hits})"
        try:
            _run_with_tracer(crash_driver.options(source, output, **options), interrupt)
            failures.append(f"{where}: not interrupted")
            continue
        except KeyboardInterrupt:
            pass
        try:
            if output.exists():  # interrupted after the rename: the file is already whole
                assert_same_file_but_leftover_journal(output, reference)
                shutil.rmtree(partial_dir_for(output), ignore_errors=True)
            else:
                run_extract(crash_driver.options(source, output, **options))
            assert_same_file(output, reference)
        except Exception as exc:  # noqa: BLE001 - collect every failing line
            failures.append(f"{where}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
