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
import re
from dataclasses import dataclass, field
from pathlib import Path

from featurebench.errors import FeaturebenchError

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


@dataclass
class DatasetListing:
    """What a source holds: candidates sorted by path, the class names, what was ignored."""

    root: Path
    kind: str
    candidates: list[Candidate]
    label_names: list[str]
    ignored: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def label_index(self, candidate: Candidate) -> int:
        """Index of the candidate's label in ``label_names``; -1 for a candidate without a
        label or already skipped (its label, e.g. of a CSV row outside the root, is not a class)."""
        if candidate.label is None or candidate.skip_reason:
            return -1
        return self.label_names.index(candidate.label)


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
    candidates: list[Candidate] = []
    warnings: list[str] = []
    used: list[str] = []
    for cls in classes:
        found = 0
        for path in _walk_files(root / cls, root, ignored):
            reason = _classify_file(path.name)
            if reason:
                ignored.append((_relative(path, root), reason))
            else:
                candidates.append(Candidate(_relative(path, root), cls))
                found += 1
        if found:
            used.append(cls)
        else:
            warnings.append(f"class folder {cls!r} has no images; it is left out")
    return DatasetListing(root, "class-folders", candidates, used, ignored, warnings)


def list_by_pattern(root: Path, pattern: str) -> DatasetListing:
    """Images anywhere under ``root``; the label is taken from the file name by ``pattern``.

    The label is the named group ``label`` if present, else group 1, else the whole match.
    """
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise FeaturebenchError(f"--label-pattern {pattern!r} is not a valid regex: {exc}") from None
    candidates: list[Candidate] = []
    ignored: list[tuple[str, str]] = []
    for path in _walk_files(root, root, ignored):
        reason = _classify_file(path.name)
        rel = _relative(path, root)
        if reason:
            ignored.append((rel, reason))
            continue
        match = regex.search(path.name)
        if match is None:
            candidates.append(Candidate(rel, None, f"file name does not match --label-pattern {pattern!r}"))
            continue
        if "label" in regex.groupindex:
            label = match.group("label")
        else:
            label = match.group(1) if regex.groups else match.group(0)
        candidates.append(Candidate(rel, label))
    labels = sorted({c.label for c in candidates if c.label is not None})
    return DatasetListing(root, "label-pattern", candidates, labels, ignored)


def _read_table_rows(table: Path) -> list[list[str]]:
    delimiter = "\t" if table.suffix.lower() == ".tsv" else None
    with open(table, newline="", encoding="utf-8-sig") as handle:
        text = handle.read()
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if any(row)]
    if rows and rows[0] and rows[0][0].strip().lower() in {"path", "file", "filename", "image"}:
        rows = rows[1:]
    return rows


def list_table(table: Path, root: Path | None = None, allow_outside_root: bool = False) -> DatasetListing:
    """A CSV/TSV of ``path,label`` rows; relative paths are taken from ``root``.

    ``root`` defaults to the table's folder. Paths that resolve outside the root are
    skipped unless ``allow_outside_root``.
    """
    root = (root or table.parent).resolve()
    candidates: list[Candidate] = []
    ignored: list[tuple[str, str]] = []
    for number, row in enumerate(_read_table_rows(table), start=1):
        if len(row) < 2:
            raise FeaturebenchError(
                f"{table}: row {number} has {len(row)} column(s); each row needs 'path,label'"
            )
        raw, label = row[0].strip(), row[1].strip()
        if is_hidden_or_system(Path(raw).name) or Path(raw).suffix.lower() not in IMAGE_EXTENSIONS:
            ignored.append((raw, _classify_file(Path(raw).name) or "not an image"))
            continue
        normalized = Path(os.path.normpath(root / raw))
        resolved = normalized.resolve()
        empty_label = None if label else f"{table.name} row {number} has an empty label"
        if resolved == root or root in resolved.parents:
            rel = Path(os.path.relpath(normalized, root)).as_posix()
            candidates.append(Candidate(rel, label or None, empty_label))
        elif allow_outside_root:
            candidates.append(Candidate(str(resolved), label or None, empty_label))
        else:
            candidates.append(Candidate(raw, label or None,
                                        "path is outside the dataset root (pass --allow-outside-root to allow)"))
    candidates.sort(key=lambda c: c.path)
    labels = sorted({c.label for c in candidates if c.label is not None and c.skip_reason is None})
    return DatasetListing(root, "table", candidates, labels, ignored)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_usable(listing: DatasetListing, path: Path, label_pattern: str | None) -> None:
    """Refuse a source in which every image is already skipped (e.g. a --label-pattern that matches nothing)."""
    if any(c.skip_reason is None for c in listing.candidates):
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
                follow_class_links: bool = False) -> DatasetListing:
    """Detect the source type and list it.

    ``source`` is a class-folder directory, a ``.csv``/``.tsv``/``.txt`` table, or a
    directory plus ``label_pattern``. ``follow_class_links``: see :func:`list_class_folders`.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise FeaturebenchError(f"Source {path} does not exist; pass a folder of class folders or a CSV of path,label")
    if path.is_file():
        if path.suffix.lower() not in TABLE_EXTENSIONS:
            raise FeaturebenchError(f"Source {path} is a file but not a .csv/.tsv/.txt table of path,label")
        listing = list_table(path, Path(root).expanduser() if root else None, allow_outside_root)
    elif label_pattern:
        listing = list_by_pattern(path.resolve(), label_pattern)
    else:
        listing = list_class_folders(path.resolve(), follow_class_links)
    if not listing.candidates:
        raise FeaturebenchError(
            f"No images found in {path} ({len(listing.ignored)} files ignored, e.g. non-image extensions). "
            f"Supported extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    _require_usable(listing, path, label_pattern)
    undecodable = sum(1 for c in listing.candidates if not _is_utf8(c.path))
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
