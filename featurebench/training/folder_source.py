"""Stream training images straight from an image folder / CSV / pattern source.

The same listing, seeded shuffle and index split as ``extract`` and ``build-images``;
images are decoded and resized on the fly by the threaded decode pipeline, one
batch at a time. Files that fail to decode are dropped from their batch and counted
(``skipped``); the split is over the listed candidates, so use ``build-images``
when the test set must match a feature file's row for row on a set with broken files.
Batch ``k`` holds the decodable images among candidates ``[k*B, (k+1)*B)``, so every
epoch has the same, known number of batches.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import numpy as np

from featurebench.data.pipeline import SourceOptions, iter_decoded
from featurebench.data.sources import Candidate, default_dataset_name
from featurebench.errors import FeaturebenchError
from featurebench.training.image_file import ImageFile, is_image_file
from featurebench.training.splits import check_split, split_bounds


class FolderSource:
    """A labelled image source read through the decode pipeline at ``size`` x ``size``
    (listed and decoded as ``options`` say)."""

    kind = "folder"

    def __init__(self, source: str, size: int, resize: str = "center-crop", seed: int = 42,
                 train_fraction: float = 0.75, val_fraction: float = 0.1, options: SourceOptions | None = None,
                 dataset_name: str | None = None):
        from featurebench.extract import shuffled

        options = options or SourceOptions()
        self.listing = options.list_images(source)
        self.label_names = list(self.listing.label_names)
        rows = [row for row in shuffled(self.listing, seed) if row[2] is None]
        self._paths = [row[0] for row in rows]
        self._labels = np.array([row[1] for row in rows], dtype=np.int64)
        self.n_listed_skipped = len(self.listing.candidates) - len(rows)
        self.bounds = split_bounds(len(rows), train_fraction, val_fraction)
        self.image_size = (size, size)
        self.decode = options.decode_options((size, size), resize)
        self.workers = options.workers
        self.dataset = dataset_name or default_dataset_name(self.listing.root)
        self.skipped: dict[str, str] = {}
        self._settings = {"source": str(self.listing.root), "source_kind": self.listing.kind, "resize": resize,
                          "seed": seed, "shuffle": f"numpy default_rng({seed}).permutation",
                          "train_fraction": train_fraction, "val_fraction": val_fraction,
                          "label_pattern": options.label_pattern or ""}

    def count(self, split: str) -> int:
        lo, hi = self.bounds[check_split(split)]
        return hi - lo

    def labels(self, split: str) -> np.ndarray:
        lo, hi = self.bounds[check_split(split)]
        return self._labels[lo:hi]

    def iter_split(self, split: str, batch_size: int,
                   order_seed: int | tuple | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images uint8, labels)`` batches of ``split`` (stored order or seeded permutation)."""
        lo, hi = self.bounds[check_split(split)]
        index = np.arange(lo, hi)
        if order_seed is not None:
            index = np.random.default_rng(order_seed).permutation(index)
        items = [Candidate(self._paths[i], None) for i in index]
        decoded = iter_decoded(items, self.listing.root, self.decode, 0, self.workers)
        # One batch per batch_size candidates (fewer images when some fail to decode), so the number
        # of batches per epoch is known in advance, as for an image file.
        for start in range(0, len(items), batch_size):
            chunk = list(itertools.islice(decoded, batch_size))
            rows = [item for item in chunk if item.image is not None]
            for item in chunk:
                if item.image is None:
                    self.skipped[item.candidate.path] = str(item.skip)
            if not rows:
                raise FeaturebenchError(
                    f"None of the {len(chunk)} images from position {start} of the {split} split could be decoded "
                    f"(e.g. {chunk[0].candidate.path}: {chunk[0].skip}); clean the source, or run "
                    "`featurebench build-images` once, which skips unusable files."
                )
            yield np.stack([row.image for row in rows]), self._labels[index[[row.index for row in rows]]]

    def split_paths(self, split: str) -> list[str]:
        """Paths (relative to the source root) of the split's images that decoded, in stored order:
        after a pass over the split, one per row that :meth:`iter_split` yielded."""
        lo, hi = self.bounds[check_split(split)]
        return [p for p in self._paths[lo:hi] if p not in self.skipped]

    def identity(self) -> dict:
        """The source's identity (:func:`featurebench.store.identity.training_identity`): root, rows, labels, seed."""
        from featurebench.store.identity import training_identity

        return training_identity(self.listing.root, self._paths, self._labels.tolist(), self.label_names,
                                 self._settings["seed"], self.kind)

    def describe(self) -> dict:
        return {**self._settings, "dataset": self.dataset, "image_size": list(self.image_size),
                "n_images": len(self._paths), **{f"n_{k}": self.count(k) for k in self.bounds},
                "n_skipped": self.n_listed_skipped + len(self.skipped),
                "n_ignored": len(self.listing.ignored)}


def open_source(source: str, size: int, **folder_options) -> ImageFile | FolderSource:
    """A ``build-images`` HDF5 file, or any ``extract``-style source streamed from disk.

    For an HDF5 file the stored size, split and seed are used and ``folder_options``
    (resize, seed, fractions, the source ``options`` ...) are ignored.
    """
    if is_image_file(source):
        return ImageFile(source)
    if Path(source).suffix.lower() in (".h5", ".hdf5"):
        raise FeaturebenchError(f"{source} is not a raw-image file from `featurebench build-images` "
                                "(feature files from `extract` hold features, not images).")
    return FolderSource(source, size, **folder_options)


__all__ = ["FolderSource", "open_source"]
