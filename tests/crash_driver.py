"""Run ``extract`` with a NumPy-only extractor and SIGKILL it at a chosen point.

    python tests/crash_driver.py SOURCE OUTPUT KILL_POINT

Used by ``test_reliability_crash.py``. The extractor needs no TensorFlow, so a
process starts in well under a second and several kill points stay cheap to
test; the journal, pipeline and writer are the real ones. The kill is a real
``SIGKILL`` sent by the process to itself at an exact point (no ``finally``
blocks, no flushes, no cleanup run), which is what makes each point reliable
to hit:

``before-first-flush``     the manifest is written, no shard yet
``between-shards``         two shards are committed, the third is about to be written
``mid-shard-write``        half of the second shard's temporary file is on disk
``before-rename``          the final HDF5 is complete under its temporary name, not renamed yet
``before-journal-removal`` the final file is in place, the journal folder still exists
``none``                   no kill (an uninterrupted run)
"""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from featurebench.extractors.base import Extractor

KILL_POINTS = ("before-first-flush", "between-shards", "mid-shard-write", "before-rename", "before-journal-removal")
FLUSH_ROWS = 16
BATCH_SIZE = 8


class ColorStats(Extractor):
    """Per-channel mean, std, min, max and a 2x2 grid of means of a 16x16 image: 24 features."""

    input_size = (16, 16)
    feature_dim = 24
    preprocessing = "none"
    batch_size = BATCH_SIZE
    preprocess_fn = staticmethod(lambda images: images.astype(np.float32) / 255.0)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        stats = [batch.mean((1, 2)), batch.std((1, 2)), batch.min((1, 2)), batch.max((1, 2))]
        grid = [batch[:, i:i + 8, j:j + 8].mean((1, 2)) for i in (0, 8) for j in (0, 8)]
        return np.concatenate(stats + grid, axis=1)

    @property
    def provenance(self) -> dict[str, Any]:
        return {"model": "color-stats", "layer": "stats", "pool": "none", "preprocessing": "none",
                "input_size": list(self.input_size), "feature_dim": self.feature_dim, "weights": "none",
                "weights_sha256": ""}


def use_color_stats(setattr_=setattr) -> None:
    """Make ``run_extract`` build :class:`ColorStats` (pass ``monkeypatch.setattr`` in tests)."""
    import featurebench.extractors as extractors

    setattr_(extractors, "load_extractor", lambda *args, **kwargs: ColorStats())


def options(source: Path, output: Path, **kwargs):
    from featurebench.extract import ExtractOptions

    # fp32, the exact path: a stand-in extractor has no OpenVINO model that the default auto could quantise.
    settings = {"model": "color-stats", "batch_size": BATCH_SIZE, "flush_rows": FLUSH_ROWS, "workers": 2,
                "precision": "fp32", "command": "crash_driver", **kwargs}
    return ExtractOptions(str(source), str(output), **settings)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(point: str, output: Path) -> None:
    """Patch the store so that this process SIGKILLs itself at ``point``."""
    from featurebench.store import journal, writer

    commits = {"n": 0}
    commit = journal.Journal.commit

    def counting_commit(self, *args, **kwargs):
        commits["n"] += 1
        if point == "before-first-flush" and commits["n"] == 1:
            _die()
        if point == "between-shards" and commits["n"] == 3:
            _die()
        return commit(self, *args, **kwargs)

    journal.Journal.commit = counting_commit

    if point == "mid-shard-write":
        atomic_write = journal._atomic_write

        def half_written(path: Path, write) -> None:
            if not path.name.startswith("rows-") or commits["n"] < 2:
                return atomic_write(path, write)
            buffer = io.BytesIO()
            write(buffer)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            with open(tmp, "wb") as handle:
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            _die()

        journal._atomic_write = half_written

    if point == "before-rename":
        def kill_before(move):
            def kill_before_rename(src, dst, *args, **kwargs):
                if Path(dst) == output:
                    _die()
                return move(src, dst, *args, **kwargs)
            return kill_before_rename

        # The file is moved into place by os.link (no --force) or os.replace (--force).
        # writer.os is the os module: this process only.
        writer.os.replace, writer.os.link = kill_before(os.replace), kill_before(os.link)

    if point == "before-journal-removal":
        journal.Journal.remove = lambda self: _die()


def main(argv: list[str]) -> None:
    source, output, point = Path(argv[0]), Path(argv[1]).resolve(), argv[2]
    from featurebench.extract import run_extract

    use_color_stats()
    if point != "none":
        install_kill(point, output)
    summary = run_extract(options(source, output))
    print(f"done {summary.n_rows} rows, resumed from {summary.resumed_from}")


if __name__ == "__main__":
    main(sys.argv[1:])
