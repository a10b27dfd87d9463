"""List a labelled image set: class folders, a CSV/TSV of ``path,label``, or a file-name pattern.

A listing never opens an image. Every file that looks like an image becomes a
:class:`Candidate`; a candidate that already cannot be used (no label, outside
the dataset root, missing) carries its ``skip_reason`` so it is counted in the
feature file's ``skipped`` table instead of disappearing. Files that are not
images (by extension) and hidden/system files are listed as ``ignored``.
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from featurebench.data.storage import RemoteAccess, is_remote, list_objects, normalize_root, read_text, url_name
from featurebench.errors import FeaturebenchError
from featurebench.store.packed import Codes, CodesBuilder, PackedStrings, PackedStringsBuilder, PackedTable

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff",
     ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
TABLE_EXTENSIONS = frozenset({".csv", ".tsv", ".txt"})


@dataclass(frozen=True)
class Candidate:
    """One image file to extract: path relative to the dataset root (or absolute), its label."""

    path: str
    label: str | None
    skip_reason: str | None = None


class CandidateTable(PackedTable):
    """A listing's candidates held compactly (:mod:`featurebench.store.packed`): the paths in one
    blob, labels and skip reasons as int32 codes. Indexing and iteration give :class:`Candidate` objects."""

    __slots__ = ("labels", "skips")

    def __init__(self, paths: PackedStrings, labels: Codes, skips: Codes):
        self.paths = paths
        self.labels = labels
        self.skips = skips

    @classmethod
    def of(cls, candidates: Iterable[Candidate]) -> "CandidateTable":
        """The table of ``candidates`` (a table is returned as it is)."""
        if isinstance(candidates, CandidateTable):
            return candidates
        builder = CandidateTableBuilder()
        for candidate in candidates:
            builder.append(candidate)
        return builder.build()

    @classmethod
    def unlabelled(cls, paths: PackedStrings, skips: Codes) -> "CandidateTable":
        """Candidates without labels over existing columns (shared, not copied): what the decoder reads."""
        return cls(paths, Codes(np.full(len(paths), -1, dtype=np.int32), []), skips)

    def _item(self, index: int) -> Candidate:
        return Candidate(self.paths[index], self.labels[index], self.skips[index])

    def take(self, index: np.ndarray) -> "CandidateTable":
        """The candidates at positions ``index`` (an int array), in that order."""
        return CandidateTable(self.paths.take(index), self.labels.take(index), self.skips.take(index))

    def usable(self) -> np.ndarray:
        """True for each candidate not already skipped."""
        return self.skips.codes < 0


class CandidateTableBuilder:
    """Appends candidates one at a time (no list of them is built); :meth:`build` freezes the table."""

    def __init__(self) -> None:
        self._paths, self._labels, self._skips = PackedStringsBuilder(), CodesBuilder(), CodesBuilder()

    def append(self, candidate: Candidate) -> None:
        """Add one candidate."""
        self._paths.append(candidate.path)
        self._labels.append(candidate.label)
        self._skips.append(candidate.skip_reason)

    def __len__(self) -> int:
        return len(self._paths)

    def build(self) -> CandidateTable:
        """The candidates appended so far."""
        return CandidateTable(self._paths.build(), self._labels.build(), self._skips.build())


@dataclass
class DatasetListing:
    """What a source holds: candidates sorted by path, the class names, what was ignored.

    ``root`` is a local folder, or the URL of an object-storage prefix (no trailing slash).
    ``candidates`` may be given as any sequence of :class:`Candidate`; it is held as a
    :class:`CandidateTable`."""

    root: Path | str
    kind: str
    candidates: CandidateTable
    label_names: list[str]
    ignored: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.candidates = CandidateTable.of(self.candidates)

    def label_index(self, candidate: Candidate) -> int:
        """Index of the candidate's label in ``label_names``; -1 for a candidate without a
        label or already skipped (its label, e.g. of a CSV row outside the root, is not a class)."""
        if candidate.label is None or candidate.skip_reason:
            return -1
        return self.label_names.index(candidate.label)

    def label_indices(self) -> np.ndarray:
        """:meth:`label_index` of every candidate, as an int32 array."""
        position = {name: i for i, name in enumerate(self.label_names)}
        by_code = np.array([position.get(value, -1) for value in self.candidates.labels.values] + [-1], dtype=np.int32)
        indices = by_code[self.candidates.labels.codes]  # code -1 picks the trailing -1
        indices[~self.candidates.usable()] = -1
        return indices


#: Folder names that say which part of a dataset a folder is, not which dataset.
GENERIC_FOLDER_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing", "images",
                                  "imgs", "data", "dataset", "all"})


def default_dataset_name(root: str | os.PathLike) -> str:
    """The dataset's name from its folder: ``dogs-vs-cats/train`` gives ``dogs-vs-cats``, not ``train``
    (parents are used while the folder's name is generic, e.g. train/val/test/images/data)."""
    path = Path(root)
    while path.name.lower() in GENERIC_FOLDER_NAMES and path.parent.name:
        path = path.parent
    return path.name


def is_hidden_or_system(name: str) -> bool:
    """True for dot-files and OS clutter such as ``Thumbs.db``."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def _classify_file(name: str) -> str | None:
    """Return why a file is ignored, or ``None`` when it is an image candidate."""
    if is_hidden_or_system(name):
        return "hidden or system file"
    if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
        return "not an image file extension"
    return None


def _walk_files(top: Path, root: Path, ignored: list[tuple[str, str]]):
    """Yield every non-directory entry under ``top``, sorted.

    Hidden folders, links to folders (never followed: no loops) and folders that
    cannot be read are not entered; each is added to ``ignored`` with the reason.
    """
    def unreadable(exc: OSError) -> None:
        ignored.append((_relative(Path(exc.filename), root), f"folder not readable ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable):
        entered = []
        for name in sorted(dirnames):
            path = Path(dirpath) / name
            if name.startswith("."):
                ignored.append((_relative(path, root), "hidden folder (not searched)"))
            elif path.is_symlink():
                ignored.append((_relative(path, root), LINK_NOT_FOLLOWED))
            else:
                entered.append(name)
        dirnames[:] = entered
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


LINK_NOT_FOLLOWED = "link to a folder (not followed)"


def list_class_folders(root: Path, follow_class_links: bool = False) -> DatasetListing:
    """The classic layout: one sub-folder per class, images anywhere below it.

    A class folder that is a symbolic link (to ``.``, to a folder outside the root) is
    listed as ignored and not followed, like links inside class folders, unless
    ``follow_class_links``: followed, it would give rows twice under a bogus class or
    turn outside images into a class.
    """
    entries = sorted(root.iterdir())
    ignored: list[tuple[str, str]] = []
    classes = []
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith("."):
            ignored.append((entry.name, "not inside a class folder"))
        elif entry.is_symlink() and not follow_class_links:
            ignored.append((entry.name, LINK_NOT_FOLLOWED + "; pass --follow-class-links to use it as a class"))
        else:
            classes.append(entry.name)
    if not classes:
        links = sum(1 for entry in entries if entry.is_symlink() and entry.is_dir())
        hint = f" ({links} class folder link(s) were not followed: pass --follow-class-links)" if links else ""
        raise FeaturebenchError(
            f"{root} has no class sub-folders{hint}. Put each class's images in its own folder "
            "(ROOT/cat/*.jpg, ROOT/dog/*.jpg), or for labels in file names pass "
            "--label-pattern '^(cat|dog)\\.'"
        )
    return _class_listing(root, classes, lambda cls: (_relative(path, root) for path in
                                                     _walk_files(root / cls, root, ignored)), ignored)


def _class_listing(root: Path | str, classes: list[str], files_of: Callable[[str], Iterable[str]],
                   ignored: list[tuple[str, str]]) -> DatasetListing:
    """Candidates of each class from ``files_of(class)`` (paths relative to the root, in walk order)."""
    candidates = CandidateTableBuilder()
    warnings: list[str] = []
    used: list[str] = []
    for cls in classes:
        found = 0
        for rel in files_of(cls):
            reason = _classify_file(posixpath.basename(rel))
            if reason:
                ignored.append((rel, reason))
            else:
                candidates.append(Candidate(rel, cls))
                found += 1
        if found:
            used.append(cls)
        else:
            warnings.append(f"class folder {cls!r} has no images; it is left out")
    return DatasetListing(root, "class-folders", candidates.build(), used, ignored, warnings)


def list_by_pattern(root: Path, pattern: str) -> DatasetListing:
    """Images anywhere under ``root``; the label is taken from the file name by ``pattern``.

    The label is the named group ``label`` if present, else group 1, else the whole match.
    """
    ignored: list[tuple[str, str]] = []
    return _pattern_listing(root, (_relative(path, root) for path in _walk_files(root, root, ignored)),
                            pattern, ignored)


def _pattern_listing(root: Path | str, files: Iterable[str], pattern: str,
                     ignored: list[tuple[str, str]]) -> DatasetListing:
    """Candidates from ``files`` (relative paths, in walk order) labelled by ``pattern`` on their names."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise FeaturebenchError(f"--label-pattern {pattern!r} is not a valid regex: {exc}") from None
    candidates = CandidateTableBuilder()
    for rel in files:
        name = posixpath.basename(rel)
        reason = _classify_file(name)
        if reason:
            ignored.append((rel, reason))
            continue
        match = regex.search(name)
        if match is None:
            candidates.append(Candidate(rel, None, f"file name does not match --label-pattern {pattern!r}"))
            continue
        if "label" in regex.groupindex:
            label = match.group("label")
        else:
            label = match.group(1) if regex.groups else match.group(0)
        candidates.append(Candidate(rel, label))
    table = candidates.build()
    return DatasetListing(root, "label-pattern", table, sorted(table.labels.values), ignored)


def _walk_order(rel: str) -> tuple:
    """Sort key giving ``os.walk``'s top-down order (sorted files of a folder, then each sorted
    sub-folder in turn), so a bucket lists its objects in the order the same folder on disk does."""
    parts = rel.split("/")
    return (*((1, part) for part in parts[:-1]), (0, parts[-1]))


def _visible(files: Iterable[str], ignored: list[tuple[str, str]], prefix: str = "") -> list[str]:
    """``files`` in walk order, without those below a hidden folder (each such folder ignored once)."""
    kept, hidden = [], {}
    for rel in files:
        parts = rel.split("/")
        folder = next((i for i, part in enumerate(parts[:-1]) if part.startswith(".")), None)
        if folder is None:
            kept.append(rel)
        else:
            hidden.setdefault(prefix + "/".join(parts[:folder + 1]), None)
    ignored.extend((name, "hidden folder (not searched)") for name in sorted(hidden))
    return sorted(kept, key=_walk_order)


def list_remote_class_folders(url: str, access: RemoteAccess = RemoteAccess()) -> DatasetListing:
    """Class folders in object storage: ``URL/<class>/...`` prefixes, as :func:`list_class_folders`."""
    ignored: list[tuple[str, str]] = []
    by_class: dict[str, list[str]] = {}
    for rel in list_objects(url, access):
        top, _, rest = rel.partition("/")
        if not rest or top.startswith("."):
            if (top, "not inside a class folder") not in ignored:
                ignored.append((top, "not inside a class folder"))
        else:
            by_class.setdefault(top, []).append(rest)
    if not by_class:
        raise FeaturebenchError(
            f"{url} has no class prefixes with objects. Put each class's images under its own prefix "
            f"({url}/cat/1.jpg, {url}/dog/2.jpg), pass --label-pattern for labels in file names, or give a "
            "CSV of url,label rows")
    classes = sorted(by_class)
    return _class_listing(url, classes, lambda cls: [f"{cls}/{rel}" for rel in
                                                     _visible(by_class[cls], ignored, f"{cls}/")], ignored)


def _read_table_rows(table: Path | str, access: RemoteAccess = RemoteAccess()) -> list[list[str]]:
    delimiter = "\t" if _suffix(str(table)) == ".tsv" else None
    if is_remote(str(table)):
        text = read_text(str(table), access)
    else:
        with open(table, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if any(row)]
    if rows and rows[0] and rows[0][0].strip().lower() in {"path", "file", "filename", "image", "url"}:
        rows = rows[1:]
    return rows


def _suffix(name: str) -> str:
    """The lower-case extension of a file name or URL (query and fragment left out)."""
    return posixpath.splitext(url_name(name) if is_remote(name) else name)[1].lower()


def _file_name(raw: str) -> str:
    return url_name(raw) if is_remote(raw) else Path(raw).name


def list_table(table: Path | str, root: Path | str | None = None, allow_outside_root: bool = False,
               access: RemoteAccess = RemoteAccess()) -> DatasetListing:
    """A CSV/TSV of ``path,label`` rows; relative paths are taken from ``root``.

    ``root`` defaults to the table's folder. Paths that resolve outside the root are
    skipped unless ``allow_outside_root``. The table and the root may be object-storage
    URLs, and a row may be a full URL (``s3://``, ``gs://``, ``https://``), read as it is.
    """
    remote_table = is_remote(str(table))
    table_name = url_name(str(table)) if remote_table else Path(table).name
    default_root = str(table).rsplit("/", 1)[0] if remote_table else Path(table).parent
    root = normalize_root(root or default_root)
    candidates: list[Candidate] = []
    ignored: list[tuple[str, str]] = []
    for number, row in enumerate(_read_table_rows(table, access), start=1):
        if len(row) < 2:
            raise FeaturebenchError(
                f"{table}: row {number} has {len(row)} column(s); each row needs 'path,label'"
            )
        raw, label = row[0].strip(), row[1].strip()
        name = _file_name(raw)
        if is_hidden_or_system(name) or _suffix(raw) not in IMAGE_EXTENSIONS:
            ignored.append((raw, _classify_file(name) or "not an image"))
            continue
        empty_label = None if label else f"{table_name} row {number} has an empty label"
        candidates.append(_table_candidate(raw, label or None, empty_label, root, allow_outside_root))
    candidates.sort(key=lambda c: c.path)
    labels = sorted({c.label for c in candidates if c.label is not None and c.skip_reason is None})
    return DatasetListing(root, "table", candidates, labels, ignored)


_OUTSIDE_ROOT = "path is outside the dataset root (pass --allow-outside-root to allow)"


def _table_candidate(raw: str, label: str | None, empty_label: str | None, root: Path | str,
                     allow_outside_root: bool) -> Candidate:
    """The candidate of one table row: a URL as it is, a path relative to the (local or remote) root."""
    if is_remote(raw):
        return Candidate(raw, label, empty_label)
    if is_remote(root):
        rel = posixpath.normpath(raw)
        if rel == ".." or rel.startswith(("../", "/")):
            return Candidate(raw, label, "path is outside the dataset root (list it as a full URL instead)")
        return Candidate(rel, label, empty_label)
    normalized = Path(os.path.normpath(root / raw))
    resolved = normalized.resolve()
    if resolved == root or root in resolved.parents:
        return Candidate(Path(os.path.relpath(normalized, root)).as_posix(), label, empty_label)
    if allow_outside_root:
        return Candidate(str(resolved), label, empty_label)
    return Candidate(raw, label, _OUTSIDE_ROOT)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_usable(listing: DatasetListing, path: Path, label_pattern: str | None) -> None:
    """Refuse a source in which every image is already skipped (e.g. a --label-pattern that matches nothing)."""
    if listing.candidates.usable().any():
        return
    first = listing.candidates[0]
    hint = (" The pattern is searched in each file name (not its folders); the label is group 'label' or "
            "group 1, e.g. '^(cat|dog)\\.' for cat.1.jpg." if label_pattern else "")
    raise FeaturebenchError(
        f"No usable images in {path}: all {len(listing.candidates)} image file(s) would be skipped, "
        f"e.g. {first.path!r}: {first.skip_reason}.{hint}"
    )


def list_source(source: str | os.PathLike, label_pattern: str | None = None,
                root: str | os.PathLike | None = None, allow_outside_root: bool = False,
                follow_class_links: bool = False, access: RemoteAccess = RemoteAccess()) -> DatasetListing:
    """Detect the source type and list it.

    ``source`` is a class-folder directory, a ``.csv``/``.tsv``/``.txt`` table, or a
    directory plus ``label_pattern``; each may also be an object-storage URL
    (``s3://bucket/prefix``, ``gs://...``; a table also ``https://``), read with ``access``.
    ``follow_class_links``: see :func:`list_class_folders`.
    """
    if is_remote(str(source)):
        return _checked(_list_remote(str(source), label_pattern, root, allow_outside_root, access),
                        str(source), label_pattern)
    path = Path(source).expanduser()
    if not path.exists():
        raise FeaturebenchError(f"Source {path} does not exist; pass a folder of class folders or a CSV of path,label")
    if path.is_file():
        if path.suffix.lower() not in TABLE_EXTENSIONS:
            raise FeaturebenchError(f"Source {path} is a file but not a .csv/.tsv/.txt table of path,label")
        table_root = None if not root else root if is_remote(str(root)) else Path(root).expanduser()
        listing = list_table(path, table_root, allow_outside_root, access)
    elif label_pattern:
        listing = list_by_pattern(path.resolve(), label_pattern)
    else:
        listing = list_class_folders(path.resolve(), follow_class_links)
    return _checked(listing, path, label_pattern)


def _list_remote(url: str, label_pattern: str | None, root: str | os.PathLike | None, allow_outside_root: bool,
                 access: RemoteAccess) -> DatasetListing:
    """List an object-storage source: a table object, or a prefix of class folders / pattern-labelled files."""
    if not url.endswith("/") and _suffix(url) in TABLE_EXTENSIONS:
        return list_table(url, root, allow_outside_root, access)
    prefix = normalize_root(url)
    if label_pattern:
        ignored: list[tuple[str, str]] = []
        return _pattern_listing(prefix, _visible(list_objects(prefix, access), ignored), label_pattern, ignored)
    return list_remote_class_folders(prefix, access)


def _checked(listing: DatasetListing, path: Path | str, label_pattern: str | None) -> DatasetListing:
    """Refuse a listing without usable images; add the warnings every source gets."""
    if not listing.candidates:
        raise FeaturebenchError(
            f"No images found in {path} ({len(listing.ignored)} files ignored, e.g. non-image extensions). "
            f"Supported extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    _require_usable(listing, path, label_pattern)
    undecodable = sum(1 for path in listing.candidates.paths if not _is_utf8(path))
    if undecodable:
        listing.warnings.append(
            f"{undecodable} file name(s) are not valid UTF-8; the feature file stores them with \\xNN "
            "escapes, so rename them (e.g. with convmv) if you need exact paths"
        )
    if len(listing.label_names) < 2:
        listing.warnings.append(
            f"only {len(listing.label_names)} class(es) found: features are fine, but a classifier needs 2 or more"
        )
    return listing
