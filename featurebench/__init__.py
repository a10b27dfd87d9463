"""featurebench: pretrained CNN features -> HDF5 -> classical classifiers -> reports.

The top-level package stays light: importing it never imports TensorFlow. It imports only
:mod:`featurebench.errors`; the rooms and which way they import: docs/architecture.md.
"""

__version__ = "0.1.0"

from featurebench.errors import FeaturebenchError

__all__ = ["FeaturebenchError", "__version__"]
