"""Keep the frameworks' own log lines (TensorFlow, absl, oneDNN, TFLite) off the user's terminal.

TensorFlow 2.21 logs through absl from C++ before Python runs any of its code: the
``WARNING: All log messages before absl::InitializeLog() is called ...`` line and the oneDNN
``port.cc`` notice come out twice on every import, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and
LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate`` on every interpreter. No
environment variable reaches them, so :func:`filter_framework_lines` filters at the file
descriptor: fd 2 becomes a pipe read by a thread that drops those lines and passes every other
byte through to the real stderr, while Python's ``sys.stderr`` (featurebench's own messages,
progress bars) keeps writing to the terminal directly, so nothing of ours is delayed or
reordered. ``FEATUREBENCH_FRAMEWORK_LOGS=1`` turns the filter off (to see everything).
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

#: Environment variable that shows the framework lines again.
SHOW_ENV = "FEATUREBENCH_FRAMEWORK_LOGS"

#: Lines the frameworks print on their own: absl/glog-formatted info and warnings (``I0000
#: 00:00:... 123 port.cc:153] ...``), absl's pre-initialisation banner, TFLite's info lines, and
#: TensorFlow's old ``2025-01-01 00:00:00.0: I tensorflow/...`` format. Errors (``E``/``F``)
#: pass, except for registrations CUDA builds report on every start.
FRAMEWORK_LINE = re.compile(
    rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\]"
    rb"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] Unable to register cu(?:DNN|FFT|BLAS) factory"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] (?:tensorflow|external|xla)/"
    rb"|INFO: (?:Created TensorFlow Lite|Initialized TensorFlow Lite)"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    rb")"
)


def is_framework_line(line: bytes) -> bool:
    """Whether ``line`` (bytes, without or with its newline) is one of the frameworks' own log lines."""
    return FRAMEWORK_LINE.match(line.lstrip(b"\r")) is not None


class _Filter:
    """The installed filter: the pipe on fd 2, the thread draining it, the real stderr's fd."""

    def __init__(self) -> None:
        self.terminal = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.read = read
        self.thread = threading.Thread(target=self._pump, name="featurebench-stderr-filter", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_framework_line(line))
            if kept:
                self._write(kept)
        if pending and not is_framework_line(pending):
            self._write(pending)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.terminal, data)
        except OSError:
            pass

    def close(self) -> None:
        """Put the real stderr back on fd 2 and forward what the pipe still holds."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.terminal, 2)  # closes this process's write end of the pipe
        self.thread.join(timeout=0.5)  # children still holding the pipe keep it open: do not wait for them


_installed: _Filter | None = None


def filter_framework_lines() -> None:
    """Drop the frameworks' log lines from fd 2 for the rest of this process (idempotent).

    Call it once, before TensorFlow or LiteRT is imported, from the command-line entry point
    (the library never changes a caller's file descriptors). ``sys.stderr`` is reopened on the
    real stderr, so Python's own output bypasses the filter; a native crash report
    (``faulthandler``) is pointed there too.
    """
    global _installed
    if _installed is not None or os.environ.get(SHOW_ENV, "") not in ("", "0"):
        return
    try:
        sys.stderr.flush()
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return  # no real stderr (an embedding host, a test runner's capture): nothing to filter
    if stderr_fd != 2:
        return
    _installed = _Filter()
    sys.stderr = open(_installed.terminal, "w", buffering=1, encoding=sys.stderr.encoding,
                      errors=sys.stderr.errors, closefd=False)
    import faulthandler

    if faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr)
    atexit.register(_installed.close)


def restore_stderr() -> None:
    """Forward what the filter still holds (for exits that skip ``atexit``, e.g. ``os._exit``)."""
    if _installed is not None:
        _installed.close()


__all__ = ["SHOW_ENV", "filter_framework_lines", "is_framework_line", "restore_stderr"]
