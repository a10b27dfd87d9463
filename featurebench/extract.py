"""``featurebench extract``: a labelled image source -> a resumable, self-describing HDF5 feature file.

The steps: list the source, shuffle the candidates once with the seed, build the
extractor, then stream decode -> batch -> forward pass into the journal, and
assemble the final file. Re-running the same command after an interruption
resumes from the journal and produces the same rows in the same order.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from featurebench import __version__
from featurebench.data.pipeline import Batch, SourceOptions, iter_batches, iter_decoded
from featurebench.data.prefetch import prefetch
from featurebench.data.resize import RESIZE_MODES
from featurebench.data.sources import CandidateTable, DatasetListing, default_dataset_name
from featurebench.data.storage import location_of
from featurebench.errors import FeaturebenchError, note_file
from featurebench.extractors.preprocessing import get_preprocessor
from featurebench.outputs import check_output_file
from featurebench.scale.shards import check_shard, shard_attrs, shard_manifest
from featurebench.store.format import PARTIAL_SUFFIX
from featurebench.store.journal import Journal
from featurebench.store.packed import RowTable, json_pieces
from featurebench.store.writer import assemble_feature_file

#: Rows per journal shard (the classic scripts' buffer size).
DEFAULT_FLUSH_ROWS = 1000
#: Inference precisions (``--precision``); int8 and auto: featurebench/extractors/int8.py.
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "auto")
#: Batches prepared (stacked, preprocessed) ahead in a background thread while the network
#: runs; 0 prepares each batch inline. See docs/performance.md for what it gains.
PREFETCH_BATCHES = 1


@dataclass
class ExtractOptions(SourceOptions):
    """Everything ``extract`` needs; the CLI flags map one to one (source flags: SourceOptions)."""

    source: str
    output: str
    model: str = "efficientnet_lite0"
    weights: str = "imagenet"
    layer: str | None = None
    pool: str | None = None
    batch_size: int | None = None
    seed: int = 42
    train_fraction: float = 0.75
    #: How the stored split is made (:data:`SPLITS`); recorded as the file's ``split`` attribute.
    split: str = "index"
    dtype: str = "float32"
    force: bool = False
    resize: str = "stretch"
    preprocess: str | None = None
    unsafe_model: bool = False
    #: Decode large JPEGs at 1/2-1/8 scale before resizing: less decode CPU, but features move
    #: (mean cosine ~0.993 to a full decode on Flowers-17), so opt-in. docs/performance.md.
    fast_decode: bool = False
    #: "auto" (the default): per CPU class, the fastest precision (and decode) measured within
    #: the accuracy gate, else fp32 with a full decode (featurebench/extractors/auto.py,
    #: docs/performance.md); "fp32": the exact path; "bf16" (registry models) or "int8" (Keras
    #: models on OpenVINO, calibrated on the source's train images); "fp16" (GPUs).
    precision: str = "auto"
    #: ``precision`` was asked for (``--precision``). False: an ``auto`` precision is the default,
    #: which says only with ``-v`` why it runs fp32 (a class not measured, a source too small
    #: to calibrate on), and runs fp32 with a full decode under ``ray`` and ``shards``.
    precision_given: bool = False
    #: What runs a Keras model: "auto", "openvino" or "tensorflow"; None = the default (auto:
    #: TensorFlow on a visible GPU, OpenVINO on the CPU; extractors/devices.py).
    engine: str | None = None
    flush_rows: int = DEFAULT_FLUSH_ROWS
    #: Run the model in Ray workers (``--workers`` of them) instead of this process; docs/scale.md.
    ray: bool = False
    #: The Ray cluster to join (``auto``, ``ray://HOST:PORT``); None starts a local one.
    address: str | None = None
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0.0
    #: Memory each Ray worker asks for, in MB; None: derived from the model (scale/resources.py).
    memory_per_worker_mb: int | None = None
    #: Where a Ray cluster started here spills its object store (None: Ray's default).
    spill_dir: str | None = None
    #: The cluster autoscales: request the workers' resources instead of refusing a cluster too small now.
    autoscale: bool = False
    #: Write only shard ``shard_index`` of ``shards`` of the global order (``featurebench merge`` joins them).
    shards: int = 1
    shard_index: int = 0
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
    #: Rows whose file has the same bytes as an earlier row (kept; listed in the file's ``duplicates``).
    n_duplicates: int = 0
    #: (path, reason) of every skipped image, in row order.
    skipped: list[tuple[str, str]] = field(default_factory=list)


#: ``extract --split``: ``index`` (the classic protocol: rows in the seeded shuffled order, the first
#: ``int(N * train_fraction)`` train) or ``stratified`` (the same shuffle, then interleaved by class so
#: that every prefix, hence the stored train slice, holds each class in proportion).
SPLITS = ("index", "stratified")


def shuffled(listing: DatasetListing, seed: int, split: str = "index") -> RowTable:
    """Candidates as ``[path, label_index, skip_reason]`` rows in the seeded shuffled order; with
    ``split="stratified"`` reordered so that each class is spread evenly over the rows. Held
    compactly (:class:`~featurebench.store.packed.RowTable`: ~the paths' bytes + 16 per image)."""
    order = np.random.default_rng(seed).permutation(len(listing.candidates))
    labels = listing.label_indices()[order]
    if split == "stratified":
        regrouped = stratified_order(labels)
        order, labels = order[regrouped], labels[regrouped]
    return RowTable(listing.candidates.paths.take(order), labels, listing.candidates.skips.take(order))


def run_items(manifest: dict[str, Any]) -> CandidateTable:
    """What the decoder reads: the manifest's candidates without labels (sharing its columns)."""
    rows = manifest["candidates"]
    return CandidateTable.unlabelled(rows.paths, rows.skips)


def stratified_order(labels: Sequence[int]) -> np.ndarray:
    """Positions that interleave ``labels`` by class: the j-th of a class's n rows (in the given order)
    goes to relative position (j + 0.5) / n, ties keep the given order. Any prefix of m rows then holds
    about m * n_c / N rows of class c (within one row), so the stored split point makes a stratified
    split for every train fraction. Candidates skipped while listing (label -1, e.g. a CSV row without
    a label) are spread the same way, as a group of their own."""
    labels = np.asarray(labels, dtype=np.int64) + 1  # -1 (no label) -> group 0
    if not len(labels):
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(labels)
    seen = np.zeros_like(counts)
    rank = np.empty(len(labels), dtype=np.float64)
    for i, label in enumerate(labels):
        rank[i] = (seen[label] + 0.5) / counts[label]
        seen[label] += 1
    return np.argsort(rank, kind="stable")


#: ``--compression`` values (h5py's built-in filters); "none" or None: uncompressed.
COMPRESSIONS = ("gzip", "lzf", "none")
#: Longest suffix added to the output's name for its temporary files (``.NAME.tmp-PID``).
_TEMP_NAME_EXTRA = len(".") + len(".tmp-") + 7


def _check_options(opts: ExtractOptions, output: Path) -> None:
    """Refuse bad options and unusable outputs before anything is computed."""
    if opts.dtype not in ("float32", "float16"):
        raise FeaturebenchError(f"--dtype {opts.dtype!r}: choose float32 or float16")
    if opts.precision not in PRECISIONS:
        raise FeaturebenchError(f"--precision {opts.precision!r}: choose one of {', '.join(PRECISIONS)}")
    if opts.split not in SPLITS:
        raise FeaturebenchError(f"--split {opts.split!r}: choose one of {', '.join(SPLITS)}")
    if not 0.0 < opts.train_fraction < 1.0:
        raise FeaturebenchError(f"--train-fraction {opts.train_fraction} must be between 0 and 1")
    if opts.resize not in RESIZE_MODES:
        raise FeaturebenchError(f"--resize {opts.resize!r}: choose one of {', '.join(RESIZE_MODES)}")
    if opts.compression is not None and opts.compression not in COMPRESSIONS:
        raise FeaturebenchError(f"--compression {opts.compression!r}: choose one of {', '.join(COMPRESSIONS)}")
    if not 0 <= opts.seed < 2**63:
        raise FeaturebenchError(f"--seed {opts.seed}: use a whole number from 0 to 2**63-1")
    for flag, value in (("--batch-size", opts.batch_size), ("--workers", opts.workers),
                        ("--flush-rows", opts.flush_rows), ("--max-pixels", opts.max_pixels),
                        ("--max-file-mb", opts.max_file_mb)):
        if value is not None and value < 1:
            raise FeaturebenchError(f"{flag} {value}: must be at least 1")
    if not (math.isfinite(opts.read_timeout) and opts.read_timeout > 0):
        raise FeaturebenchError(f"--read-timeout {opts.read_timeout}: give a positive number of seconds")
    if opts.read_retries < 0:
        raise FeaturebenchError(f"--read-retries {opts.read_retries}: must be 0 or more")
    if opts.preprocess is not None:
        get_preprocessor(opts.preprocess)  # a bad --preprocess before the model is built
    check_shard(opts.shards, opts.shard_index)
    if opts.ray:
        from featurebench.scale.resources import check_cluster_options, check_worker_request

        check_cluster_options(opts.address, opts.spill_dir)
        check_worker_request(opts.workers, opts.cpus_per_worker, opts.gpus_per_worker, opts.memory_per_worker_mb)
    check_output_file(output, "-o", opts.force, max(_TEMP_NAME_EXTRA, len(PARTIAL_SUFFIX)), example="features.h5")


def _manifest(opts: ExtractOptions, listing: DatasetListing, provenance: dict[str, Any]) -> dict[str, Any]:
    candidates = shuffled(listing, opts.seed, opts.split)
    if opts.shards > 1:
        return shard_manifest(_manifest_of(opts, listing, provenance, candidates), opts.shards, opts.shard_index)
    return _manifest_of(opts, listing, provenance, candidates)


def _manifest_of(opts: ExtractOptions, listing: DatasetListing, provenance: dict[str, Any],
                 candidates: RowTable) -> dict[str, Any]:
    # Settings that determine the rows' contents; speed knobs (batch size, workers) are left out.
    settings = {
        "source": str(listing.root), "model": provenance["model"], "weights": provenance["weights"],
        "weights_sha256": provenance.get("weights_sha256", ""), "layer": provenance["layer"],
        "pool": provenance["pool"], "preprocessing": provenance["preprocessing"],
        "input_size": provenance["input_size"], "feature_dim": provenance["feature_dim"],
        "resize": opts.resize, "seed": opts.seed, "allow_truncated": opts.allow_truncated,
        "max_pixels": opts.max_pixels,
    }
    if opts.split != "index":  # only when not the default, so fingerprints of default runs stay as they were
        settings["split"] = opts.split
    if opts.max_file_mb != SourceOptions.max_file_mb:
        settings["max_file_mb"] = opts.max_file_mb
    # Only when not the default, so fingerprints of default runs stay as they were.
    if opts.fast_decode:
        settings["fast_decode"] = True
    ran = provenance.get("precision", opts.precision)
    if opts.precision == "auto":  # a choice, not a setting: what it chose (fp32: as a --precision fp32 run)
        if ran != "fp32":
            settings["precision"] = ran
    else:
        if opts.precision != "fp32":
            settings["precision"] = opts.precision
        if ran != opts.precision:  # the CPU changed what runs
            settings["inference_precision"] = ran
    if provenance.get("int8_calibration_digest"):  # the calibration images decide the int8 model
        settings["int8_calibration"] = provenance["int8_calibration_digest"]
    if "engine" in provenance:  # the engines agree to float32 rounding, not bit for bit
        settings["engine"] = provenance["engine"]
    digest = hashlib.sha256()
    for piece in json_pieces([settings, candidates, listing.label_names]):  # = json.dumps of plain lists
        digest.update(piece.encode())
    return {"fingerprint": digest.hexdigest(), "settings": settings, "candidates": candidates,
            "label_names": listing.label_names, "ignored": [list(item) for item in listing.ignored],
            "warnings": listing.warnings}


def _file_attrs(opts: ExtractOptions, listing: DatasetListing, provenance: dict[str, Any],
                seconds: float, rate: float) -> dict[str, Any]:
    return {
        **provenance,
        "featurebench_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(listing.root), "source_kind": listing.kind,
        "dataset": opts.dataset_name or default_dataset_name(listing.root),
        "resize": opts.resize, "seed": opts.seed, "shuffle": f"numpy default_rng({opts.seed}).permutation"
        + (", then interleaved by class (extract --split stratified)" if opts.split == "stratified" else ""),
        "train_fraction": opts.train_fraction, "label_pattern": opts.label_pattern or "",
        "split": opts.split,
        "allow_truncated": opts.allow_truncated, "max_pixels": opts.max_pixels,
        "fast_decode": opts.fast_decode, "precision": provenance.get("precision", opts.precision),
        # What was asked for (empty: the model's default): run names show asked-for layers and pools.
        "layer_requested": opts.layer or "", "pool_requested": opts.pool or "",
        "extract_seconds": round(seconds, 3), "images_per_second": round(rate, 3),
        "warnings": listing.warnings, "command": opts.command,
    }


def run_extract(opts: ExtractOptions, progress: Callable[[int, int], None] | None = None,
                on_start: Callable[[int, int], None] | None = None,
                notify: Callable[[str], None] | None = None,
                detail: Callable[[str], None] | None = None) -> ExtractSummary:
    """Run an extraction (resuming a matching partial one). ``progress(done, total)`` is
    called after every batch; ``on_start(done, total)`` once before the first; ``notify(line)``
    once per notice about how the extractor runs (e.g. bf16 asked for, fp32 running);
    ``detail(line)`` once per line only worth showing when asked (``-v``): why the default
    ``auto`` runs fp32, or that it reused a cached int8 calibration."""
    output = Path(opts.output).expanduser().resolve()
    note_file(opts.source)
    _check_options(opts, output)
    listing = opts.list_images(opts.source)
    asked = opts
    opts, precision, notices, details = _resolve_precision(opts, listing)
    if opts.ray:
        if precision == "int8" or (opts.precision == "auto" and opts.precision_given):
            raise FeaturebenchError(f"--precision {opts.precision} does not run with --ray yet (each worker would "
                                    "calibrate); run it without --ray, or use --precision fp32.")
        from featurebench.scale.distributor import start_ray_extractor

        extractor = start_ray_extractor(opts, {**_model_args(opts), "precision": precision}, listing.root)
        provenance, notices = _auto_provenance(opts, extractor.provenance), [*notices, *extractor.notices]
    else:
        extractor, provenance, loaded = _load_extractor(opts, listing, precision, details)
        notices += loaded
        if provenance.get("precision") == "fp32":  # auto's int8 failed its check: the exact fp32 path
            opts = replace(opts, fast_decode=asked.fast_decode)
    try:
        for line in details:
            if detail:
                detail(line)
        for notice in notices:
            if notify:
                notify(notice)
        return _extract(opts, output, listing, extractor, provenance, progress, on_start)
    finally:
        if opts.ray:
            extractor.close()


def _model_args(opts: ExtractOptions) -> dict[str, Any]:
    """The keyword arguments of ``load_extractor`` (locally, or in each Ray worker)."""
    return {"model": opts.model, "weights": opts.weights, "layer": opts.layer, "pool": opts.pool,
            "seed": opts.seed, "preprocess": opts.preprocess, "batch_size": opts.batch_size,
            "unsafe_model": opts.unsafe_model, "precision": opts.precision, "engine": opts.engine}


def _resolve_precision(opts: ExtractOptions, listing: DatasetListing
                       ) -> tuple[ExtractOptions, str, list[str], list[str]]:
    """``auto`` resolved for this run: ``(opts with auto's decode, precision to load, notices, -v lines)``;
    where it resolves to fp32, the exact fp32 path (a full decode unless ``--fast-decode`` was given).

    Asked for (``--precision auto``), every reason it runs fp32 is a notice. As the default it is
    quiet about those (``-v`` lines), except a fidelity check that fails (a notice from ``calibrate``);
    under ``--ray`` or ``--shards`` the default runs fp32 with a full decode (one notice where this
    CPU class would have run something else), as every worker or shard then runs the same model.
    """
    if opts.precision != "auto":
        return opts, opts.precision, [], []
    from featurebench.extractors.auto import resolve_auto

    resolved = resolve_auto(opts.model, opts.engine)
    if not opts.precision_given and (opts.ray or opts.shards > 1):
        differs = resolved.precision != "fp32" or (resolved.fast_decode and not opts.fast_decode)
        flag = "--ray" if opts.ray else "--shards"
        return opts, "fp32", [] if not differs else [
            f"{flag}: fp32 with a full decode (the default --precision auto would run {resolved.precision}"
            f"{' with a reduced decode' if resolved.fast_decode else ''} on this CPU class, not yet with {flag})."], []
    why = [resolved.why] if resolved.why else []
    precision = resolved.precision
    if precision == "int8":
        from featurebench.extractors.int8 import calibration_sample

        try:  # too few train images to calibrate on: fp32, without building the int8 model
            calibration_sample(shuffled(listing, opts.seed, opts.split), opts.train_fraction)
        except FeaturebenchError as exc:
            precision, why = "fp32", [f"--precision auto: fp32 ({exc})"]
    if precision != "fp32":
        # With the precision it was measured with, auto's reduced-size decode (within its gate; the
        # file records fast_decode). Where auto runs fp32 it is the exact fp32 path, as under --ray.
        opts = replace(opts, fast_decode=opts.fast_decode or resolved.fast_decode)
    return (opts, precision, why, []) if opts.precision_given else (opts, precision, [], why)


def _auto_provenance(opts: ExtractOptions, provenance: dict[str, Any]) -> dict[str, Any]:
    """``provenance`` with, for ``auto``, the precision that ran and that auto (or the default) chose it."""
    if opts.precision != "auto":
        return provenance
    return {**provenance, "precision": provenance.get("precision", "fp32"),
            "precision_requested": "auto" if opts.precision_given else "auto (default)"}


def _load_extractor(opts: ExtractOptions, listing: DatasetListing, precision: str | None = None,
                    details: list[str] | None = None) -> tuple[Any, dict[str, Any], list[str]]:
    """The extractor in ``precision`` (None: ``opts.precision``, auto resolved; int8: calibrated on the
    source), its provenance, and notices; ``details`` (if given) gets the ``-v`` lines of the default auto."""
    from featurebench.extractors import load_extractor

    notices: list[str] = []
    if precision is None:
        opts, precision, notices, _ = _resolve_precision(opts, listing)
    extractor = load_extractor(**{**_model_args(opts), "precision": precision})
    if precision == "int8":
        from featurebench.extractors.int8 import calibrate

        decode = opts.decode_options(extractor.input_size, opts.resize, opts.fast_decode)
        notices += calibrate(extractor, listing.root, shuffled(listing, opts.seed, opts.split), opts.train_fraction,
                             decode, opts.workers, auto=opts.precision == "auto",
                             details=details if opts.precision == "auto" and not opts.precision_given else None)
    return extractor, _auto_provenance(opts, extractor.provenance), [*extractor.notices, *notices]


def _extract(opts: ExtractOptions, output: Path, listing: DatasetListing, extractor: Any, provenance: dict[str, Any],
             progress: Callable[[int, int], None] | None, on_start: Callable[[int, int], None] | None
             ) -> ExtractSummary:
    manifest = _manifest(opts, listing, provenance)
    decode = opts.decode_options(extractor.input_size, opts.resize, opts.fast_decode)
    batch_size = opts.batch_size or extractor.batch_size
    started = time.perf_counter()
    with Journal.open(output, manifest, force=opts.force) as journal:
        # Checked again holding the lock: a run that was finishing when ours started may have
        # renamed its file into place since (and removed its journal, so ours is new).
        if output.exists() and not opts.force:
            if journal.created:
                journal.remove()
            raise FeaturebenchError(f"{output} already exists (another run finished it just now); pass --force "
                                    "to overwrite it (or choose another -o).")
        items = run_items(journal.manifest)
        resumed_from = done = journal.next_index()
        if on_start:
            on_start(done, len(items))
        # Each batch joins ``pending`` in one step (features, rows, digests and skips
        # together), so an interrupt can never leave a shard whose parts disagree.
        pending: list[tuple[Batch, np.ndarray | None]] = []
        pending_rows = processed = 0
        shard_start = done
        writing = False
        if opts.ray:
            computed = extractor.iter_features(items, decode, done, batch_size, opts.flush_rows)
        else:
            computed = _computed(iter_batches(iter_decoded(items, listing.root, decode, done, opts.workers),
                                              batch_size), extractor)
        try:
            for batch, features in computed:
                problem = _non_finite(batch, features, opts, listing.root)
                if problem:
                    if not pending and done == 0 and journal.created:
                        journal.remove()  # nothing to keep: no journal that a fixed model would not match
                        raise FeaturebenchError(f"{problem}; nothing was written.")
                    raise FeaturebenchError(f"{problem}; no feature file is written (the {done} images before this "
                                            f"batch are kept in {journal.directory}; --force discards them).")
                pending.append((batch, features))
                pending_rows += len(batch.rows)
                processed += len(batch.rows)
                done = batch.end
                if pending_rows >= opts.flush_rows:
                    writing = True
                    _flush(journal, shard_start, pending, extractor.feature_dim)
                    writing = False
                    shard_start, pending, pending_rows = done, [], 0
                if progress:
                    progress(done, len(items))
        finally:
            # Stop the decode threads / workers now, in this thread: left to the garbage
            # collector, the generator would be closed in whatever thread runs it next, which
            # deadlocked on concurrent.futures' global lock.
            computed.close()
            # Keep every whole batch already computed, also on Ctrl+C or an error
            # (but do not retry a write that just failed: the committed shards stand).
            if pending and not writing:
                _flush(journal, shard_start, pending, extractor.feature_dim)
        seconds = time.perf_counter() - started
        rate = processed / seconds if seconds > 0 else 0.0
        attrs = {**_file_attrs(opts, listing, provenance, seconds, rate), **shard_attrs(journal.manifest)}
        counts = assemble_feature_file(journal, output, attrs, dtype=opts.dtype,
                                       compression=_h5_compression(opts.compression), replace=opts.force,
                                       keep_digests=opts.shards > 1)
        journal.remove()
    if counts["n_rows"] == 0 and (counts["n_candidates"] or opts.shards == 1):  # an empty shard is a success
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(counts["skipped_reasons"].items()))
        raise FeaturebenchError(f"None of the {counts['n_candidates']} images in {listing.root} could be used "
                                f"({reasons}); {output} lists each one with its reason (featurebench info {output}).")
    return ExtractSummary(output, counts["n_candidates"], counts["n_rows"], counts["n_skipped"], counts["n_ignored"],
                          resumed_from, seconds, rate, output.stat().st_size, counts["skipped_reasons"],
                          listing.warnings, counts["n_duplicates"], counts["skipped"])


#: The largest magnitude float16 stores (``--dtype float16``); beyond it a value becomes infinite.
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def _non_finite(batch: Batch, features: np.ndarray | None, opts: ExtractOptions, root: Path | str) -> str | None:
    """Why a batch's features cannot be kept (NaN or infinite values, or with ``--dtype float16``
    values float16 cannot hold: every reader refuses such a file), or None. Checked per batch,
    before the batch joins the journal."""
    if features is None or not features.size:
        return None
    limit = _FLOAT16_MAX if opts.dtype == "float16" else np.inf
    bad = ~(np.abs(features) < limit)
    if not bad.any():
        return None
    rows = np.flatnonzero(bad.any(axis=1))
    value = float(features[rows[0]][bad[rows[0]]][0])
    what = ("values beyond float16's range (±65504): use --dtype float32" if np.isfinite(value)
            else "NaN or infinite features: check the model's weights and --preprocess")
    where = location_of(root, batch.rows[int(rows[0])].candidate.path)
    return (f"--model {opts.model} gave {what} (value {value} for {where}"
            f" and {len(rows) - 1} more image(s) of its batch), which every reader of the file would refuse")


def _h5_compression(value: str | None) -> str | None:
    return None if value in (None, "none") else value


def _computed(batches: Iterator[Batch], extractor: Any) -> Iterator[tuple[Batch, np.ndarray | None]]:
    """``(batch, features)`` computed in this process; the images are dropped once used."""
    for batch, inputs in _prepared(batches, extractor):
        features = extractor.extract_prepared(inputs) if batch.rows else None
        for row in batch.rows:
            row.image = None  # only the features are kept until the flush
        yield batch, features


def _prepared(batches: Iterator[Batch], extractor: Any) -> Iterator[tuple[Batch, Any]]:
    """``(batch, network input)``; the next batch is stacked and preprocessed in a background
    thread while the network runs on this one (:data:`PREFETCH_BATCHES` ahead; 0: inline)."""
    def prepare(batch: Batch) -> tuple[Batch, Any]:
        return batch, (extractor.prepare(batch.images()) if batch.rows else None)

    if PREFETCH_BATCHES <= 0:
        return map(prepare, batches)
    return prefetch(batches, prepare, PREFETCH_BATCHES)


def _flush(journal: Journal, start: int, pending: list[tuple[Batch, np.ndarray | None]], feature_dim: int) -> None:
    """Commit the pending batches as the shard of candidates ``[start, last batch end)``."""
    blocks = [features for _, features in pending if features is not None]
    features = np.concatenate(blocks) if blocks else np.zeros((0, feature_dim), np.float32)
    rows = [row.index for batch, _ in pending for row in batch.rows]
    digests = [row.digest for batch, _ in pending for row in batch.rows]
    skipped = [(item.index, item.skip) for batch, _ in pending for item in batch.skipped]
    journal.commit(start, pending[-1][0].end, features, rows, skipped, digests)


__all__ = ["ExtractOptions", "ExtractSummary", "run_extract"]
