"""The resumable journal of an extraction in progress: ``OUT.h5.partial/``.

Each flush writes one shard (``.npz``: features, candidate indices of its rows,
a content digest per row, skipped candidates with reasons) to a temporary name
and renames it into place,
so a shard is either whole or absent, whatever kills the process (even SIGKILL).
``manifest.json`` fixes the candidate order and the settings that determine the
rows; a restart with the same settings continues after the last shard, and one
with different settings is refused with the differences named. The final HDF5
file is assembled from the shards only when every candidate is done.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.store.format import PARTIAL_SUFFIX
from featurebench.store.packed import RowTable, json_pieces

_SHARD = re.compile(r"^rows-(\d{9})-(\d{9})\.npz$")


def partial_dir_for(output: Path) -> Path:
    """The journal folder belonging to feature file ``output``."""
    return output.with_name(output.name + PARTIAL_SUFFIX)


def saved_candidates(output: Path) -> int:
    """How many candidates the committed shards of ``output``'s journal cover (0: no journal)."""
    directory = partial_dir_for(output)
    try:
        ranges = shard_ranges(directory)
    except OSError:
        return 0
    return ranges[-1][1] if ranges else 0


def leftover_temporaries(folder: Path, prefix: str) -> list[Path]:
    """Entries of ``folder`` whose name starts with ``prefix`` + ``.tmp-`` (temporary files of a
    writer). Names are compared as text, never as glob patterns: an output named
    ``feat[12].h5`` must not match ``feat1.h5``'s temporary file."""
    try:
        return [entry for entry in folder.iterdir() if entry.name.startswith(prefix + ".tmp-")]
    except FileNotFoundError:
        return []


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _write_json(handle, value: Any) -> None:
    """``json.dumps(value)`` into ``handle``, in pieces (a manifest's rows are never one string)."""
    for piece in json_pieces(value):
        handle.write(piece.encode("utf-8"))


def _compact(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with its candidate rows held as a :class:`RowTable`."""
    if "candidates" not in manifest:
        return manifest
    return {**manifest, "candidates": RowTable.of(manifest["candidates"])}


def shard_ranges(directory: Path) -> list[tuple[int, int, Path]]:
    """Committed shards as ``(start, end, path)``, contiguous from candidate 0."""
    ranges = []
    for path in directory.iterdir():
        match = _SHARD.match(path.name)
        if match:
            ranges.append((int(match.group(1)), int(match.group(2)), path))
    ranges.sort()
    contiguous, expected = [], 0
    for start, end, path in ranges:
        if start != expected:
            break
        contiguous.append((start, end, path))
        expected = end
    return contiguous


def journal_progress(output: Path) -> tuple[int, int] | None:
    """(done, total) candidates of an unfinished extraction into ``output``; None if there is none.

    Safe to call while another process writes (or finishes and deletes) the journal:
    a journal that vanishes or is not readable yet reads as "none".
    """
    directory = partial_dir_for(output)
    try:
        total = len(json.loads((directory / "manifest.json").read_text(encoding="utf-8"))["candidates"])
        ranges = shard_ranges(directory)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (ranges[-1][1] if ranges else 0), total


@dataclass
class Shard:
    """One flushed block: rows ``row_index`` (candidate positions) and skips, up to ``end``."""

    start: int
    end: int
    features: np.ndarray | None
    row_index: np.ndarray
    skip_index: np.ndarray
    skip_reason: np.ndarray
    #: (rows, 16) uint8 content digests of the rows' files; None in journals written before digests.
    row_digest: np.ndarray | None = None


class Journal:
    """A locked journal folder. Use :meth:`open` and close with :meth:`release` or ``with``."""

    def __init__(self, directory: Path, manifest: dict[str, Any], lock_handle):
        self.directory = directory
        self.manifest = manifest
        self._lock_handle = lock_handle
        #: True when :meth:`open` started this journal (False: it resumes an existing one).
        self.created = False

    # -- opening --------------------------------------------------------------
    @classmethod
    def open(cls, output: Path, manifest: dict[str, Any], force: bool = False) -> "Journal":
        """Create the journal for ``output`` or reopen a matching one to resume.

        ``manifest`` must hold ``fingerprint``, ``settings`` and ``candidates`` (``[path, label, skip]``
        rows, held as a :class:`~featurebench.store.packed.RowTable` from here on). An existing journal
        with another fingerprint is refused; ``force`` discards any existing journal
        (after taking the lock, so never one that a running process is writing).
        Leftover temporary files of a killed writer are removed.
        """
        directory = partial_dir_for(output)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Lock first: --force must never delete the journal of a process still writing it.
            lock_handle = cls._lock(directory)
        except OSError as exc:
            raise FeaturebenchError(
                f"Cannot create the journal folder {directory} ({exc.strerror or exc}); write the output to a "
                "folder you can write to (-o), or free space there.") from None
        created = False
        try:
            # Holding the lock, any temporary file here is a leftover of a killed writer.
            for stale in directory.iterdir():
                if stale.name.startswith(".") and ".tmp-" in stale.name:
                    stale.unlink(missing_ok=True)
            manifest_path = directory / "manifest.json"
            if force:
                cls._clear(directory)
            if manifest_path.exists():
                try:
                    existing = json.loads(manifest_path.read_text(encoding="utf-8"))
                except ValueError:
                    raise FeaturebenchError(f"{manifest_path} is damaged; pass --force to discard the partial "
                                            f"extraction in {directory} and start over.") from None
                if existing.get("fingerprint") != manifest["fingerprint"]:
                    raise FeaturebenchError(cls._mismatch_message(directory, existing, manifest))
                manifest = _compact(existing)
            else:
                created = True
                manifest = _compact(manifest)
                _atomic_write(manifest_path, lambda h: _write_json(h, manifest))
        except OSError as exc:
            lock_handle.close()
            if created:
                shutil.rmtree(directory, ignore_errors=True)
            raise FeaturebenchError(
                f"Cannot write {directory / 'manifest.json'} ({exc.strerror or exc}); free disk space (or fix the "
                "error) and run the same command again.") from None
        except BaseException:
            lock_handle.close()
            raise
        journal = cls(directory, manifest, lock_handle)
        journal.created = created
        return journal

    @staticmethod
    def _clear(directory: Path) -> None:
        """Delete everything in the journal folder but the lock file (held by the caller)."""
        for entry in directory.iterdir():
            if entry.name == "lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)

    @staticmethod
    def _lock(directory: Path):
        handle = open(directory / "lock", "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise FeaturebenchError(
                f"Another featurebench process is writing {directory}; wait for it to finish "
                "or stop it first."
            ) from None
        return handle

    @staticmethod
    def _mismatch_message(directory: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
        old_settings, new_settings = old.get("settings", {}), new.get("settings", {})
        changed = [f"{key}: {old_settings.get(key)!r} -> {new_settings.get(key)!r}"
                   for key in sorted(set(old_settings) | set(new_settings))
                   if old_settings.get(key) != new_settings.get(key)]
        if old.get("candidates") != new.get("candidates"):
            changed.append("the list of images in the source changed")
        return (
            f"{directory} holds a partial extraction started with different settings "
            f"({'; '.join(changed) or 'unknown difference'}). Re-run the original command to resume it, "
            "or pass --force to discard it and start over."
        )

    def release(self) -> None:
        """Drop the lock (the journal stays on disk for a later resume)."""
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- progress ---------------------------------------------------------------
    def next_index(self) -> int:
        """Position of the first candidate not yet covered by a shard."""
        ranges = shard_ranges(self.directory)
        return ranges[-1][1] if ranges else 0

    def commit(self, start: int, end: int, features: np.ndarray, row_index: list[int],
               skipped: list[tuple[int, str]], row_digest: list[bytes | None] | None = None) -> None:
        """Write candidates ``[start, end)`` as one shard, atomically.

        ``row_digest``: the content digest of each row's file (see ``content_digest``).
        A write error (disk full, I/O error) raises :class:`FeaturebenchError`; the
        shards already committed stay valid, so the same command resumes after them.
        """
        path = self.directory / f"rows-{start:09d}-{end:09d}.npz"
        arrays = {
            "features": np.asarray(features, dtype=np.float32),
            "row_index": np.asarray(row_index, dtype=np.int64),
            "skip_index": np.asarray([i for i, _ in skipped], dtype=np.int64),
            "skip_reason": np.asarray([r for _, r in skipped], dtype=str),
        }
        if row_digest is not None and all(d is not None for d in row_digest):
            digests = np.frombuffer(b"".join(row_digest), dtype=np.uint8)
            arrays["row_digest"] = digests.reshape(len(row_digest), -1) if row_digest else digests.reshape(0, 16)
        try:
            _atomic_write(path, lambda h: np.savez(h, **arrays))
        except OSError as exc:
            for leftover in leftover_temporaries(self.directory, f".{path.name}"):
                leftover.unlink(missing_ok=True)
            raise FeaturebenchError(
                f"Could not write {path} ({exc.strerror or exc}). The first {start} images are saved in "
                f"{self.directory}; free disk space (or fix the error) and re-run the same command to resume."
            ) from exc

    def shards(self, features: bool = True) -> Iterator[Shard]:
        """Yield the committed shards in candidate order, one at a time (``features=False``:
        without reading the features, whose field is then None)."""
        for start, end, path in shard_ranges(self.directory):
            try:
                with np.load(path, allow_pickle=False) as data:
                    shard = Shard(start, end, data["features"] if features else None, data["row_index"],
                                  data["skip_index"], data["skip_reason"],
                                  data["row_digest"] if "row_digest" in data.files else None)
            except Exception as exc:  # noqa: BLE001 - zip, npy and key errors alike: the shard is damaged
                raise FeaturebenchError(
                    f"Journal shard {path} is damaged ({type(exc).__name__}: {exc}); delete it and every later "
                    f"rows-*.npz in {self.directory} (their images are computed again), then run the same command; "
                    "or pass --force to start over.") from None
            yield shard

    def remove(self) -> None:
        """Delete the journal folder (after the final file is in place), still holding the lock."""
        shutil.rmtree(self.directory, ignore_errors=True)
        self.release()
