"""Sources in object storage (featurebench.data.storage), against real HTTP servers started here:
moto's threaded S3 server (the way s3fs tests itself) reached through ``AWS_ENDPOINT_URL``, and a
plain HTTP file server for CSVs of URLs. No client is mocked: s3fs / fsspec talk HTTP to them.

The S3 server serves three kinds of bad object besides missing ones: keys containing ``slow``
answer after :data:`SLOW_SECONDS`, ``broken`` always answer 500, ``flaky`` answer 500 to the
first GET only."""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
import urllib.request

import h5py
import numpy as np
import pytest

from conftest import assert_extracted_like_the_disk, assert_listed_like_the_disk, fill_bucket
from featurebench.data.pipeline import DecodeOptions, iter_decoded
from featurebench.data.sources import list_source
from featurebench.data.storage import RemoteAccess, filesystem
from featurebench.errors import FeaturebenchError

pytest.importorskip("s3fs", reason="the [s3] extra is not installed: pip install 'featurebench[s3]'")
moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server",
                                  reason="moto's server is not installed: pip install 'featurebench[test]'")

BUCKET = "featurebench-test"
SLOW_SECONDS = 20
FAST = RemoteAccess(timeout=0.5, attempts=2, backoff=0.05)


def _faulty(app):
    """WSGI middleware: slow, broken and flaky objects (see the module docstring)."""
    failed_once: set[str] = set()

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] == "GET":
            if "slow" in path:
                time.sleep(SLOW_SECONDS)
            if "broken" in path or ("flaky" in path and path not in failed_once):
                failed_once.add(path)
                start_response("500 Internal Server Error", [("Content-Type", "application/xml")])
                return [b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"]
        return app(environ, start_response)

    return wrapped


class FaultyMotoServer(moto_server.ThreadedMotoServer):
    """moto's ThreadedMotoServer with the fault middleware around its application."""

    def _server_entry(self) -> None:
        from werkzeug.serving import make_server

        app = _faulty(moto_server.DomainDispatcherApplication(moto_server.create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True,
                                   request_handler=moto_server.MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(disk folder, bucket URL of the same files); the endpoint and test credentials in the
    environment for the module (what a user sets for MinIO/Ceph)."""
    server = FaultyMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        filesystem.cache_clear()
        fs = filesystem("s3", 30.0)
        disk = tmp_path_factory.mktemp("disk") / "pets"
        fill_bucket(fs, BUCKET, disk)
        for rel in ("ok.jpg", "slow.jpg", "broken.jpg", "flaky.jpg"):
            fs.pipe(f"{BUCKET}/faults/{rel}", (disk / "cat" / "cat_000.jpg").read_bytes())
        fs.pipe(f"{BUCKET}/faults/list.csv", b"path,label\nok.jpg,a\nslow.jpg,a\nbroken.jpg,b\nflaky.jpg,b\n"
                                             b"gone.jpg,b\n")
        yield disk, f"s3://{BUCKET}/pets/", f"http://{host}:{port}"
        filesystem.cache_clear()
    server.stop()


def _decoded(listing, access: RemoteAccess = RemoteAccess()) -> list[tuple]:
    options = DecodeOptions((16, 16), remote=access)
    return [(d.candidate.path, d.skip, d.digest, None if d.image is None else d.image.tobytes())
            for d in iter_decoded(listing.candidates, listing.root, options, workers=2)]


def test_bucket_lists_and_decodes_like_the_same_folder_on_disk(s3):
    disk, url, _ = s3
    local, remote = list_source(disk), list_source(url)
    assert_listed_like_the_disk(remote, local, url)
    got, want = _decoded(remote), _decoded(local)
    assert got == want
    skips = {path: skip for path, skip, _, _ in got if skip}
    assert skips == {"cat/garbage.jpg": skips["cat/garbage.jpg"], "cat/empty.jpg": "empty file: 0 bytes"}
    assert skips["cat/garbage.jpg"].startswith("not an image")


def test_label_pattern_on_a_bucket_matches_the_folder(s3):
    disk, url, _ = s3
    pattern = r"^(cat|dog|owl)_"
    local, remote = list_source(disk, label_pattern=pattern), list_source(url, label_pattern=pattern)
    assert [(c.path, c.label, c.skip_reason) for c in remote.candidates] == \
        [(c.path, c.label, c.skip_reason) for c in local.candidates]


def test_failing_objects_are_skips_with_reasons_and_the_time_is_bounded(s3):
    listing = list_source(f"s3://{BUCKET}/faults/list.csv")
    assert listing.root == f"s3://{BUCKET}/faults"
    started = time.monotonic()
    got = {path: skip for path, skip, _, _ in _decoded(listing, FAST)}
    elapsed = time.monotonic() - started
    assert got["ok.jpg"] is None and got["flaky.jpg"] is None  # the retry read it
    assert got["gone.jpg"] == "missing: file not found"
    assert got["broken.jpg"].startswith("network error") and "2 attempt(s)" in got["broken.jpg"]
    assert got["slow.jpg"].startswith("network error") and "0.5 s timeout" in got["slow.jpg"]
    assert elapsed < SLOW_SECONDS * 0.75, "the read timeout did not bound the slow object"


def test_missing_bucket_and_refused_credentials_are_one_line_errors(s3):
    _, url, endpoint = s3
    with pytest.raises(FeaturebenchError, match="does not exist"):
        list_source("s3://no-such-bucket-here/pets/")
    listing = list_source(url)

    def set_auth(count: bytes) -> None:  # moto's switch: check every request's credentials from now on
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=count,
                                                      method="POST", headers={"Content-Type": "text/plain"}))

    set_auth(b"0")
    try:
        with pytest.raises(FeaturebenchError, match="access denied.*AWS_ACCESS_KEY_ID") as caught:
            list_source(url)
        assert "\n" not in str(caught.value)
        skips = {skip for _, skip, _, _ in _decoded(listing)[:3]}
    finally:
        set_auth(b"inf")
    assert skips == {"unreadable: access denied (check the credentials)"}


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def http_csv(s3, tmp_path_factory):
    """A CSV of http:// URLs of the disk images (plus one that does not exist), served by a plain
    threaded HTTP file server, and a CSV of the same images as local paths."""
    disk, _, _ = s3
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(disk)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = [(p.relative_to(disk).as_posix(), p.parent.name) for p in sorted(disk.glob("*/*.jpg"))]
    folder = tmp_path_factory.mktemp("csv")
    (folder / "urls.csv").write_text("url,label\n" + "".join(f"{base}/{p},{lab}\n" for p, lab in rows)
                                     + f"{base}/cat/gone.jpg,cat\n")
    (folder / "paths.csv").write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in rows)
                                      + "cat/gone.jpg,cat\n")
    yield folder / "urls.csv", folder / "paths.csv", disk
    server.shutdown()


def test_csv_of_https_urls_reads_the_same_images_as_local_paths(http_csv):
    urls, paths, disk = http_csv
    remote, local = list_source(urls), list_source(paths, root=disk)
    assert all(c.path.startswith("http://") for c in remote.candidates)
    assert [c.label for c in remote.candidates] == [c.label for c in local.candidates]
    got, want = _decoded(remote), _decoded(local)
    assert [g[1:] for g in got] == [w[1:] for w in want]
    assert got[[g[0] for g in got].index(next(c.path for c in remote.candidates if "gone" in c.path))][1] \
        == "missing: file not found"


def test_https_listing_without_a_csv_is_refused(http_csv):
    with pytest.raises(FeaturebenchError, match="cannot be listed; give a CSV"):
        list_source("https://127.0.0.1:1/images/")


def _run_cli(args: list[str]):
    from typer.testing import CliRunner

    from featurebench.cli import app

    return CliRunner().invoke(app, args, prog_name="featurebench")


def test_extract_from_a_bucket_writes_the_rows_of_the_disk_folder_and_resumes(s3, tiny_tflite_file, tmp_path):
    """`featurebench extract s3://...` (CLI): the file equals the one extracted from disk, also after
    an interrupted run is resumed from its journal."""
    from featurebench.extract import ExtractOptions, run_extract

    disk, url, _ = s3
    common = ["--model", str(tiny_tflite_file), "--batch-size", "4", "--flush-rows", "4"]
    assert _run_cli(["extract", str(disk), "-o", str(tmp_path / "disk.h5"), *common]).exit_code == 0

    def stop_after_first_flush(done: int, total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extract(ExtractOptions(url, str(tmp_path / "bucket.h5"), str(tiny_tflite_file), batch_size=4,
                                   flush_rows=4), progress=stop_after_first_flush)
    assert (tmp_path / "bucket.h5.partial").exists()
    result = _run_cli(["extract", url, "-o", str(tmp_path / "bucket.h5"), *common])
    assert result.exit_code == 0, result.output
    assert_extracted_like_the_disk(tmp_path / "bucket.h5", tmp_path / "disk.h5", url)


def test_bad_read_settings_are_refused(s3, tiny_tflite_file, tmp_path):
    _, url, _ = s3
    for flag, value in (("--read-timeout", "0"), ("--read-timeout", "nan"), ("--read-retries", "-1")):
        result = _run_cli(["extract", url, "-o", str(tmp_path / "x.h5"), "--model", str(tiny_tflite_file),
                           flag, value])
        assert isinstance(result.exception, FeaturebenchError) and flag in str(result.exception), result.output
    assert not os.listdir(tmp_path)


def test_ray_workers_read_the_bucket_themselves(s3, tiny_tflite_file, ray_cluster, tmp_path):
    """`extract s3://... --ray`: each worker (on its own simulated node, with that node's own
    credentials) reads its images from the bucket; the driver passes only where the server is
    (AWS_ENDPOINT_URL). The rows are those of the disk folder."""
    from featurebench.extract import ExtractOptions, run_extract

    disk, url, _ = s3
    local = run_extract(ExtractOptions(str(disk), str(tmp_path / "disk.h5"), str(tiny_tflite_file), batch_size=4))
    remote = run_extract(ExtractOptions(url, str(tmp_path / "ray.h5"), str(tiny_tflite_file), batch_size=4,
                                        flush_rows=8, ray=True, workers=2))
    assert remote.skipped == local.skipped and remote.n_rows == local.n_rows
    with h5py.File(tmp_path / "ray.h5", "r") as got, h5py.File(tmp_path / "disk.h5", "r") as want:
        assert list(got["paths"][()]) == list(want["paths"][()])
        assert list(got["labels"][()]) == list(want["labels"][()])
        np.testing.assert_allclose(got["features"][()], want["features"][()], rtol=1e-5, atol=1e-6)


def test_local_csv_of_keys_with_a_bucket_root(s3, tmp_path):
    """A local CSV of keys + --root s3://BUCKET/PREFIX: the same candidates as the CSV on disk;
    a key leaving the root is a skip (a URL row is the way to list an object elsewhere)."""
    disk, url, _ = s3
    rows = "path,label\ncat/cat_000.jpg,cat\ndog/sub/dog_nested.jpg,dog\n../escape.jpg,dog\n"
    (tmp_path / "keys.csv").write_text(rows)
    remote = list_source(tmp_path / "keys.csv", root=url)
    local = list_source(tmp_path / "keys.csv", root=disk)
    assert remote.root == url.rstrip("/")
    assert [(c.path, c.label) for c in remote.candidates] == [(c.path, c.label) for c in local.candidates]
    assert "outside the dataset root" in next(c.skip_reason for c in remote.candidates if "escape" in c.path)
    assert [d[1:] for d in _decoded(remote)][1:] == [d[1:] for d in _decoded(local)][1:]
