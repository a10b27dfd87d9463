"""``extract --shards N --shard-index I`` + ``featurebench merge`` (copy and ``--virtual``) give the
one-machine file (featurebench.scale.shards, featurebench.scale.merge)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from conftest import make_class_folders
from featurebench.errors import FeaturebenchError
from featurebench.extract import ExtractOptions, run_extract
from featurebench.scale.merge import merge_shards
from featurebench.scale.shards import shard_bounds
from test_scale_extract import assert_same_file

SHARDS = 3


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Three classes, an unreadable file and duplicates (likely in other shards than their originals)."""
    root = make_class_folders(tmp_path_factory.mktemp("merge") / "data", classes=("a", "b", "c"), per_class=10)
    (root / "b" / "broken.jpg").write_bytes(b"truncated nonsense")
    for i in range(3):
        (root / "c" / f"dup_{i}.jpg").write_bytes((root / "a" / f"a_{i:03d}.jpg").read_bytes())
    return root


def _extract(source: Path, output: Path, model: Path, **kwargs):
    return run_extract(ExtractOptions(str(source), str(output), str(model), batch_size=4, flush_rows=8, **kwargs))


@pytest.fixture(scope="module")
def whole_and_shards(source, tiny_tflite_file, tmp_path_factory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("shards")
    _extract(source, folder / "whole.h5", tiny_tflite_file)
    shards = [folder / f"shard-{i}.h5" for i in range(SHARDS)]
    for i in reversed(range(SHARDS)):  # any order: the merge sorts by shard index
        _extract(source, shards[i], tiny_tflite_file, shards=SHARDS, shard_index=i)
    return folder / "whole.h5", shards


def test_shard_bounds_partition_the_order():
    bounds = [shard_bounds(10, 3, i) for i in range(3)]
    assert bounds == [(0, 3), (3, 6), (6, 10)]


def test_shard_files_hold_their_slice_and_digests(whole_and_shards):
    whole, shards = whole_and_shards
    with h5py.File(whole, "r") as ref:
        total = ref.attrs["n_candidates"]
    for i, path in enumerate(shards):
        with h5py.File(path, "r") as h5:
            start, end = shard_bounds(total, SHARDS, i)
            assert (h5.attrs["shard_index"], h5.attrs["shard_count"], h5.attrs["shard_start"]) == (i, SHARDS, start)
            assert h5.attrs["n_candidates"] == end - start
            assert h5["row_digest"].shape == (h5.attrs["n_rows"], 16)


def test_merge_copy_equals_one_machine_run(whole_and_shards, tmp_path):
    whole, shards = whole_and_shards
    counts = merge_shards(shards, tmp_path / "merged.h5")
    assert counts["n_duplicates"] == 3 and counts["n_skipped"] == 1
    assert_same_file(tmp_path / "merged.h5", whole)
    with h5py.File(tmp_path / "merged.h5", "r") as h5:
        assert "row_digest" not in h5 and "shard_index" not in h5.attrs
        assert not h5["features"].is_virtual


def test_merge_virtual_equals_one_machine_run_and_reads_from_anywhere(whole_and_shards, tmp_path):
    whole, shards = whole_and_shards
    merged = whole.parent / "virtual.h5"
    result = subprocess.run([sys.executable, "-m", "featurebench", "merge", *map(str, shards), "-o", str(merged),
                             "--virtual", "--force"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "3 duplicates" in result.stdout
    with h5py.File(merged, "r") as h5:
        assert h5["features"].is_virtual
    cwd = os.getcwd()
    try:  # the shard files are found relative to the merged file, not the working folder
        os.chdir(tmp_path)
        assert_same_file(merged, whole)
    finally:
        os.chdir(cwd)


def test_merge_refuses_an_incomplete_set(whole_and_shards, tmp_path):
    _, shards = whole_and_shards
    with pytest.raises(FeaturebenchError, match="missing shard index 1"):
        merge_shards([shards[0], shards[2]], tmp_path / "m.h5")
    with pytest.raises(FeaturebenchError, match="given twice"):
        merge_shards([shards[0], shards[0], shards[1], shards[2]], tmp_path / "m.h5")


def test_merge_refuses_a_whole_run_file(whole_and_shards, tmp_path):
    whole, _ = whole_and_shards
    with pytest.raises(FeaturebenchError, match="not a shard file"):
        merge_shards([whole], tmp_path / "m.h5")


def test_bad_shard_index_is_refused(source, tiny_tflite_file, tmp_path):
    with pytest.raises(FeaturebenchError, match="--shard-index 3 must be between 0 and 2"):
        _extract(source, tmp_path / "x.h5", tiny_tflite_file, shards=3, shard_index=3)
