"""``gs://`` sources (featurebench.data.storage) against a real GCS-compatible HTTP server started
here: gcp-storage-emulator (pure Python, in-process, in memory), reached the standard way, through
``STORAGE_EMULATOR_HOST`` and an anonymous token (fsspec's ``gcs`` config, what
``FSSPEC_GCS_TOKEN=anon`` sets). No client is mocked: gcsfs talks HTTP to it. The bucket holds the
same tree as the S3 tests' bucket (:func:`conftest.fill_bucket`)."""

from __future__ import annotations

import socket
import time

import h5py
import pytest

from conftest import assert_extracted_like_the_disk, assert_listed_like_the_disk, fill_bucket
from featurebench.data.pipeline import DecodeOptions, iter_decoded
from featurebench.data.sources import list_source
from featurebench.data.storage import filesystem
from featurebench.errors import FeaturebenchError

pytest.importorskip("gcsfs", reason="the [gcs] extra is not installed: pip install 'featurebench[gcs]'")
emulator = pytest.importorskip("gcp_storage_emulator.server",
                               reason="the GCS emulator is not installed: pip install 'featurebench[test]'")

BUCKET = "featurebench-test"
#: Seconds a listing plus every read of the bucket may take (each is milliseconds here; a client
#: that waits on an API the emulator does not serve takes a request timeout per object).
BOUND_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """(disk folder, bucket URL of the same files); the emulator's address and an anonymous
    token set for the module (what a user sets for a GCS emulator)."""
    import fsspec.config

    port = _free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        env.setitem(fsspec.config.conf, "gcs", {"token": "anon"})
        env.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        filesystem.cache_clear()
        fs = filesystem("gcs", 30.0)
        disk = tmp_path_factory.mktemp("disk") / "pets"
        fill_bucket(fs, BUCKET, disk)
        fs.pipe(f"{BUCKET}/faults/ok.jpg", (disk / "cat" / "cat_000.jpg").read_bytes())
        fs.pipe(f"{BUCKET}/faults/list.csv", b"path,label\nok.jpg,a\ngone.jpg,b\n")
        yield disk, f"gs://{BUCKET}/pets/"
        filesystem.cache_clear()
    server.stop()


def _decoded(listing) -> list[tuple]:
    return [(d.candidate.path, d.skip, d.digest, None if d.image is None else d.image.tobytes())
            for d in iter_decoded(listing.candidates, listing.root, DecodeOptions((16, 16)), workers=2)]


def test_bucket_lists_and_decodes_like_the_same_folder_on_disk(gcs):
    disk, url = gcs
    started = time.monotonic()
    local, remote = list_source(disk), list_source(url)
    assert_listed_like_the_disk(remote, local, url)
    got, want = _decoded(remote), _decoded(local)
    assert time.monotonic() - started < BOUND_SECONDS
    assert got == want
    skips = {path: skip for path, skip, _, _ in got if skip}
    assert skips == {"cat/garbage.jpg": skips["cat/garbage.jpg"], "cat/empty.jpg": "empty file: 0 bytes"}
    assert skips["cat/garbage.jpg"].startswith("not an image")


def test_missing_object_is_a_skip_with_its_reason(gcs):
    listing = list_source(f"gs://{BUCKET}/faults/list.csv")
    assert listing.root == f"gs://{BUCKET}/faults"
    got = {path: skip for path, skip, _, _ in _decoded(listing)}
    assert got == {"ok.jpg": None, "gone.jpg": "missing: file not found"}


def test_missing_bucket_is_a_one_line_error(gcs):
    with pytest.raises(FeaturebenchError, match="does not exist") as caught:
        list_source("gs://no-such-bucket-here/pets/")
    assert str(caught.value).startswith("gs://no-such-bucket-here/pets does not exist")
    assert "\n" not in str(caught.value)


def test_extract_from_a_gcs_bucket_writes_the_rows_of_the_disk_folder(gcs, tiny_tflite_file, tmp_path):
    """`featurebench extract gs://...` (CLI): the file equals the one extracted from disk, skips
    and their reasons included; a missing bucket is a one-line error and writes nothing."""
    from typer.testing import CliRunner

    from featurebench.cli import app

    disk, url = gcs
    common = ["--model", str(tiny_tflite_file), "--batch-size", "4"]
    for source, name in ((disk, "disk.h5"), (url, "bucket.h5")):
        result = CliRunner().invoke(app, ["extract", str(source), "-o", str(tmp_path / name), *common])
        assert result.exit_code == 0, result.output
    assert_extracted_like_the_disk(tmp_path / "bucket.h5", tmp_path / "disk.h5", url)
    with h5py.File(tmp_path / "bucket.h5", "r") as got:
        skipped = dict(zip(got["skipped/path"].asstr()[()], got["skipped/reason"].asstr()[()]))
    assert skipped["cat/empty.jpg"] == "empty file: 0 bytes" and skipped["cat/garbage.jpg"].startswith("not an image")
    result = CliRunner().invoke(app, ["extract", "gs://no-such-bucket-here/pets/", "-o", str(tmp_path / "x.h5"),
                                      *common])
    assert isinstance(result.exception, FeaturebenchError) and "does not exist" in str(result.exception)
    assert not (tmp_path / "x.h5").exists()
