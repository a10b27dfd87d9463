"""The Ray actor: loads the model once, then turns blocks of candidates into feature rows.

TensorFlow/OpenVINO are imported in the actor's own process (Ray starts it fresh, never
by forking a process that imported them). A failing image is a skip inside the block, as
locally; a crash of the process is Ray's to handle (restart + retry, see distributor).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from featurebench.data.pipeline import Batch, DecodeOptions
from featurebench.data.sources import Candidate
from featurebench.errors import FeaturebenchError
from featurebench.scale.reader import read_block

#: Thread-count variables set in a worker before its libraries load, from its CPU share
#: (``FEATUREBENCH_THREADS``: OpenVINO's and LiteRT's thread count, featurebench.extractors.cpu).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "FEATUREBENCH_THREADS")


class ExtractWorker:
    """Holds one extractor; :meth:`extract_block` runs decode -> preprocess -> forward on a block.

    ``model_args``: the keyword arguments of :func:`featurebench.extractors.load_extractor`.
    """

    def __init__(self, model_args: dict[str, Any], root: str, cpus: int):
        for name in THREAD_VARIABLES:
            os.environ[name] = str(max(1, cpus))
        from featurebench.extractors import load_extractor

        self.root = root  # a local folder or an object-storage URL (featurebench.data.storage)
        self.threads = max(1, cpus)
        # A model that cannot load is reported by describe() as one clean error (a failing
        # __init__ would have Ray restart the actor again and again).
        self.load_error: FeaturebenchError | None = None
        try:
            self.extractor = load_extractor(**model_args)
        except FeaturebenchError as exc:
            self.load_error = exc

    def describe(self) -> dict[str, Any]:
        """What the driver needs for the manifest and the decode settings (plus this process id)."""
        if self.load_error is not None:
            raise self.load_error
        ex = self.extractor
        return {"provenance": ex.provenance, "input_size": tuple(ex.input_size), "batch_size": ex.batch_size,
                "feature_dim": ex.feature_dim, "notices": tuple(ex.notices), "pid": os.getpid()}

    def extract_block(self, start: int, items: list[tuple[str, str | None]], decode: DecodeOptions,
                      batch_size: int) -> list[tuple[Batch, np.ndarray | None]]:
        """``(batch, features)`` for the candidates ``[start, start + len(items))``; images dropped."""
        candidates = [Candidate(path, None, skip) for path, skip in items]
        out = []
        for batch in read_block(start, candidates, self.root, decode, batch_size, self.threads):
            features = self.extractor.extract(batch.images()) if batch.rows else None
            for row in batch.rows:
                row.image = None
            out.append((batch, features))
        return out
