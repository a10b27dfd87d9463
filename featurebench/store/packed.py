"""Per-image lists held compactly, for runs of 10^5-10^6 images.

An extraction holds the list of its images for the whole run: the listing, the seeded order
and the journal's manifest. As Python objects (a dataclass or a list, plus a string, per image,
each held several times) that is ~400 bytes per image before the first batch, and it grows the
peak memory of a run with the number of images. Here a list of strings is one UTF-8 blob plus
int64 offsets, and a column of labels or skip reasons is an int32 array of codes into its few
distinct values: about the paths' own bytes plus 16 bytes per image.

:class:`RowTable` is the journal manifest's ``candidates`` (``[path, label index, skip reason]``
rows in the run's order); :func:`json_pieces` writes (and hashes) a value holding one exactly as
``json.dumps`` writes the same value with plain lists, so journals, their fingerprints and the
identities computed from them are unchanged.

Plain data and numpy only: every layer may import it.
"""

from __future__ import annotations

import json
from array import array
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

#: Paths are stored as UTF-8; lone surrogates (file names that are not UTF-8, read by Python with
#: surrogate escapes) round-trip through ``surrogatepass``. UTF-8 keeps code point order, so
#: sorting the bytes sorts the strings.
_ENCODING = ("utf-8", "surrogatepass")
#: Items decoded per step when a whole table is read or gathered (bounds the temporary objects).
_CHUNK = 4096


class _Gathered(Sequence):
    """A sequence whose items are made on access (:meth:`_item`) and whose slices gather (:meth:`take`)."""

    __slots__ = ()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.take(np.arange(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(index)

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self._item(index)

    def _item(self, index: int) -> Any:
        raise NotImplementedError

    def take(self, index: np.ndarray) -> "_Gathered":
        """The items at positions ``index`` (an int array), in that order."""
        raise NotImplementedError


class PackedStrings(_Gathered):
    """An immutable sequence of strings stored as one bytes blob and ``len + 1`` int64 offsets."""

    __slots__ = ("blob", "offsets")

    def __init__(self, blob: bytes, offsets: np.ndarray):
        self.blob = blob
        self.offsets = offsets

    @classmethod
    def of(cls, values: Iterable[str]) -> "PackedStrings":
        """The strings of ``values`` (consumed one at a time: no list of them is built)."""
        builder = PackedStringsBuilder()
        for value in values:
            builder.append(value)
        return builder.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _item(self, index: int) -> str:
        return self.blob[int(self.offsets[index]):int(self.offsets[index + 1])].decode(*_ENCODING)

    def take(self, index: np.ndarray) -> "PackedStrings":
        """The strings at positions ``index`` (an int array), in that order."""
        index = np.asarray(index, dtype=np.int64)
        starts, ends = self.offsets[:-1][index], self.offsets[1:][index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=offsets[1:])
        view, parts = memoryview(self.blob), bytearray()
        for a in range(0, len(index), _CHUNK):
            parts += b"".join(view[s:e] for s, e in zip(starts[a:a + _CHUNK].tolist(), ends[a:a + _CHUNK].tolist()))
        return PackedStrings(bytes(parts), offsets)

    def nbytes(self) -> int:
        """Bytes held (the blob and the offsets)."""
        return len(self.blob) + self.offsets.nbytes


class PackedStringsBuilder:
    """Appends strings to a growing blob; :meth:`build` freezes it into :class:`PackedStrings`."""

    def __init__(self) -> None:
        self._blob = bytearray()
        self._offsets = array("q", [0])

    def append(self, value: str) -> None:
        """Add one string."""
        self._blob += value.encode(*_ENCODING)
        self._offsets.append(len(self._blob))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def build(self) -> PackedStrings:
        """The strings appended so far."""
        return PackedStrings(bytes(self._blob), np.frombuffer(self._offsets, dtype=np.int64).copy())


class Codes:
    """A column of a few distinct values (e.g. skip reasons, label names) as int32 codes; code -1 is None."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list):
        self.codes = codes
        self.values = values

    def __getitem__(self, index: int) -> Any:
        code = int(self.codes[index])
        return None if code < 0 else self.values[code]

    def take(self, index: np.ndarray) -> "Codes":
        """The values at positions ``index``, in that order."""
        return Codes(self.codes[np.asarray(index, dtype=np.int64)], self.values)


class CodesBuilder:
    """Appends values, coding each distinct one once; :meth:`build` freezes it into :class:`Codes`."""

    def __init__(self) -> None:
        self._codes = array("i")
        self._index: dict[Any, int] = {}

    def append(self, value: Any) -> None:
        """Add one value (None: code -1)."""
        self._codes.append(-1 if value is None else self._index.setdefault(value, len(self._index)))

    def build(self) -> Codes:
        """The values appended so far."""
        return Codes(np.frombuffer(self._codes, dtype=np.int32).copy(), list(self._index))


class PackedTable(_Gathered):
    """Columns of one row per image, the first a :class:`PackedStrings` of paths. Subclasses say
    what a row is (:meth:`_item`) and how rows are gathered (:meth:`take`); a table compares equal
    to a list of the same rows."""

    __slots__ = ("paths",)

    def __len__(self) -> int:
        return len(self.paths)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (PackedTable, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # compared by value, like the list it stands for


class RowTable(PackedTable):
    """The journal manifest's ``candidates``: ``[path, label index, skip reason]`` rows in the run's
    order (label -1 and a reason for a candidate skipped before decoding). Indexing gives the row
    as that list; :attr:`paths`, :attr:`labels` (int32) and :attr:`skips` are the columns."""

    __slots__ = ("labels", "skips")

    def __init__(self, paths: PackedStrings, labels: np.ndarray, skips: Codes):
        self.paths = paths
        self.labels = labels
        self.skips = skips

    @classmethod
    def of(cls, rows: Iterable[Sequence[Any]]) -> "RowTable":
        """A table of ``[path, label, skip]`` rows (a table is returned as it is)."""
        if isinstance(rows, RowTable):
            return rows
        paths, labels, skips = PackedStringsBuilder(), array("i"), CodesBuilder()
        for path, label, skip in rows:
            paths.append(path)
            labels.append(int(label))
            skips.append(skip)
        return cls(paths.build(), np.frombuffer(labels, dtype=np.int32).copy(), skips.build())

    def _item(self, index: int) -> list:
        return [self.paths[index], int(self.labels[index]), self.skips[index]]

    def take(self, index: np.ndarray) -> "RowTable":
        """The rows at positions ``index`` (an int array), in that order."""
        index = np.asarray(index, dtype=np.int64)
        return RowTable(self.paths.take(index), self.labels[index], self.skips.take(index))

    def path_list(self, index: Iterable[int]) -> list[str]:
        """The paths of the rows at ``index`` as a list (for writing them out)."""
        return [self.paths[int(i)] for i in index]

    def json_pieces(self) -> Iterator[str]:
        """The table as ``json.dumps`` writes the same list of rows, in pieces."""
        if not len(self):
            yield "[]"
            return
        for start in range(0, len(self), _CHUNK):
            rows = json.dumps([self._item(i) for i in range(start, min(len(self), start + _CHUNK))])
            yield ("[" if start == 0 else ", ") + rows[1:-1]
        yield "]"

    def nbytes(self) -> int:
        """Bytes held by the columns."""
        return self.paths.nbytes() + self.labels.nbytes + self.skips.codes.nbytes


def json_pieces(value: Any) -> Iterator[str]:
    """``json.dumps(value)`` in pieces, with any :class:`RowTable` inside written as its list of
    rows (never built as one list): ``"".join(json_pieces(v)) == json.dumps(plain v)``."""
    if isinstance(value, RowTable):
        yield from value.json_pieces()
    elif isinstance(value, dict) and all(isinstance(key, str) for key in value):
        yield "{"
        for number, (key, item) in enumerate(value.items()):
            yield (", " if number else "") + json.dumps(key) + ": "
            yield from json_pieces(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for number, item in enumerate(value):
            if number:
                yield ", "
            yield from json_pieces(item)
        yield "]"
    else:
        yield json.dumps(value)


__all__ = ["Codes", "CodesBuilder", "PackedStrings", "PackedStringsBuilder", "PackedTable", "RowTable", "json_pieces"]
