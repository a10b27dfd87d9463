"""featurebench: pretrained CNN features -> HDF5 -> classical classifiers -> reports.

The top-level package stays light: importing it imports nothing (``FeaturebenchError`` is re-exported
lazily, so :mod:`featurebench.errors` can read ``__version__`` here); the rooms and which way they
import: docs/architecture.md.
"""

__version__ = "0.1.0"

__all__ = ["FeaturebenchError", "__version__"]


def __getattr__(name: str):
    if name == "FeaturebenchError":
        from featurebench.errors import FeaturebenchError

        return FeaturebenchError
    raise AttributeError(f"module 'featurebench' has no attribute {name!r}")
