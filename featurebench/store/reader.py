"""Read a feature file: checked for completeness, sliced by the stored split, streamed by chunks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.store import format as fmt
from featurebench.store.journal import partial_dir_for


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _strings(dataset: h5py.Dataset) -> list[str]:
    return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in dataset[()]]


class FeatureFile:
    """An open feature file. ``features`` stays on disk; everything else is small.

    Use :func:`open_feature_file`, which checks that the file is complete.
    """

    def __init__(self, path: Path, h5: h5py.File):
        self.path = path
        self._h5 = h5
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
        return int(self.attrs.get("split_index", int(self.n_rows * 0.75)))

    @property
    def paths(self) -> list[str]:
        """Image path of each row, relative to the source root."""
        return _strings(self._h5[fmt.PATHS])

    def _pairs(self, group_name: str, second: str) -> list[tuple[str, str]]:
        """(path, ``second``) rows of a two-column string group; empty when the group is absent."""
        if group_name not in self._h5:
            return []
        group = self._h5[group_name]
        return list(zip(_strings(group["path"]), _strings(group[second])))

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
    """Open a feature file for reading, with clear errors for missing, partial or foreign files."""
    path = Path(path)
    if not path.exists():
        partial = partial_dir_for(path)
        hint = (f" An extraction into it is in progress or was interrupted ({partial}); "
                "re-run the same `featurebench extract` command to finish it.") if partial.exists() else ""
        raise FeaturebenchError(f"Feature file {path} does not exist.{hint}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise FeaturebenchError(f"{path} is not a readable HDF5 file ({exc}).") from None
    missing = [name for name in (fmt.FEATURES, fmt.LABELS, fmt.LABEL_NAMES) if name not in h5]
    if missing:
        h5.close()
        raise FeaturebenchError(f"{path} is not a featurebench feature file (missing {', '.join(missing)}).")
    if require_complete and not bool(h5.attrs.get("complete", False)):
        h5.close()
        raise FeaturebenchError(
            f"{path} is marked incomplete (its extraction did not finish); re-run the extract command to finish it."
        )
    try:
        feature_file = FeatureFile(path, h5)
    except (OSError, KeyError, ValueError) as exc:
        h5.close()
        raise FeaturebenchError(f"{path} is damaged and cannot be read ({exc}); re-create it with "
                                "`featurebench extract ... --force`.") from None
    if require_complete:
        problem = _consistency_problem(feature_file, h5)
        if problem:
            feature_file.close()
            raise FeaturebenchError(f"{path} is inconsistent: {problem}. It was not written by a finished "
                                    "`featurebench extract`; re-create it with `featurebench extract ... --force`.")
    return feature_file


def _consistency_problem(feature_file: FeatureFile, h5: h5py.File) -> str | None:
    """Why a file marked complete cannot be trusted (row counts that disagree), or None."""
    n_rows = feature_file.n_rows
    if len(feature_file.labels) != n_rows:
        return f"{n_rows} feature rows but {len(feature_file.labels)} labels"
    if fmt.PATHS in h5 and len(h5[fmt.PATHS]) != n_rows:
        return f"{n_rows} feature rows but {len(h5[fmt.PATHS])} paths"
    declared = feature_file.attrs.get("n_rows")
    if declared not in (None, "") and int(declared) != n_rows:
        return f"{n_rows} feature rows but its n_rows attribute says {declared}"
    if n_rows and feature_file.labels.max() >= len(feature_file.label_names):
        return f"label {feature_file.labels.max()} but only {len(feature_file.label_names)} label names"
    return None
