"""Compute the next items of a stream in a background thread while the consumer works.

``extract`` uses it to assemble and preprocess batch k+1 (stack, normalise, hand to
the framework) while the network runs on batch k, so the forward pass is not left
waiting on Python between batches (docs/performance.md). Order is kept, at most
``depth`` items are computed ahead, an exception in the producer is raised in the
consumer, and when the consumer stops (end, error, Ctrl+C) the producer stops too
and closes its source, which shuts down the decoding threads. The consumer waits
for that at most :data:`STOP_WAIT_SECONDS`: a producer stuck in a read that never
returns (a hung network share) is a daemon thread left behind, so Ctrl+C stays prompt.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()
#: How long a stopping consumer waits for the producer to wind down.
STOP_WAIT_SECONDS = 2.0


def prefetch(source: Iterable[T], transform: Callable[[T], R], depth: int = 1) -> Iterator[R]:
    """Yield ``transform(item)`` for every item of ``source``, computed up to ``depth`` ahead."""
    items: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if stop.is_set() or not put((True, transform(item))):
                    break
            else:
                put((True, _END))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((False, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = items.get()
            if not ok:
                raise value
            if value is _END:
                return
            yield value
    finally:
        stop.set()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while thread.is_alive() and time.monotonic() < deadline:
            try:  # make room so a producer blocked on a full queue sees the stop
                items.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
