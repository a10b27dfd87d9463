"""featurebench: pretrained CNN features -> HDF5 -> classical classifiers -> reports.

The top-level package stays light: importing it never imports TensorFlow.
"""

__version__ = "0.1.0"

from featurebench.errors import FeaturebenchError

__all__ = ["FeaturebenchError", "__version__"]
