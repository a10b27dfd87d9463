"""Read a feature file: checked for completeness, sliced by the stored split, streamed by chunks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from featurebench.errors import FeaturebenchError, note_file
from featurebench.store import format as fmt
from featurebench.store import identity as ident
from featurebench.store.journal import partial_dir_for


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _strings(dataset: h5py.Dataset, errors: str = "strict") -> list[str]:
    """The dataset's strings; ``errors="backslashreplace"`` shows bytes that are not UTF-8 as ``\\xNN``."""
    return [s.decode("utf-8", errors) if isinstance(s, bytes) else str(s) for s in dataset[()]]


class FeatureFile:
    """An open feature file. ``features`` stays on disk; everything else is small.

    Use :func:`open_feature_file`, which checks that the file is complete.
    """

    def __init__(self, path: Path, h5: h5py.File):
        self.path = path
        self._h5 = h5
        #: Why the file cannot be trusted (see :func:`feature_file_problem`); None when fine.
        self.problem: str | None = None
        self.attrs: dict[str, Any] = {key: _decode(value) for key, value in h5.attrs.items()}
        self.features: h5py.Dataset = h5[fmt.FEATURES]
        self.labels: np.ndarray = h5[fmt.LABELS][()]
        self.label_names: list[str] = _strings(h5[fmt.LABEL_NAMES])

    @property
    def n_rows(self) -> int:
        """Number of feature rows."""
        return int(self.features.shape[0])

    @property
    def feature_dim(self) -> int:
        """Features per row."""
        return int(self.features.shape[1])

    @property
    def split_index(self) -> int:
        """Rows ``[:split_index]`` are the stored train slice, the rest the test slice."""
        value = self.attrs.get("split_index")
        return int(value) if _is_whole(value) else int(self.n_rows * 0.75)

    @property
    def shard(self) -> tuple[int, int] | None:
        """``(k, n)`` (1-based) when this file is shard k of n of one extraction (``extract --shards``),
        else ``None``: such a file holds a slice of the dataset, not the dataset."""
        count = self.attrs.get("shard_count")
        if not _is_whole(count) or int(count) < 2:
            return None
        index = self.attrs.get("shard_index")
        return (int(index) + 1 if _is_whole(index) else 0, int(count))

    @property
    def paths(self) -> list[str]:
        """Image path of each row, relative to the source root."""
        return _strings(self._h5[fmt.PATHS])

    def _pairs(self, group_name: str, second: str) -> list[tuple[str, str]]:
        """(path, ``second``) rows of a two-column string group; empty when the group is absent."""
        if group_name not in self._h5:
            return []
        group = self._h5[group_name]
        return list(zip(_strings(group["path"], "backslashreplace"), _strings(group[second], "backslashreplace")))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(path, reason) for every image that could not be used."""
        return self._pairs(fmt.SKIPPED, "reason")

    @property
    def ignored(self) -> list[tuple[str, str]]:
        """(path, reason) for files not taken as images."""
        return self._pairs(fmt.IGNORED, "reason")

    @property
    def duplicates(self) -> list[tuple[str, str]]:
        """(path, first_path) for every row whose file has the same bytes as an earlier row."""
        return self._pairs(fmt.DUPLICATES, "first_path")

    def duplicate_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(rows, first_rows)`` of the duplicates table; None when duplicates were not checked."""
        checked = self.attrs.get("duplicates_checked")
        if fmt.DUPLICATES not in self._h5 or checked is False or str(checked).lower() in ("false", "0"):
            return None
        group = self._h5[fmt.DUPLICATES]
        return group["row"][()].astype(np.int64), group["first_row"][()].astype(np.int64)

    @property
    def identity(self) -> dict[str, Any]:
        """The file's identity (:mod:`featurebench.store.identity`): stored, or computed for older files."""
        return h5_identity(self._h5)

    def json_attr(self, key: str, default: Any = None) -> Any:
        """An attribute stored as JSON text (lists, dicts), parsed."""
        value = self.attrs.get(key)
        if value in (None, ""):
            return default
        return json.loads(value)

    def read_rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Features of rows ``[start:stop]`` as float32 (reads only that slice)."""
        return np.asarray(self.features[start:stop], dtype=np.float32)

    def iter_chunks(self, start: int = 0, stop: int | None = None, rows: int | None = None
                    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(offset, block)`` over rows ``[start:stop]``, one HDF5 chunk-multiple at a time."""
        stop = self.n_rows if stop is None else stop
        rows = rows or (self.features.chunks[0] if self.features.chunks else 1024)
        for offset in range(start, stop, rows):
            yield offset, self.read_rows(offset, min(offset + rows, stop))

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._h5.close()

    def __enter__(self) -> "FeatureFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_feature_file(path: str | Path, require_complete: bool = True) -> FeatureFile:
    """Open a feature file for reading, with clear errors for missing, partial, damaged or foreign files.

    Every reader (``fit``, ``info``, ...) goes through here, so one check
    (:func:`feature_file_problem`) decides what is usable. With ``require_complete``
    (the default) the first problem found is an error naming the file; without it
    (``info``) the file is opened if it can be described at all, and ``problem`` says
    what is wrong with it.
    """
    path = Path(path)
    note_file(path)
    if not path.exists():
        partial = partial_dir_for(path)
        hint = (f" An extraction into it is in progress or was interrupted ({partial}); "
                "re-run the same `featurebench extract` command to finish it.") if partial.exists() else ""
        raise FeaturebenchError(f"Feature file {path} does not exist.{hint}")
    if path.is_dir():
        raise FeaturebenchError(f"{path} is a folder, not a feature file; pass the .h5 file `featurebench extract` "
                                "wrote.")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise FeaturebenchError(f"{path} is not a readable HDF5 file ({exc}).") from None
    try:
        structure = _structure_problem(h5)
        if structure:
            raise FeaturebenchError(f"{path} is not a usable featurebench feature file: {structure}. Re-create it "
                                    "with `featurebench extract ... --force`.")
        if require_complete and not _flag(h5.attrs.get("complete", False)):
            raise FeaturebenchError(f"{path} is marked incomplete (its extraction did not finish); re-run the "
                                    "extract command to finish it.")
        try:
            feature_file = FeatureFile(path, h5)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise FeaturebenchError(f"{path} is damaged and cannot be read ({exc}); re-create it with "
                                    "`featurebench extract ... --force`.") from None
    except BaseException:
        h5.close()
        raise
    feature_file.problem = feature_file_problem(feature_file, h5)
    if require_complete and feature_file.problem:
        feature_file.close()
        raise FeaturebenchError(f"{path} cannot be used: {feature_file.problem}{problem_fix(feature_file.problem)}")
    return feature_file


#: The fix that ends every problem of a ``merge --virtual`` file's shards (they need no re-extraction).
_VIRTUAL_FIX = ("keep the shard files beside it (move the folder as a whole), or merge the shards again "
                "(`featurebench merge SHARDS... -o FILE --force`, without --virtual for a standalone copy)")


def problem_fix(problem: str) -> str:
    """What to do about ``problem`` (a :func:`feature_file_problem`), unless it already says."""
    return "." if problem.endswith(_VIRTUAL_FIX) else ". Re-create it with `featurebench extract ... --force`."


def _flag(value: Any) -> bool:
    try:
        return bool(value)
    except (TypeError, ValueError):  # e.g. an array attribute
        return False


def _structure_problem(h5: h5py.File) -> str | None:
    """What keeps the file from being read as a feature file at all (None: it can be opened)."""
    missing = [name for name in (fmt.FEATURES, fmt.LABELS, fmt.LABEL_NAMES, fmt.PATHS) if name not in h5]
    if missing:
        return f"missing {', '.join(missing)}"
    for name in (fmt.FEATURES, fmt.LABELS, fmt.LABEL_NAMES, fmt.PATHS):
        if not isinstance(h5[name], h5py.Dataset):
            return f"'{name}' is a {type(h5[name]).__name__.lower()}, not a dataset"
    features, labels = h5[fmt.FEATURES], h5[fmt.LABELS]
    if features.ndim != 2 or features.dtype.kind not in "fiu":
        return f"'features' must be a 2-D numeric array (rows x features), found {features.ndim}-D {features.dtype}"
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        return f"'labels' must be a 1-D integer array, found {labels.ndim}-D {labels.dtype}"
    for name in (fmt.LABEL_NAMES, fmt.PATHS):
        if h5[name].ndim != 1 or h5[name].dtype.kind not in "OSU":
            return f"'{name}' must be a 1-D array of strings, found {h5[name].ndim}-D {h5[name].dtype}"
    return None


def feature_file_problem(feature_file: FeatureFile, h5: h5py.File) -> str | None:
    """The first reason a complete-looking file cannot be trusted, or None.

    Row counts that disagree (``features`` vs ``labels``, ``paths``, ``n_rows``), labels outside
    ``label_names`` (or negative), names that are not UTF-8, a ``split_index`` that is not a
    whole number within the rows, a ``warnings`` attribute that is not a JSON list, and
    features that are NaN or infinite (scanned chunk by chunk: memory stays flat).
    """
    n_rows = feature_file.n_rows
    labels = feature_file.labels
    if len(labels) != n_rows:
        return f"{n_rows} feature rows but {len(labels)} labels"
    if len(h5[fmt.PATHS]) != n_rows:
        return f"{n_rows} feature rows but {len(h5[fmt.PATHS])} paths"
    declared = feature_file.attrs.get("n_rows")
    if declared not in (None, "") and (not _is_whole(declared) or int(declared) != n_rows):
        return f"{n_rows} feature rows but its n_rows attribute says {declared!r}"
    if n_rows and labels.min() < 0:
        return f"label {labels.min()} is negative (labels index label_names from 0)"
    if n_rows and labels.max() >= len(feature_file.label_names):
        return f"label {labels.max()} but only {len(feature_file.label_names)} label names"
    try:
        feature_file.paths
    except UnicodeDecodeError as exc:
        return f"a path is not valid UTF-8 ({exc})"
    split = feature_file.attrs.get("split_index")
    if split is not None and (not _is_whole(split) or not 0 <= int(split) <= n_rows):
        return f"split_index {split!r} is not a whole number between 0 and {n_rows}"
    try:
        warnings = feature_file.json_attr("warnings", [])
    except (ValueError, TypeError):
        return "the 'warnings' attribute is not JSON"
    if not isinstance(warnings, list):
        return "the 'warnings' attribute is not a JSON list"
    virtual = virtual_sources_problem(feature_file.path, h5)
    if virtual:
        return virtual
    for offset, block in feature_file.iter_chunks():
        bad = ~np.isfinite(block)
        if bad.any():
            row, column = np.argwhere(bad)[0]
            return f"feature row {offset + row}, column {column} is {block[row, column]} (NaN or infinite)"
    return None


def h5_identity(h5: h5py.File) -> dict[str, Any]:
    """The identity of an open feature file (stored, or computed from its rows for older files)."""
    stored = ident.parse(h5.attrs.get(ident.IDENTITY_ATTR))
    if stored is not None:
        return stored
    attrs = {key: _decode(value) for key, value in h5.attrs.items()}
    paths = _strings(h5[fmt.PATHS]) if fmt.PATHS in h5 else []
    computed = ident.feature_identity(attrs, paths, h5[fmt.LABELS][()].tolist(), _strings(h5[fmt.LABEL_NAMES]))
    return {**computed, "recorded": False}


#: Attribute of a ``merge --virtual`` file: each shard file's relative path, rows and identity digest.
VIRTUAL_SOURCES_ATTR = "virtual_sources"


def virtual_sources_problem(path: Path, h5: h5py.File) -> str | None:
    """Why the shard files behind a virtual ``features`` dataset cannot be read as merged, or None.

    HDF5 reads a missing source as zeros (and a same-named file of another extraction as if it
    were the shard), so every source must exist beside the file, hold the rows the layout maps,
    and (files merged with identities) have the identity recorded at merge time.
    """
    features = h5[fmt.FEATURES]
    if not features.is_virtual:
        return None
    recorded = {}
    try:
        for entry in json.loads(h5.attrs.get(VIRTUAL_SOURCES_ATTR, "[]") or "[]"):
            recorded[entry["file"]] = entry
    except (ValueError, TypeError, KeyError):
        return f"its '{VIRTUAL_SOURCES_ATTR}' attribute is not a JSON list of shards"
    fix = _VIRTUAL_FIX
    for source in features.virtual_sources():
        name = source.file_name
        shard = Path(name) if Path(name).is_absolute() else path.parent / name
        (first_row, _), (last_row, _) = source.vspace.get_select_bounds()
        rows = last_row - first_row + 1  # the rows the layout maps from this source
        if not shard.is_file():
            return f"its features are read from shard file {shard}, which is missing (moved or deleted); {fix}"
        try:
            with h5py.File(shard, "r") as other:
                shape = other[source.dset_name].shape if source.dset_name in other else None
                stored = h5_identity(other)
        except (OSError, KeyError, ValueError) as exc:
            return f"its shard file {shard} cannot be read ({' '.join(str(exc).split())[:120]}); {fix}"
        if shape is None or len(shape) != 2 or shape[0] != rows or shape[1] != features.shape[1]:
            return (f"its shard file {shard} holds features of shape {shape}, the merged file maps "
                    f"{rows} x {features.shape[1]} from it; {fix}")
        entry = recorded.get(name)
        if entry is not None:
            current = {"digest": stored.get("digest"), "n_rows": shape[0], "feature_dim": shape[1]}
            difference = ident.first_difference("merge", entry, current)
            if difference:
                field, was, now = difference
                return (f"its shard file {shard} is not the one merged ({field}: {now} vs {was} at merge time: "
                        f"replaced by another extraction?); {fix}")
    return None


def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
