"""Train/test splits: the stored index split, a seeded stratified split, or a separate test file.

Classes missing from train (they can never be predicted) or from test (their
accuracy is unmeasured) are warned about loudly and recorded in the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.rows import Rows
from featurebench.fit.warn import warn
from featurebench.store.reader import FeatureFile

#: Provenance attributes that must agree between a feature file and its ``--test-file``.
_SAME_EXTRACTOR = ("model", "layer", "pool", "input_size", "preprocessing", "weights", "weights_sha256")


@dataclass
class Split:
    """Which rows train and which test, with the labels mapped into one label space.

    ``label_names`` is the label space of the run: the train file's names, plus (with
    ``--test-file``) any names only the test file has. ``y_train``/``y_test`` index it.
    """

    kind: str
    train: Rows
    test: Rows
    y_train: np.ndarray
    y_test: np.ndarray
    label_names: list[str]
    test_file: FeatureFile | None = None
    seed: int | None = None
    train_fraction: float | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What the run record stores about the split."""
        info: dict[str, Any] = {"kind": self.kind, "n_train": len(self.train), "n_test": len(self.test)}
        if self.kind == "index":
            info["train_rows"] = [self.train.start, self.train.stop]
            info["test_rows"] = [self.test.start, self.test.stop]
        if self.kind == "stratified":
            info.update(seed=self.seed, train_fraction=self.train_fraction, method="sklearn StratifiedShuffleSplit",
                        test_rows_file="split.json")
        if self.kind == "test-file" and self.test_file is not None:
            info["test_file"] = str(self.test_file.path)
        return info


def index_split(features: FeatureFile) -> Split:
    """The classic split: rows ``[:split_index]`` train, ``[split_index:]`` test."""
    i = features.split_index
    if not 0 < i < features.n_rows:
        raise FeaturebenchError(
            f"{features.path}: stored split index {i} leaves no train or no test rows ({features.n_rows} rows); "
            "use --stratified or --test-file"
        )
    labels = features.labels
    return Split("index", Rows(0, i), Rows(i, features.n_rows), labels[:i], labels[i:], list(features.label_names),
                 train_fraction=i / features.n_rows)


def stratified_split(features: FeatureFile, seed: int = 42, train_fraction: float | None = None) -> Split:
    """A seeded stratified split with the file's train fraction (rows stay in file order)."""
    from sklearn.model_selection import StratifiedShuffleSplit

    fraction = float(train_fraction or features.attrs.get("train_fraction") or 0.75)
    labels = features.labels
    counts = np.bincount(labels, minlength=len(features.label_names))
    if (counts[counts > 0] < 2).any():
        raise FeaturebenchError(
            f"{features.path}: --stratified needs at least 2 rows per class; "
            f"classes with one row: {', '.join(features.label_names[c] for c in np.flatnonzero(counts == 1))}. "
            "Use the stored index split instead."
        )
    splitter = StratifiedShuffleSplit(n_splits=1, train_size=fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(labels)), labels))
    train_rows, test_rows = Rows.of(train), Rows.of(test)
    return Split("stratified", train_rows, test_rows, train_rows.take(labels), test_rows.take(labels),
                 list(features.label_names), seed=seed, train_fraction=fraction)


def separate_test_split(features: FeatureFile, test: FeatureFile) -> Split:
    """Train on every row of ``features``, test on every row of ``test`` (labels matched by name)."""
    if test.feature_dim != features.feature_dim:
        raise FeaturebenchError(
            f"--test-file {test.path} has {test.feature_dim}-d features but {features.path} has "
            f"{features.feature_dim}-d: extract both with the same model, layer and pooling"
        )
    different = [k for k in _SAME_EXTRACTOR
                 if str(features.attrs.get(k, "")) != str(test.attrs.get(k, ""))]
    if different:
        detail = "; ".join(f"{k}: {features.attrs.get(k)!r} vs {test.attrs.get(k)!r}" for k in different)
        raise FeaturebenchError(
            f"--test-file {test.path} was extracted differently from {features.path} ({detail}); "
            "features from different extractors are not comparable. Re-extract the test set with the same settings."
        )
    names = list(features.label_names)
    extra = [n for n in test.label_names if n not in names]
    names += extra
    mapping = np.array([names.index(n) for n in test.label_names], dtype=np.int64)
    split = Split("test-file", Rows(0, features.n_rows), Rows(0, test.n_rows), features.labels.astype(np.int64),
                  mapping[test.labels] if len(test.labels) else test.labels.astype(np.int64), names, test_file=test)
    if extra:
        warn(f"--test-file {test.path} has classes the train file lacks ({', '.join(extra)}): "
             "their test images can never be classified correctly", split.warnings)
    return split


def make_split(features: FeatureFile, stratified: bool = False, test_file: FeatureFile | None = None,
               seed: int = 42) -> Split:
    """The split a run asked for, with coverage warnings already emitted."""
    if stratified and test_file is not None:
        raise FeaturebenchError("--stratified and --test-file exclude each other: a test file is the test set")
    if test_file is not None:
        split = separate_test_split(features, test_file)
    elif stratified:
        split = stratified_split(features, seed)
    else:
        split = index_split(features)
    coverage_warnings(split)
    return split


def coverage_warnings(split: Split) -> list[str]:
    """Warn (loudly, and into ``split.warnings``) about classes absent from train or test."""
    n = len(split.label_names)
    in_train = np.bincount(split.y_train, minlength=n) > 0
    in_test = np.bincount(split.y_test, minlength=n) > 0
    new: list[str] = []
    missing_train = [split.label_names[c] for c in np.flatnonzero(~in_train & in_test)]
    missing_test = [split.label_names[c] for c in np.flatnonzero(in_train & ~in_test)]
    if missing_train:
        warn(f"WARNING: {len(missing_train)} class(es) have test rows but NO train rows ({', '.join(missing_train)}); "
             f"the classifier cannot predict them ({split.kind} split). Consider --stratified.", new)
    if missing_test:
        warn(f"WARNING: {len(missing_test)} class(es) have train rows but NO test rows ({', '.join(missing_test)}); "
             f"their accuracy is not measured ({split.kind} split). Consider --stratified.", new)
    if in_train.sum() < 2:
        raise FeaturebenchError(f"The train split has {int(in_train.sum())} class(es); a classifier needs at least 2.")
    split.warnings.extend(new)
    return new
