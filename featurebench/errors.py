"""The one exception type the CLI turns into a clean, actionable message, and the log of an
unexpected one (its full traceback, in a file the one-line message names)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


class FeaturebenchError(Exception):
    """A user-facing error: the message names the file or option at fault and the fix."""


class WeightsUnavailableError(FeaturebenchError):
    """Pretrained weights could not be obtained (offline with no cache, package missing)."""


class RunExistsError(FeaturebenchError):
    """A run folder is already there; ``run_dir`` says which (commands word the way out their own way)."""

    def __init__(self, run_dir: object, ways_out: str):
        self.run_dir = run_dir
        super().__init__(f"Run folder {run_dir} already exists; {ways_out}")


_processing: list[str] = []


def note_file(path: object) -> None:
    """Record the file a command is working on, for the message of an unexpected error.

    Cheap (one assignment); the CLI's last line of defence names the latest one.
    """
    _processing[:] = [str(path)]


def noted_file() -> str | None:
    """The file last passed to :func:`note_file` in this process, or None."""
    return _processing[0] if _processing else None


def write_crash_log(exc: BaseException, command: str) -> Path | None:
    """Write ``command`` and the full traceback of an unexpected error to a log file
    (``$FEATUREBENCH_LOG_DIR``, default ``$TMPDIR/featurebench-logs/``); its path, None if unwritable."""
    from featurebench import __version__

    folder = Path(os.environ.get("FEATUREBENCH_LOG_DIR") or Path(tempfile.gettempdir()) / "featurebench-logs")
    handle = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-",
                                        suffix=".log", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as log:
            handle = None
            log.write(f"{command}\nfeaturebench {__version__}, Python {sys.version.split()[0]}\n\n"
                      + "".join(traceback.format_exception(exc)))
    except OSError:
        if handle is not None:
            os.close(handle)
        return None
    return Path(name)


def unexpected_error_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` of an unexpected exception, for a one-line report."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}{': ' + detail if detail else ''}"
