"""The streamed decode -> resize -> batch pipeline.

Decoding runs in a thread pool (Pillow and OpenCV release the GIL) a bounded
distance ahead of the consumer, so inference on one batch overlaps with
decoding of the next and memory stays flat however many images there are.
Order is preserved exactly: batch contents depend only on the candidate order,
never on thread timing, so an interrupted run resumes to identical rows. The
threads are daemons that nobody waits for on the way out: a read blocked on a
slow or hung file system cannot keep Ctrl+C from ending the command.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from featurebench.data.decode import (DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, SkipImage, content_digest, decode_image,
                                      decode_image_bytes)
from featurebench.data.resize import resize_image
from featurebench.data.sources import Candidate, DatasetListing, list_source
from featurebench.data.storage import RemoteAccess, location_of, read_bytes


@dataclass(kw_only=True)
class SourceOptions:
    """How a labelled image source is listed and read: the settings ``extract``,
    ``build-images`` and ``finetune`` share (their option classes extend this one)."""

    #: Regex on file names giving the label (group ``label`` or group 1).
    label_pattern: str | None = None
    #: Root for relative paths in a CSV (default: the CSV's folder).
    root: str | None = None
    allow_outside_root: bool = False
    #: Keep truncated images (decoded partially) instead of skipping them.
    allow_truncated: bool = False
    #: Refuse images with more pixels (decompression bombs).
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: Refuse files with more bytes (and read no more than that from any file), in MiB.
    max_file_mb: int = DEFAULT_MAX_FILE_BYTES >> 20
    #: Follow class folders that are symbolic links (ignored, with a reason, by default).
    follow_class_links: bool = False
    #: Decoding threads.
    workers: int = 2
    #: Object storage: seconds per request at most, and retries of a failed request.
    read_timeout: float = RemoteAccess.timeout
    read_retries: int = RemoteAccess.attempts - 1

    @property
    def remote_access(self) -> RemoteAccess:
        """How object-storage sources are read (timeout, attempts)."""
        return RemoteAccess(float(self.read_timeout), int(self.read_retries) + 1)

    def list_images(self, source: str) -> DatasetListing:
        """List ``source`` (class folders, CSV/TSV, or a folder plus ``label_pattern``; local or a URL)."""
        return list_source(source, self.label_pattern, self.root, self.allow_outside_root, self.follow_class_links,
                           self.remote_access)

    def decode_options(self, size: tuple[int, int], resize: str, fast_decode: bool = False) -> "DecodeOptions":
        """How images of this source are decoded for a ``size`` input (the limits set here)."""
        return DecodeOptions(tuple(size), resize, self.max_pixels, self.allow_truncated, fast_decode,
                             self.max_file_mb << 20, self.remote_access)


@dataclass(frozen=True)
class DecodeOptions:
    """How to turn a file into a model input: target (height, width), resize mode, limits."""

    size: tuple[int, int]
    resize: str = "stretch"
    max_pixels: int = DEFAULT_MAX_PIXELS
    allow_truncated: bool = False
    #: Decode large JPEGs at reduced size (libjpeg DCT scaling) before the resize.
    fast_decode: bool = False
    #: Bytes read per file at most (bigger files are skipped as "too large").
    max_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: How object storage is read (sources given as s3://, gs://, https:// URLs).
    remote: RemoteAccess = RemoteAccess()

    @property
    def draft(self) -> tuple[int, int] | None:
        """The ``draft`` size for :func:`decode_image` (None: always a full decode)."""
        return self.size if self.fast_decode else None


@dataclass
class Decoded:
    """One candidate after decoding: ``image`` on success, ``skip`` (the reason) otherwise.

    ``digest`` is the 16-byte BLAKE2b of the file's bytes (for duplicate detection).
    """

    index: int
    candidate: Candidate
    image: np.ndarray | None = None
    skip: str | None = None
    digest: bytes | None = None


@dataclass
class Batch:
    """Up to ``batch_size`` decoded images plus the skips met on the way.

    ``end`` is the candidate position just after the last one this batch consumed.
    """

    rows: list[Decoded] = field(default_factory=list)
    skipped: list[Decoded] = field(default_factory=list)
    end: int = 0

    def images(self) -> np.ndarray:
        """The batch's images stacked as (B, H, W, 3) uint8."""
        return np.stack([row.image for row in self.rows])


def load_image(path: str | Path, options: DecodeOptions) -> np.ndarray:
    """Decode and resize one file for a model; raises :class:`SkipImage` when unusable."""
    image = decode_image(path, options.max_pixels, options.allow_truncated, options.draft, options.max_bytes)
    return resize_image(image, options.size, options.resize)


def _decode_candidate(index: int, candidate: Candidate, root: Path | str, options: DecodeOptions) -> Decoded:
    if candidate.skip_reason:
        return Decoded(index, candidate, skip=candidate.skip_reason)
    digest = None
    try:
        data = read_bytes(location_of(root, candidate.path), options.max_bytes, options.remote)
        digest = content_digest(data)
        image = decode_image_bytes(data, options.max_pixels, options.allow_truncated, options.draft)
        del data
        return Decoded(index, candidate, image=resize_image(image, options.size, options.resize), digest=digest)
    except SkipImage as exc:
        return Decoded(index, candidate, skip=exc.message, digest=digest)
    except Exception as exc:  # noqa: BLE001 - an unexpected decoder failure must not abort the run
        return Decoded(index, candidate, skip=f"decode error: {type(exc).__name__}: {exc}")


class DaemonPool:
    """Worker threads that never keep the process alive or make it wait on the way out.

    Unlike :class:`concurrent.futures.ThreadPoolExecutor` (whose threads are joined at
    exit), a task stuck in a read that never returns cannot stall Ctrl+C or the exit.
    """

    def __init__(self, workers: int, name: str = "decode"):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` on a worker; the :class:`~concurrent.futures.Future` of its result."""
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Let the workers end after their current task, without waiting for them."""
        for _ in self._threads:
            self._tasks.put(None)


def iter_decoded(candidates: Sequence[Candidate], root: Path | str, options: DecodeOptions,
                 start: int = 0, workers: int = 2, lookahead: int = 64) -> Iterator[Decoded]:
    """Yield ``candidates[start:]`` decoded, in order, with up to ``lookahead`` in flight."""
    pool = DaemonPool(workers)
    pending: deque = deque()
    position = start
    try:
        while position < len(candidates) or pending:
            while position < len(candidates) and len(pending) < lookahead:
                pending.append(pool.submit(_decode_candidate, position, candidates[position], root, options))
                position += 1
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown()


def iter_batches(decoded: Iterator[Decoded], batch_size: int) -> Iterator[Batch]:
    """Group decoded candidates into batches of ``batch_size`` images (the last may be smaller)."""
    batch = Batch()
    for item in decoded:
        (batch.rows if item.image is not None else batch.skipped).append(item)
        batch.end = item.index + 1
        if len(batch.rows) == batch_size:
            yield batch
            batch = Batch()
    if batch.rows or batch.skipped:
        yield batch
