"""Bytes per image that extract holds for its candidate list (listing + seeded order + journal manifest).

    python scripts/bench_listing_memory.py extract /tmp/synth20k   # tracemalloc, no model
    python scripts/bench_listing_memory.py audit 30000 1280        # near-duplicate search peak / array bytes

``extract``: lists the folder, builds the seeded order and the journal manifest and opens the
journal (in a temporary folder), as ``featurebench extract`` does before its first batch, with a
stand-in model provenance; reports tracemalloc's retained and peak bytes per image.
Then it commits one stand-in shard (8-d zero features) per 1,000 candidates and assembles the
feature file: the traced peak per image meanwhile (what was held included) is the end of a run.
It also runs on checkouts from before the packed candidate lists (no ``extract.run_items``: the
list of Candidate objects that ``_extract`` built then is built instead), to compare.
``audit``: near-duplicate search and outliers on synthetic float32 features; tracemalloc peak
over the array's bytes. Prints one JSON line each, with the CPU class and the 1-minute load.
tracemalloc counts Python's and numpy's allocations, not the allocator's slack: a cheap measure
that the load of the machine does not move, not the peak RSS.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Rows per journal shard and a small stand-in feature width (the features are not what grows with N here).
FLUSH_ROWS, FEATURE_DIM = 1000, 8
PROVENANCE = {"model": "stand-in", "weights": "none", "layer": "x", "pool": "avg", "preprocessing": "none",
              "input_size": [224, 224], "feature_dim": FEATURE_DIM}


def _machine() -> dict:
    from featurebench.extractors.cpu import cpu_class

    return {"cpu_class": cpu_class(), "load1": round(os.getloadavg()[0], 1)}


def extract_state(source: str) -> None:
    from featurebench import extract
    from featurebench.store.journal import Journal
    from featurebench.store.writer import assemble_feature_file

    tracemalloc.start()
    started = time.perf_counter()
    opts = extract.ExtractOptions(source, "unused.h5")
    listing = opts.list_images(source)
    manifest = extract._manifest(opts, listing, PROVENANCE)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.open(Path(tmp) / "out.h5", manifest)
        items = extract.run_items(journal.manifest) if hasattr(extract, "run_items") else [
            extract.Candidate(path, None, skip) for path, _, skip in journal.manifest["candidates"]]
        retained, peak = tracemalloc.get_traced_memory()
        n = len(items)
        tracemalloc.reset_peak()
        for start in range(0, n, FLUSH_ROWS):  # one shard per 1,000 candidates, every image a row
            end = min(n, start + FLUSH_ROWS)
            journal.commit(start, end, np.zeros((end - start, FEATURE_DIM), np.float32), list(range(start, end)),
                           [], [i.to_bytes(16, "little") for i in range(start, end)])
        assemble_feature_file(journal, Path(tmp) / "out.h5", {**PROVENANCE, "train_fraction": 0.75, "source": source})
        _, assemble_peak = tracemalloc.get_traced_memory()
        seconds = time.perf_counter() - started
        journal.remove()
    print(json.dumps({"what": "extract state", "images": n, "retained_bytes_per_image": round(retained / n, 1),
                      "peak_bytes_per_image": round(peak / n, 1),
                      "assemble_peak_bytes_per_image": round(assemble_peak / n, 1), "seconds": round(seconds, 2),
                      **_machine()}))


def audit_state(n: int, dim: int) -> None:
    from featurebench.audit.duplicates import near_duplicates
    from featurebench.audit.outliers import outliers

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (n, dim)).astype(np.float32)
    y = rng.integers(0, 100, n)
    split = int(n * 0.75)
    train, test = np.arange(split), np.arange(split, n)
    for name, work in (("near_duplicates", lambda: near_duplicates(X, train, test)), ("outliers", lambda: outliers(X, y))):
        tracemalloc.start()
        started = time.perf_counter()
        work()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(json.dumps({"what": name, "rows": n, "dim": dim, "array_mb": round(X.nbytes / 2**20),
                          "peak_over_array": round(peak / X.nbytes, 2), "seconds": round(time.perf_counter() - started, 1),
                          **_machine()}))


if __name__ == "__main__":
    if sys.argv[1] == "extract":
        extract_state(sys.argv[2])
    else:
        audit_state(int(sys.argv[2]), int(sys.argv[3]))
