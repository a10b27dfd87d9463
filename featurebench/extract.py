"""``featurebench extract``: a labelled image source -> a resumable, self-describing HDF5 feature file.

The steps: list the source, shuffle the candidates once with the seed, build the
extractor, then stream decode -> batch -> forward pass into the journal, and
assemble the final file. Re-running the same command after an interruption
resumes from the journal and produces the same rows in the same order.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from featurebench import __version__
from featurebench.data.decode import DEFAULT_MAX_PIXELS
from featurebench.data.pipeline import DecodeOptions, iter_batches, iter_decoded
from featurebench.data.resize import RESIZE_MODES
from featurebench.data.sources import Candidate, DatasetListing, list_source
from featurebench.errors import FeaturebenchError
from featurebench.store.journal import Journal
from featurebench.store.writer import assemble_feature_file

#: Rows per journal shard (the classic scripts' buffer size).
DEFAULT_FLUSH_ROWS = 1000


@dataclass
class ExtractOptions:
    """Everything ``extract`` needs; the CLI flags map one to one."""

    source: str
    output: str
    model: str = "efficientnet_lite0"
    weights: str = "imagenet"
    layer: str | None = None
    pool: str | None = None
    batch_size: int | None = None
    seed: int = 42
    train_fraction: float = 0.75
    dtype: str = "float32"
    force: bool = False
    label_pattern: str | None = None
    root: str | None = None
    allow_outside_root: bool = False
    resize: str = "stretch"
    allow_truncated: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    preprocess: str | None = None
    unsafe_model: bool = False
    workers: int = 2
    flush_rows: int = DEFAULT_FLUSH_ROWS
    compression: str | None = None
    dataset_name: str | None = None
    command: str = field(default_factory=lambda: " ".join(sys.argv))


@dataclass
class ExtractSummary:
    """What an extraction did."""

    output: Path
    n_candidates: int
    n_rows: int
    n_skipped: int
    n_ignored: int
    resumed_from: int
    seconds: float
    images_per_second: float
    file_bytes: int
    skipped_reasons: dict[str, int]
    warnings: list[str]


def shuffled(listing: DatasetListing, seed: int) -> list[list[Any]]:
    """Candidates as ``[path, label_index, skip_reason]`` in the seeded shuffled order."""
    order = np.random.default_rng(seed).permutation(len(listing.candidates))
    return [[listing.candidates[i].path, listing.label_index(listing.candidates[i].label),
             listing.candidates[i].skip_reason] for i in order]


def _check_options(opts: ExtractOptions, output: Path) -> None:
    if opts.dtype not in ("float32", "float16"):
        raise FeaturebenchError(f"--dtype {opts.dtype!r}: choose float32 or float16")
    if not 0.0 < opts.train_fraction < 1.0:
        raise FeaturebenchError(f"--train-fraction {opts.train_fraction} must be between 0 and 1")
    if opts.resize not in RESIZE_MODES:
        raise FeaturebenchError(f"--resize {opts.resize!r}: choose one of {', '.join(RESIZE_MODES)}")
    if not output.parent.exists():
        raise FeaturebenchError(f"Output folder {output.parent} does not exist; create it first.")
    if output.exists() and not opts.force:
        raise FeaturebenchError(f"{output} already exists; pass --force to overwrite it (or choose another -o).")


def _manifest(opts: ExtractOptions, listing: DatasetListing, provenance: dict[str, Any]) -> dict[str, Any]:
    candidates = shuffled(listing, opts.seed)
    # Settings that determine the rows' contents; speed knobs (batch size, workers) are left out.
    settings = {
        "source": str(listing.root), "model": provenance["model"], "weights": provenance["weights"],
        "weights_sha256": provenance.get("weights_sha256", ""), "layer": provenance["layer"],
        "pool": provenance["pool"], "preprocessing": provenance["preprocessing"],
        "input_size": provenance["input_size"], "feature_dim": provenance["feature_dim"],
        "resize": opts.resize, "seed": opts.seed, "allow_truncated": opts.allow_truncated,
        "max_pixels": opts.max_pixels,
    }
    digest = hashlib.sha256(json.dumps([settings, candidates, listing.label_names]).encode()).hexdigest()
    return {"fingerprint": digest, "settings": settings, "candidates": candidates,
            "label_names": listing.label_names, "ignored": [list(item) for item in listing.ignored],
            "warnings": listing.warnings}


def _file_attrs(opts: ExtractOptions, listing: DatasetListing, provenance: dict[str, Any],
                seconds: float, rate: float) -> dict[str, Any]:
    return {
        **provenance,
        "featurebench_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(listing.root), "source_kind": listing.kind,
        "dataset": opts.dataset_name or listing.root.name,
        "resize": opts.resize, "seed": opts.seed, "shuffle": f"numpy default_rng({opts.seed}).permutation",
        "train_fraction": opts.train_fraction, "label_pattern": opts.label_pattern or "",
        "allow_truncated": opts.allow_truncated, "max_pixels": opts.max_pixels,
        "extract_seconds": round(seconds, 3), "images_per_second": round(rate, 3),
        "warnings": listing.warnings, "command": opts.command,
    }


def run_extract(opts: ExtractOptions, progress: Callable[[int, int], None] | None = None,
                on_start: Callable[[int, int], None] | None = None) -> ExtractSummary:
    """Run an extraction (resuming a matching partial one). ``progress(done, total)`` is
    called after every batch; ``on_start(done, total)`` once before the first."""
    output = Path(opts.output).expanduser().resolve()
    _check_options(opts, output)
    listing = list_source(opts.source, opts.label_pattern, opts.root, opts.allow_outside_root)

    from featurebench.extractors import load_extractor

    extractor = load_extractor(opts.model, opts.weights, opts.layer, opts.pool, opts.seed,
                               opts.preprocess, opts.batch_size, opts.unsafe_model)
    manifest = _manifest(opts, listing, extractor.provenance)
    decode = DecodeOptions(extractor.input_size, opts.resize, opts.max_pixels, opts.allow_truncated)
    batch_size = opts.batch_size or extractor.batch_size
    started = time.perf_counter()
    with Journal.open(output, manifest, force=opts.force) as journal:
        candidates = journal.manifest["candidates"]
        items = [Candidate(path, None, skip) for path, _, skip in candidates]
        resumed_from = done = journal.next_index()
        if on_start:
            on_start(done, len(items))
        buffer: list[np.ndarray] = []
        rows: list[int] = []
        skipped: list[tuple[int, str]] = []
        shard_start = done
        processed = 0
        try:
            for batch in iter_batches(iter_decoded(items, listing.root, decode, done, opts.workers), batch_size):
                if batch.rows:
                    buffer.append(extractor.extract(batch.images()))
                    rows.extend(row.index for row in batch.rows)
                    processed += len(batch.rows)
                skipped.extend((item.index, item.skip) for item in batch.skipped)
                done = batch.end
                if len(rows) >= opts.flush_rows:
                    _flush(journal, shard_start, done, buffer, rows, skipped, extractor.feature_dim)
                    shard_start, buffer, rows, skipped = done, [], [], []
                if progress:
                    progress(done, len(items))
        finally:
            # Keep every whole batch already computed, also on Ctrl+C or an error.
            if done > shard_start:
                _flush(journal, shard_start, done, buffer, rows, skipped, extractor.feature_dim)
        seconds = time.perf_counter() - started
        rate = processed / seconds if seconds > 0 else 0.0
        counts = assemble_feature_file(journal, output, _file_attrs(opts, listing, extractor.provenance, seconds, rate),
                                       dtype=opts.dtype, compression=opts.compression)
        journal.remove()
    return ExtractSummary(output, counts["n_candidates"], counts["n_rows"], counts["n_skipped"], counts["n_ignored"],
                          resumed_from, seconds, rate, output.stat().st_size, counts["skipped_reasons"],
                          listing.warnings)


def _flush(journal: Journal, start: int, end: int, buffer: list[np.ndarray], rows: list[int],
           skipped: list[tuple[int, str]], feature_dim: int) -> None:
    features = np.concatenate(buffer) if buffer else np.zeros((0, feature_dim), np.float32)
    journal.commit(start, end, features, rows, skipped)


__all__ = ["ExtractOptions", "ExtractSummary", "run_extract"]
