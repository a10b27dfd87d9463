"""The raw-image HDF5 dataset: ``featurebench build-images`` writes it, training streams from it.

Layout (plain h5py can read it):

- ``images`` (N, H, W, 3) **uint8** (the classic files stored float64: 8x larger), one chunk per image;
- ``labels`` (N,) int32, ``label_names`` (C,) and ``paths`` (N,) UTF-8;
- ``split`` (N,) uint8 codes into attr ``split_names`` (``train,val,test``): rows are in the
  seeded shuffled order and the split is by index (see :mod:`featurebench.training.splits`);
- ``skipped/path``, ``skipped/reason``: every image that could not be used, and why;
- attrs: format, sizes, resize mode, seed, fractions, counts, source, ``complete``.

Writing streams batch by batch into a ``.partial`` file that is renamed when complete;
reading (:class:`ImageFile`) loads one batch at a time, so memory stays flat.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np

from featurebench import __version__
from featurebench.data.pipeline import SourceOptions, iter_batches, iter_decoded
from featurebench.data.resize import RESIZE_MODES, check_train_size
from featurebench.data.sources import Candidate, default_dataset_name
from featurebench.errors import FeaturebenchError
from featurebench.outputs import check_output_file
from featurebench.training.splits import SPLITS, check_split, split_bounds

FORMAT = "featurebench-images"
FORMAT_VERSION = 1


@dataclass
class BuildImagesOptions(SourceOptions):
    """``featurebench build-images`` settings; the CLI flags map one to one (source flags: SourceOptions)."""

    source: str
    output: str
    size: int = 224
    resize: str = "center-crop"
    seed: int = 42
    train_fraction: float = 0.75
    val_fraction: float = 0.1
    batch_rows: int = 64
    compression: str | None = None
    force: bool = False
    dataset_name: str | None = None
    command: str = field(default_factory=lambda: " ".join(sys.argv))


@dataclass
class BuildImagesSummary:
    output: Path
    n_images: int
    n_skipped: int
    n_ignored: int
    counts: dict[str, int]
    seconds: float
    file_bytes: int
    skipped_reasons: dict[str, int]
    warnings: list[str]


def _check(opts: BuildImagesOptions, output: Path) -> None:
    if opts.resize not in RESIZE_MODES:
        raise FeaturebenchError(f"--resize {opts.resize!r}: choose one of {', '.join(RESIZE_MODES)}")
    check_train_size(opts.size, "--size")
    if not 0.0 < opts.train_fraction < 1.0 or not 0.0 <= opts.val_fraction < opts.train_fraction:
        raise FeaturebenchError("need 0 < --train-fraction < 1 and 0 <= --val-fraction < --train-fraction")
    if opts.compression not in (None, "gzip", "lzf"):
        raise FeaturebenchError(f"--compression {opts.compression!r}: gzip or lzf")
    check_output_file(output, "-o", opts.force, len(".partial"), example="images.h5")


def build_images(opts: BuildImagesOptions, progress: Callable[[int, int], None] | None = None) -> BuildImagesSummary:
    """List ``opts.source``, shuffle once with the seed, decode + resize every image and stream it
    into a uint8 HDF5 file with labels and the stored split. ``progress(done, total)`` per batch."""
    from featurebench.extract import shuffled

    output = Path(opts.output).expanduser().resolve()
    _check(opts, output)
    listing = opts.list_images(opts.source)
    order = shuffled(listing, opts.seed)
    items = [Candidate(path, None, skip) for path, _, skip in order]
    decode = opts.decode_options((opts.size, opts.size), opts.resize)
    partial = output.with_name(output.name + ".partial")
    started = time.perf_counter()
    skipped: list[tuple[str, str]] = []
    try:
        with h5py.File(partial, "w") as h5:
            shape = (opts.size, opts.size, 3)
            images = h5.create_dataset("images", (0, *shape), np.uint8, maxshape=(None, *shape),
                                       chunks=(1, *shape), compression=opts.compression)
            labels = h5.create_dataset("labels", (0,), np.int32, maxshape=(None,), chunks=(4096,))
            paths = h5.create_dataset("paths", (0,), h5py.string_dtype(), maxshape=(None,), chunks=(4096,))
            n = 0
            for batch in iter_batches(iter_decoded(items, listing.root, decode, 0, opts.workers), opts.batch_rows):
                skipped.extend((item.candidate.path, item.skip) for item in batch.skipped)
                if batch.rows:
                    k = len(batch.rows)
                    for ds in (images, labels, paths):
                        ds.resize(n + k, axis=0)
                    images[n:n + k] = batch.images()
                    labels[n:n + k] = [order[row.index][1] for row in batch.rows]
                    paths[n:n + k] = [row.candidate.path for row in batch.rows]
                    n += k
                    h5.flush()
                if progress:
                    progress(batch.end, len(items))
            if n == 0:
                raise FeaturebenchError(f"No usable images in {opts.source} ({len(skipped)} skipped).")
            bounds = split_bounds(n, opts.train_fraction, opts.val_fraction)
            codes = np.zeros(n, np.uint8)
            for code, name in enumerate(SPLITS):
                codes[slice(*bounds[name])] = code
            h5.create_dataset("split", data=codes)
            h5.create_dataset("label_names", data=np.array(listing.label_names, dtype=object),
                              dtype=h5py.string_dtype())
            group = h5.create_group("skipped")
            group.create_dataset("path", data=np.array([p for p, _ in skipped], dtype=object), dtype=h5py.string_dtype())
            group.create_dataset("reason", data=np.array([r for _, r in skipped], dtype=object),
                                 dtype=h5py.string_dtype())
            seconds = time.perf_counter() - started
            counts = {name: hi - lo for name, (lo, hi) in bounds.items()}
            h5.attrs.update({
                "format": FORMAT, "format_version": FORMAT_VERSION, "featurebench_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": str(listing.root),
                "source_kind": listing.kind, "dataset": opts.dataset_name or default_dataset_name(listing.root),
                "image_size": [opts.size, opts.size], "resize": opts.resize, "seed": opts.seed,
                "shuffle": f"numpy default_rng({opts.seed}).permutation", "train_fraction": opts.train_fraction,
                "val_fraction": opts.val_fraction, "split_names": ",".join(SPLITS), "n_images": n,
                **{f"n_{name}": count for name, count in counts.items()},
                "label_pattern": opts.label_pattern or "", "allow_truncated": opts.allow_truncated,
                "max_pixels": opts.max_pixels, "build_seconds": round(seconds, 3), "command": opts.command,
                "complete": True,
            })
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    reasons: dict[str, int] = {}
    for _, reason in skipped:
        key = reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    return BuildImagesSummary(output, n, len(skipped), len(listing.ignored), counts, seconds,
                              output.stat().st_size, reasons, listing.warnings)


def is_image_file(path: str | os.PathLike) -> bool:
    """True for an HDF5 file written by ``build-images``."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".h5", ".hdf5"):
        return False
    try:
        with h5py.File(path, "r") as h5:
            return h5.attrs.get("format") == FORMAT
    except OSError:
        return False


class ImageFile:
    """Read a ``build-images`` file one batch at a time (the streaming batch generator)."""

    kind = "images-h5"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().resolve()
        try:
            h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise FeaturebenchError(f"Cannot open {self.path} as HDF5: {exc}") from None
        with h5:
            attrs = dict(h5.attrs)
            if attrs.get("format") != FORMAT:
                raise FeaturebenchError(f"{self.path} is not a raw-image file from `featurebench build-images` "
                                        "(a feature file from `extract` cannot be fine-tuned on).")
            if not attrs.get("complete"):
                raise FeaturebenchError(f"{self.path} is incomplete; rebuild it with `featurebench build-images`.")
            self.label_names = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["label_names"][()]]
            self.n_skipped = int(h5["skipped/path"].shape[0])
        self.attrs = attrs
        self.image_size = tuple(int(v) for v in attrs["image_size"])
        n_train, n_val, n = int(attrs["n_train"]), int(attrs["n_val"]), int(attrs["n_images"])
        self.bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
        self.dataset = str(attrs.get("dataset", self.path.stem))

    def count(self, split: str) -> int:
        lo, hi = self.bounds[check_split(split)]
        return hi - lo

    def labels(self, split: str) -> np.ndarray:
        lo, hi = self.bounds[check_split(split)]
        with h5py.File(self.path, "r") as h5:
            return h5["labels"][lo:hi].astype(np.int64)

    def iter_split(self, split: str, batch_size: int,
                   order_seed: int | tuple | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images uint8 (B,H,W,3), labels (B,))`` for ``split``: stored order, or a
        permutation seeded by ``order_seed``. Only one batch is ever in memory."""
        lo, hi = self.bounds[check_split(split)]
        index = np.arange(lo, hi)
        if order_seed is not None:
            index = np.random.default_rng(order_seed).permutation(index)
        with h5py.File(self.path, "r") as h5:
            images, labels = h5["images"], h5["labels"]
            for start in range(0, len(index), batch_size):
                sel = index[start:start + batch_size]
                if order_seed is None:
                    yield images[sel[0]:sel[-1] + 1], labels[sel[0]:sel[-1] + 1].astype(np.int64)
                    continue
                order = np.argsort(sel)
                rows = sel[order]
                batch_images = np.empty((len(sel), *images.shape[1:]), np.uint8)
                batch_labels = np.empty(len(sel), np.int64)
                batch_images[order] = images[rows]
                batch_labels[order] = labels[rows]
                yield batch_images, batch_labels

    def split_paths(self, split: str) -> list[str]:
        """Source paths of the split's images, in stored order (one per row :meth:`iter_split` yields)."""
        lo, hi = self.bounds[check_split(split)]
        with h5py.File(self.path, "r") as h5:
            return [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in h5["paths"][lo:hi]]

    def identity(self) -> dict:
        """The file's identity (:func:`featurebench.store.identity.training_identity`): source, rows, labels, seed."""
        from featurebench.store.identity import training_identity

        with h5py.File(self.path, "r") as h5:
            paths = [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in h5["paths"][()]]
            labels = h5["labels"][()].tolist()
        seed = self.attrs.get("seed")
        return training_identity(self.attrs.get("source") or self.path, paths, labels, self.label_names,
                                 seed.item() if hasattr(seed, "item") else seed, self.kind)

    def describe(self) -> dict:
        """Provenance of the training data."""
        keep = ("source", "source_kind", "dataset", "resize", "seed", "shuffle", "train_fraction", "val_fraction",
                "n_images", "n_train", "n_val", "n_test", "created", "command")
        info = {k: (v.item() if hasattr(v, "item") else v) for k, v in self.attrs.items() if k in keep}
        return {**info, "images_file": str(self.path), "image_size": list(self.image_size),
                "n_skipped": self.n_skipped}


__all__ = ["BuildImagesOptions", "BuildImagesSummary", "FORMAT", "ImageFile", "build_images", "is_image_file"]
