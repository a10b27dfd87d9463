"""The one exception type the CLI turns into a clean, actionable message."""


class FeaturebenchError(Exception):
    """A user-facing error: the message names the file or option at fault and the fix."""


class WeightsUnavailableError(FeaturebenchError):
    """Pretrained weights could not be obtained (offline with no cache, package missing)."""
