"""Assemble the final HDF5 feature file from a finished journal.

The file is written under a temporary name in the output folder, flushed and
fsynced, then renamed over the target in one step, so a reader never sees a
half-written file under the real name. Memory stays flat: one shard at a time
(plus 16 bytes per row for the duplicate check). A write error leaves the
journal untouched, so re-running the command only redoes this step.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import h5py
import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.store import format as fmt
from featurebench.store import identity
from featurebench.store.journal import Journal, leftover_temporaries
from featurebench.store.packed import PackedStrings, RowTable

#: Target bytes per HDF5 chunk of ``features``: whole rows, about 1 MiB, so a row
#: slice reads few chunks and a chunk is cheap to decompress.
CHUNK_BYTES = 1 << 20

_STR = h5py.string_dtype("utf-8")


def safe_text(text: str) -> str:
    """``text`` as valid UTF-8 for HDF5: a file name that is not UTF-8 (read by Python with
    surrogate escapes) keeps its undecodable bytes as ``\\xNN`` escapes instead of failing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def attr_value(value: Any) -> Any:
    """Convert a Python value to something h5py stores as a plain attribute."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    if isinstance(value, str):
        return safe_text(value)
    return value


def chunk_rows(feature_dim: int, itemsize: int, n_rows: int | None = None) -> int:
    """Rows per chunk so that one chunk is about :data:`CHUNK_BYTES`.

    With ``n_rows``, the chunk count (up to twice the fewest, so chunks stay at least half
    that size) is the one that leaves the fewest unused rows: HDF5 stores whole chunks, and
    304 rows of 1,024 float32 in 256-row chunks took 2.0 MiB for 1.2 MiB of features
    (docs/performance.md).
    """
    rows = max(1, CHUNK_BYTES // max(1, feature_dim * itemsize))
    if not n_rows:
        return rows
    if n_rows <= rows:
        return n_rows
    fewest = -(-n_rows // rows)
    count = min(range(fewest, 2 * fewest + 1), key=lambda k: (-(-n_rows // k) * k - n_rows, k))
    return -(-n_rows // count)


def _write_strings(group: h5py.Group, name: str, values: list[str]) -> None:
    group.create_dataset(name, data=np.array([safe_text(v) for v in values], dtype=object), dtype=_STR)


#: Rows of strings converted and written per step by :func:`_write_packed_strings`.
_STRING_BLOCK = 8192


def _write_packed_strings(group: h5py.Group, name: str, values: PackedStrings) -> None:
    """:func:`_write_strings` for a packed column, block by block (no list of every string)."""
    dataset = group.create_dataset(name, shape=(len(values),), dtype=_STR)
    for start in range(0, len(values), _STRING_BLOCK):
        end = min(len(values), start + _STRING_BLOCK)
        dataset[start:end] = np.array([safe_text(values[i]) for i in range(start, end)], dtype=object)


class _SafeTexts(Sequence):
    """The :func:`safe_text` of each string of a packed column, computed when read."""

    def __init__(self, values: PackedStrings):
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index):
        return safe_text(self._values[index])


def find_duplicates(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose content digest equals an earlier row's: ``(rows, first_rows)``.

    ``digests`` is (N, k) uint8, one row per feature row; ``first_rows[i]`` is the first
    row (in file order) with the same bytes as ``rows[i]``.
    """
    if len(digests) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = np.ascontiguousarray(digests, dtype=np.uint8).view(f"V{digests.shape[1]}").ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    first_of_row = first[inverse.ravel()]
    rows = np.nonzero(first_of_row != np.arange(len(keys)))[0]
    return rows.astype(np.int64), first_of_row[rows].astype(np.int64)


def _estimated_bytes(n_rows: int, feature_dim: int, itemsize: int, candidates: RowTable) -> int:
    """A generous estimate of the final file's size (features + strings + HDF5 overhead)."""
    skips = candidates.skips
    skip_chars = np.array([len(reason) for reason in skips.values] + [0], dtype=np.int64)[skips.codes].sum()
    strings = len(candidates.paths.blob) + int(skip_chars)  # bytes of the paths (>= their characters)
    return n_rows * feature_dim * itemsize + 4 * strings + 64 * len(candidates) + (1 << 20)


def _check_free_space(folder: Path, needed: int, output: Path, journal: Journal) -> None:
    """Refuse before writing when the disk cannot hold the file: HDF5 handles a full disk badly
    (h5py raises RuntimeError mid-write, and closing the half-written file can crash the process)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise FeaturebenchError(
            f"Not enough free space for the feature file {output}: about {needed / 1e6:.1f} MB needed, "
            f"{free / 1e6:.1f} MB free in {folder}. Every image is done and kept in {journal.directory}; free "
            "disk space and re-run the same command to write the file without recomputing anything.")


def _move_into_place(tmp: Path, output: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``output`` atomically; without ``replace`` never over an existing file
    (hard link + unlink: fails if ``output`` appeared meanwhile, e.g. another run finished)."""
    if replace:
        os.replace(tmp, output)
        return
    try:
        os.link(tmp, output)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network or FAT file systems): check, then rename
        if output.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(output)) from None
        os.replace(tmp, output)
        return
    tmp.unlink()


def assemble_feature_file(journal: Journal, output: Path, attrs: dict[str, Any],
                          dtype: str = "float32", compression: str | None = None, replace: bool = True,
                          keep_digests: bool = False,
                          write_features: Callable[[h5py.File, int, int, np.dtype], None] | None = None,
                          content: str | None = None,
                          duplicates: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Write ``output`` from the journal's shards; return the counts and skip reasons.

    ``attrs`` are stored as file attributes (``complete`` is set last). Without
    ``replace``, an ``output`` that appeared while this ran (another run finished
    first) is kept, and this one stops with an error (the journal is kept).
    ``keep_digests`` also stores the rows' content digests (``row_digest``, (N, 16) uint8:
    shard files keep them for ``featurebench merge``). ``write_features(h5, n_rows, dim, dtype)``
    creates the ``features`` dataset instead of copying the shards' features (``merge --virtual``).
    The file's ``identity`` attribute (:mod:`featurebench.store.identity`) digests its rows' content
    (from the journal's row digests, or ``content`` when the rows come without them, as in ``fuse``);
    ``duplicates`` (``(rows, first_rows)``) is the duplicates table of rows that come without digests.
    """
    manifest = journal.manifest
    candidates = RowTable.of(manifest["candidates"])
    feature_dim = int(manifest["settings"]["feature_dim"])
    row_blocks: list[np.ndarray] = []
    skipped: list[tuple[int, str]] = []
    digest_blocks: list[np.ndarray] = []
    duplicates_checked = True
    for shard in journal.shards(features=False):
        row_blocks.append(np.asarray(shard.row_index, dtype=np.int64))
        skipped.extend(zip((int(i) for i in shard.skip_index), (str(r) for r in shard.skip_reason)))
        if shard.row_digest is None or len(shard.row_digest) != len(shard.row_index):
            duplicates_checked = False  # a journal written without digests (or by write_feature_arrays)
        elif duplicates_checked:
            digest_blocks.append(shard.row_digest)
    row_index = np.concatenate(row_blocks) if row_blocks else np.zeros(0, np.int64)
    del row_blocks
    n_rows = len(row_index)
    digests = np.concatenate(digest_blocks) if duplicates_checked and digest_blocks else None
    del digest_blocks
    if digests is not None:
        dup_rows, dup_first = find_duplicates(digests)
        content = identity.content_digest(digests)
    elif duplicates is not None:
        dup_rows, dup_first = duplicates
        duplicates_checked = True
    else:
        dup_rows = dup_first = np.zeros(0, np.int64)
    if not keep_digests:
        digests = None
    np_dtype = np.dtype(dtype)
    # Holding the journal's lock, any temporary file for this output is a killed run's leftover.
    for stale in leftover_temporaries(output.parent, f".{output.name}"):
        stale.unlink(missing_ok=True)
    _check_free_space(output.parent, _estimated_bytes(n_rows, feature_dim, np_dtype.itemsize, candidates),
                      output, journal)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as h5:
            (write_features or _copy_features(journal, compression))(h5, n_rows, feature_dim, np_dtype)
            if digests is not None:
                h5.create_dataset(fmt.ROW_DIGEST, data=digests)
            labels = candidates.labels[row_index]
            h5.create_dataset(fmt.LABELS, data=labels.astype(np.int32))
            _write_strings(h5, fmt.LABEL_NAMES, manifest["label_names"])
            row_paths = candidates.paths.take(row_index)
            _write_packed_strings(h5, fmt.PATHS, row_paths)
            skipped_group = h5.create_group(fmt.SKIPPED)
            _write_strings(skipped_group, "path", candidates.path_list(i for i, _ in skipped))
            _write_strings(skipped_group, "reason", [reason for _, reason in skipped])
            ignored_group = h5.create_group(fmt.IGNORED)
            _write_strings(ignored_group, "path", [p for p, _ in manifest["ignored"]])
            _write_strings(ignored_group, "reason", [r for _, r in manifest["ignored"]])
            duplicates_group = h5.create_group(fmt.DUPLICATES)
            duplicates_group.create_dataset("row", data=dup_rows)
            duplicates_group.create_dataset("first_row", data=dup_first)
            _write_strings(duplicates_group, "path", row_paths.take(dup_rows))
            _write_strings(duplicates_group, "first_path", row_paths.take(dup_first))
            counts: dict[str, Any] = {"n_rows": n_rows, "n_skipped": len(skipped),
                                      "n_ignored": len(manifest["ignored"]), "n_candidates": len(candidates),
                                      "n_duplicates": len(dup_rows), "duplicates_checked": duplicates_checked}
            train_fraction = float(attrs["train_fraction"])
            all_attrs = {**attrs, **counts, "split_index": int(n_rows * train_fraction),
                         "feature_dim": feature_dim, "dtype": np_dtype.name,
                         "compression": compression or "none",
                         "format": fmt.FORMAT_NAME, "format_version": fmt.FORMAT_VERSION}
            for key, value in all_attrs.items():
                h5.attrs[key] = attr_value(value)
            h5.attrs[identity.IDENTITY_ATTR] = json.dumps(identity.feature_identity(
                all_attrs, _SafeTexts(row_paths), labels,
                [safe_text(n) for n in manifest["label_names"]], content))
            h5.attrs["complete"] = True
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        _move_into_place(tmp, output, replace)
    except FileExistsError:
        raise FeaturebenchError(
            f"{output} appeared while this run was finishing (another run wrote it) and was left as it is. "
            f"This run's images are kept in {journal.directory}; pass --force to replace the file with them."
        ) from None
    except (OSError, RuntimeError) as exc:  # h5py raises RuntimeError for some failed writes
        # After a failed write (a full disk), freeing the file's h5py objects can crash HDF5
        # (a segfault, seen on a full tmpfs). Keep them alive, and mark the error so that the
        # CLI exits without the final clean-up that would free them.
        _FAILED_WRITES.append(exc)
        error = FeaturebenchError(
            f"Could not write the feature file {output} ({_short(exc)}). Every image is done and "
            f"kept in {journal.directory}; free disk space (or fix the error) and re-run the same command "
            "to write the file without recomputing anything.")
        error.exit_without_cleanup = True
        raise error from exc
    finally:
        tmp.unlink(missing_ok=True)
    counts["skipped_reasons"] = skip_reason_counts(reason for _, reason in skipped)
    counts["skipped"] = [(candidates.paths[i], reason) for i, reason in skipped]
    return counts


#: Errors of failed HDF5 writes, with their tracebacks (and so the file's objects): never freed.
_FAILED_WRITES: list[BaseException] = []


def _short(exc: BaseException) -> str:
    """An OS or HDF5 error, short and on one line (HDF5's span several and bury the OS error)."""
    text = getattr(exc, "strerror", None) or str(exc)
    found = re.search(r"error message = '([^']+)'", text)
    return found.group(1) if found else " ".join(text.split())[:300]


def _copy_features(journal: Journal, compression: str | None) -> Callable[[h5py.File, int, int, np.dtype], None]:
    """The default ``write_features``: a chunked ``features`` dataset filled shard by shard."""
    def write(h5: h5py.File, n_rows: int, feature_dim: int, np_dtype: np.dtype) -> None:
        chunks = (chunk_rows(feature_dim, np_dtype.itemsize, n_rows), feature_dim) if n_rows else None
        features = h5.create_dataset(fmt.FEATURES, shape=(n_rows, feature_dim), dtype=np_dtype,
                                     chunks=chunks, compression=compression if n_rows else None)
        offset = 0
        for shard in journal.shards():
            count = len(shard.row_index)
            if count:
                features[offset:offset + count] = shard.features.astype(np_dtype, copy=False)
            offset += count
    return write


def skip_reason_counts(reasons) -> dict[str, int]:
    """Count skip reasons by their short code (the text before the first colon)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        key = str(reason).split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def write_feature_arrays(output: str | Path, features: np.ndarray, labels, label_names: list[str],
                         paths: list[str] | None = None, attrs: dict[str, Any] | None = None,
                         train_fraction: float = 0.75, dtype: str = "float32") -> Path:
    """Write in-memory arrays as a complete feature file (for tests, tools and small data).

    Goes through the same journal and assembly code as ``extract``; ``attrs`` fill in or
    override the provenance attributes.
    """
    import time

    from featurebench import __version__

    output = Path(output)
    features = np.asarray(features, dtype=np.float32)
    labels = [int(label) for label in labels]
    paths = paths or [f"row-{i:06d}" for i in range(len(labels))]
    manifest = {
        "fingerprint": f"arrays-{time.time_ns()}",
        "settings": {"feature_dim": int(features.shape[1])},
        "candidates": [[p, label, None] for p, label in zip(paths, labels)],
        "label_names": list(label_names),
        "ignored": [],
    }
    base_attrs = {
        "featurebench_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": "arrays", "layer": "", "pool": "", "input_size": "", "resize": "", "preprocessing": "",
        "weights": "", "weights_sha256": "", "seed": 0, "train_fraction": train_fraction,
        "source": "", "source_kind": "arrays", "dataset": output.stem,
    }
    with Journal.open(output, manifest, force=True) as journal:
        journal.commit(0, len(labels), features, list(range(len(labels))), [])
        assemble_feature_file(journal, output, {**base_attrs, **(attrs or {})}, dtype=dtype)
        journal.remove()
    return output
