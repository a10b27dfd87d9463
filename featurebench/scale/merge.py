"""``featurebench merge SHARD.h5... -o OUT.h5``: the shard files of ``extract --shards`` -> the
one file a single machine writes (rows, order, labels, skipped, duplicates, split index).

The shards are checked to be the complete set of one run (same fingerprint, every index
once). The file is assembled by the same writer as ``extract``, fed from the shard files a
chunk of rows at a time (memory stays flat); ``virtual=True`` writes ``features`` as an
HDF5 virtual dataset that reads the shard files in place (no copy: keep them beside it).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import h5py
import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_not_an_input, check_output_file
from featurebench.scale.shards import SHARD_ATTRS
from featurebench.store import format as fmt
from featurebench.store.journal import Shard
from featurebench.store.identity import check_joinable
from featurebench.store.reader import VIRTUAL_SOURCES_ATTR, h5_identity
from featurebench.store.writer import assemble_feature_file

#: Rows read from a shard file at a time.
CHUNK_ROWS = 8192
#: Attributes the writer recomputes for the merged file (not copied from the first shard).
_RECOMPUTED = set(SHARD_ATTRS) | {
    "n_rows", "n_skipped", "n_ignored", "n_candidates", "n_duplicates", "duplicates_checked", "split_index",
    "feature_dim", "dtype", "compression", "format", "format_version", "complete", "identity"}


def _strings(dataset: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in dataset[()]]


class _ShardFiles:
    """The open shard files seen as a finished journal (what ``assemble_feature_file`` reads)."""

    def __init__(self, files: Sequence[h5py.File]):
        self.files = files
        self.directory = Path(files[0].filename).parent
        candidates: list[list[Any]] = []
        for h5 in files:
            candidates += [[p, int(label), None] for p, label in zip(_strings(h5[fmt.PATHS]), h5[fmt.LABELS][()])]
            candidates += [[p, -1, r] for p, r in zip(_strings(h5[fmt.SKIPPED]["path"]),
                                                      _strings(h5[fmt.SKIPPED]["reason"]))]
        first = files[0]
        self.manifest = {
            "candidates": candidates, "settings": {"feature_dim": int(first.attrs["feature_dim"])},
            "label_names": _strings(first[fmt.LABEL_NAMES]),
            "ignored": list(zip(_strings(first[fmt.IGNORED]["path"]), _strings(first[fmt.IGNORED]["reason"]))),
        }

    def shards(self, features: bool = True) -> Iterator[Shard]:
        """Each file's rows in chunks of :data:`CHUNK_ROWS`, its skips with the last chunk."""
        offset = 0
        for h5 in self.files:
            n_rows, n_skipped = len(h5[fmt.PATHS]), len(h5[fmt.SKIPPED]["path"])
            digests = h5[fmt.ROW_DIGEST] if fmt.ROW_DIGEST in h5 else None
            reasons = np.asarray(_strings(h5[fmt.SKIPPED]["reason"]), dtype=str)
            starts = list(range(0, n_rows, CHUNK_ROWS)) or [0]
            for a in starts:
                b = min(a + CHUNK_ROWS, n_rows)
                last = a == starts[-1]
                skip_index = offset + n_rows + np.arange(n_skipped) if last else np.zeros(0, np.int64)
                yield Shard(offset + a, offset + (n_rows + n_skipped if last else b),
                            h5[fmt.FEATURES][a:b] if features else None, offset + np.arange(a, b),
                            skip_index, reasons if last else np.zeros(0, str),
                            digests[a:b] if digests is not None else None)
            offset += n_rows + n_skipped


def _check_set(paths: Sequence[Path], files: Sequence[h5py.File]) -> list[int]:
    """Order of ``files`` by shard index; refuses anything but the complete set of one run."""
    for path, h5 in zip(paths, files):
        if not h5.attrs.get("complete", False):
            raise FeaturebenchError(f"{path} is not a complete feature file; finish its extract first.")
        if "shard_of" not in h5.attrs:
            raise FeaturebenchError(f"{path} is not a shard file (written without extract --shards).")
    first = files[0].attrs
    first_identity = h5_identity(files[0])
    for path, h5 in zip(paths, files):
        check_joinable("merge shards", first_identity, h5_identity(h5), str(paths[0]), str(path))
    count = int(first["shard_count"])
    indices = [int(h5.attrs["shard_index"]) for h5 in files]
    missing = sorted(set(range(count)) - set(indices))
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if missing or repeated:
        raise FeaturebenchError(f"The run has {count} shards; " + "; ".join(
            ([f"missing shard index {', '.join(map(str, missing))}"] if missing else []) +
            ([f"shard index {', '.join(map(str, repeated))} given twice"] if repeated else [])) +
            ". Pass each shard file once.")
    return sorted(range(len(files)), key=lambda i: indices[i])


def _virtual_features(paths: Sequence[Path], rows: Sequence[int], output: Path
                      ) -> Callable[[h5py.File, int, int, np.dtype], None]:
    """A ``write_features`` making ``features`` a virtual dataset over the shard files (relative paths)."""
    def write(h5: h5py.File, n_rows: int, feature_dim: int, np_dtype: np.dtype) -> None:
        layout = h5py.VirtualLayout(shape=(n_rows, feature_dim), dtype=np_dtype)
        offset = 0
        for path, count in zip(paths, rows):
            if count:
                source = os.path.relpath(path.resolve(), output.parent)
                layout[offset:offset + count] = h5py.VirtualSource(source, fmt.FEATURES, shape=(count, feature_dim))
            offset += count
        h5.create_virtual_dataset(fmt.FEATURES, layout)
    return write


def merge_shards(shard_paths: Sequence[str | Path], output: str | Path, virtual: bool = False,
                 force: bool = False, command: str = "") -> dict[str, Any]:
    """Assemble the shard files of one ``extract --shards`` run into ``output``; return the counts."""
    output = Path(output).expanduser().resolve()
    paths = [Path(p).expanduser() for p in shard_paths]
    if not paths:
        raise FeaturebenchError("Give the shard files to merge.")
    for path in paths:
        if not path.is_file():
            raise FeaturebenchError(f"Shard file {path} not found.")
    check_output_file(output, "-o", force, len(".") + len(".tmp-") + 7, example="merged.h5")
    check_not_an_input(output, paths, "-o")
    with ExitStack() as stack:
        try:
            files = [stack.enter_context(h5py.File(p, "r")) for p in paths]
        except OSError as exc:
            raise FeaturebenchError(f"Could not read a shard file ({exc}); is it an HDF5 feature file?") from None
        order = _check_set(paths, files)
        paths, files = [paths[i] for i in order], [files[i] for i in order]
        journal = _ShardFiles(files)
        first = files[0].attrs
        if len(journal.manifest["candidates"]) != int(first["n_candidates_total"]):
            raise FeaturebenchError(f"The shards hold {len(journal.manifest['candidates'])} images of "
                                    f"{int(first['n_candidates_total'])}; re-extract the incomplete shard.")
        seconds = sum(float(h5.attrs.get("extract_seconds", 0.0)) for h5 in files)
        n_rows = sum(len(h5[fmt.PATHS]) for h5 in files)
        attrs = {key: value for key, value in first.items() if key not in _RECOMPUTED}
        attrs.update(extract_seconds=round(seconds, 3), images_per_second=round(n_rows / seconds, 3) if seconds else 0.0,
                     merged_from=[str(p) for p in paths], virtual=virtual, command=command or attrs.get("command", ""))
        compression = str(first.get("compression", "none"))
        writer = None
        if virtual:
            rows = [len(h5[fmt.PATHS]) for h5 in files]
            writer = _virtual_features(paths, rows, output)
            attrs[VIRTUAL_SOURCES_ATTR] = [
                {"file": os.path.relpath(p.resolve(), output.parent), "n_rows": n, "feature_dim": int(first["feature_dim"]),
                 "digest": h5_identity(h5)["digest"]} for p, n, h5 in zip(paths, rows, files)]
        return assemble_feature_file(journal, output, attrs, dtype=str(first["dtype"]),
                                     compression=None if compression == "none" else compression,
                                     replace=force, write_features=writer)
