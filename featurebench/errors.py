"""The one exception type the CLI turns into a clean, actionable message."""


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
