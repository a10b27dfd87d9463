"""The HDF5 feature file: format constants, the resumable journal, the writer and the reader.
A bottom room: imports only :mod:`featurebench.errors`."""

from featurebench.store.reader import FeatureFile, open_feature_file

__all__ = ["FeatureFile", "open_feature_file"]
