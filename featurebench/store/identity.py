"""Artefact identity: what proves that two files, runs, shards, checkpoints or cache entries belong together.

Commands used to join artefacts by *name* (a relative path, a run folder, a cache key); two
different things that share a name were combined without a word. Every artefact now carries
an **identity** (a small JSON object stored in the artefact itself) and one function,
:func:`check_joinable`, decides whether two identities may be joined for a purpose and names
the first thing that differs in a one-line refusal. docs/reliability.md ("What is checked when
artefacts are combined") lists every purpose.

A feature file's identity (HDF5 attribute ``identity``, JSON text; :func:`feature_identity`):

- ``source_root``: the folder (or list) the images were read from;
- ``content_digest``: SHA-256 of every row's file bytes (the per-row BLAKE2b digests the
  extraction computes anyway), in row order: the same images, wherever they live; absent
  when the rows were written without their files (``write_feature_arrays``);
- ``rows_digest``: SHA-256 of the rows' relative paths and labels and the label names;
- ``seed``, ``split_index``, ``n_rows``: the split;
- the model: ``model``, ``weights``, ``weights_sha256`` (every byte of the weights, external
  data files included), ``layer``, ``pool``, ``preprocessing``, ``input_size``, ``resize``,
  ``precision``, ``dtype``;
- for a shard of ``extract --shards``: ``shard_of``, ``shard_count``, ``shard_index``;
- ``digest``: SHA-256 of all of the above (one value to compare or record).

Files written before identities (no ``identity`` attribute) get one computed from what they
hold (``featurebench.store.reader.h5_identity``); their ``content_digest`` is unknown, so joins fall back to the
source root and the row list, and ``info`` says the identity was not recorded.

This module is plain data and hashing (no TensorFlow, no h5py): every layer may import it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from featurebench.errors import FeaturebenchError

#: HDF5 attribute (and metrics.json / state key prefix) holding an identity.
IDENTITY_ATTR = "identity"
#: Bumped when the identity's fields change meaning.
IDENTITY_VERSION = 1

#: The images: the content digest when both sides have one, else the source root.
SAME_IMAGES = ("content_digest", "source_root")
#: The rows and their split.
ROW_FIELDS = ("n_rows", "rows_digest", "seed", "split_index")
#: What turned the images into features.
MODEL_FIELDS = ("model", "weights_sha256", "weights", "layer", "pool", "preprocessing", "input_size", "resize",
                "precision", "dtype")
#: A shard's place in its run.
SHARD_FIELDS = ("shard_of", "shard_count", "shard_index")
#: Everything that makes two feature files the same file.
FILE_FIELDS = (SAME_IMAGES, *ROW_FIELDS, *MODEL_FIELDS, *SHARD_FIELDS)


def digest_of(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rows_digest(paths: Sequence[str], labels: Iterable[int] | None = None,
                label_names: Sequence[str] | None = None) -> str:
    """Digest of a row list: the paths in order, with their labels and the label names when given.

    The :func:`digest_of` of ``[paths, labels, label_names]`` (as lists), hashed in pieces so that
    no text of every path is built."""
    columns: list[Iterable[Any]] = [map(str, paths)]
    if labels is not None:
        columns.append(map(int, labels))
    if label_names is not None:
        columns.append(map(str, label_names))
    digest = hashlib.sha256(b"[")
    for number, column in enumerate(columns):
        digest.update(b",[" if number else b"[")
        for start, chunk in enumerate(_chunks(column, 4096)):
            digest.update(((b"," if start else b"") + json.dumps(chunk, separators=(",", ":"))[1:-1].encode("utf-8")))
        digest.update(b"]")
    digest.update(b"]")
    return digest.hexdigest()


def _chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``values`` in lists of ``size`` (the last may be shorter; none when there are no values)."""
    iterator = iter(values)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def content_digest(row_digests: Any) -> str | None:
    """SHA-256 over the per-row content digests ((N, k) uint8, row order); None when there are none."""
    if row_digests is None:
        return None
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(row_digests, dtype=np.uint8).tobytes()).hexdigest()


def bytes_digest(path: Any) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """Attribute values as JSON-stable plain values (numpy scalars -> Python, JSON text kept)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if value == "":
            return None
        if value[:1] in "[{":  # lists and dicts are stored as JSON text
            try:
                return json.loads(value)
            except ValueError:
                pass
    if isinstance(value, tuple):
        return list(value)
    return value


def seal(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` plus their ``digest`` (the digest of every other field)."""
    body = {key: value for key, value in fields.items() if key != "digest"}
    return {**body, "digest": digest_of(body)}


def feature_identity(attrs: dict[str, Any], paths: Sequence[str], labels: Iterable[int],
                     label_names: Sequence[str], content: str | None = None) -> dict[str, Any]:
    """The identity of a feature file with these attributes and rows (``content``: :func:`content_digest`)."""
    fields: dict[str, Any] = {"version": IDENTITY_VERSION, "kind": "features",
                              "source_root": _plain(attrs.get("source")) or None, "content_digest": content,
                              "rows_digest": rows_digest(paths, labels, label_names), "n_rows": len(paths)}
    for key in ("seed", "split_index", *MODEL_FIELDS, *SHARD_FIELDS):
        if key in attrs:
            fields[key] = _plain(attrs[key])
    return seal(fields)


def parse(text: Any) -> dict[str, Any] | None:
    """An identity stored as JSON text (or already a dict); None when absent or not an identity."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if isinstance(text, str):
        if not text:
            return None
        try:
            text = json.loads(text)
        except ValueError:
            return None
    return text if isinstance(text, dict) and "digest" in text else None


#: metrics.json key of a run's identity: what it was fitted on and which rows it predicted.
RUN_IDENTITY_KEY = "feature_identity"


def run_identity(source: dict[str, Any], predicted_paths: Sequence[str]) -> dict[str, Any]:
    """A run's identity: the identity of the feature (or image) file it was fitted on, plus
    ``predicted_rows``, the digest of the test paths it predicted, in order."""
    body = {key: value for key, value in source.items() if key not in ("digest", "recorded")}
    return {**body, "source_digest": source.get("digest"), "predicted_rows": rows_digest(predicted_paths),
            "n_predicted": len(predicted_paths)}


def recorded_run_identity(metrics: dict[str, Any]) -> dict[str, Any]:
    """The identity a run recorded; for runs made before identities, what its record still tells
    (the source root), marked ``"recorded": False``."""
    stored = metrics.get(RUN_IDENTITY_KEY)
    if isinstance(stored, dict):
        return stored
    provenance = metrics.get("provenance") if isinstance(metrics.get("provenance"), dict) else {}
    data = provenance.get("data") if isinstance(provenance.get("data"), dict) else {}
    return {"source_root": provenance.get("source") or data.get("source") or None, "recorded": False}


def training_identity(root: Any, paths: Sequence[str], labels: Iterable[int], label_names: Sequence[str],
                      seed: Any, kind: str) -> dict[str, Any]:
    """The identity of a training source (an image folder/CSV, or a ``build-images`` file) in its stored order."""
    return seal({"version": IDENTITY_VERSION, "kind": kind, "source_root": str(root) if root else None,
                 "content_digest": None, "n_classes": len(label_names), "label_names": list(map(str, label_names)),
                 "rows_digest": rows_digest(paths, labels, label_names), "n_rows": len(paths), "seed": seed})


@dataclass(frozen=True)
class Purpose:
    """A reason to join two artefacts: which identity fields must agree, and the fix to suggest."""

    name: str
    #: Fields in the order a refusal names them; a tuple is a list of alternatives (the first
    #: present on both sides is compared).
    fields: tuple
    #: What the two artefacts must be: completes "A and B are not ..." ("the same images", ...).
    what: str
    fix: str


PURPOSES: dict[str, Purpose] = {p.name: p for p in (
    Purpose("fuse", (SAME_IMAGES, *ROW_FIELDS), "the same images in the same order",
            "extract every part from the same source folder with the same --seed"),
    Purpose("ensemble", (SAME_IMAGES,), "runs on the same images",
            "ensemble runs made from one source (same extract/build-images source and seed)"),
    Purpose("audit --run", FILE_FIELDS, "a run and the feature file it was fitted on",
            "pass the feature file the run was fitted on (its metrics.json names it), or audit without --run"),
    Purpose("skip-existing", FILE_FIELDS, "a run and the feature file it was fitted on",
            "pass --force to replace it, or --run-name/--out to keep both"),
    Purpose("merge shards", ("shard_of", "shard_count", "dtype", *MODEL_FIELDS), "shards of one extraction",
            "merge the shard files of one `extract --shards` run"),
    Purpose("merge", ("digest", "n_rows", "feature_dim"), "the same shard file",
            "put the shard files back beside the merged file, or merge the current shards again "
            "(featurebench merge ... --force)"),
    Purpose("resume", (SAME_IMAGES, "n_classes", "rows_digest", "seed"), "the same training source",
            "pass the source the run was started on, or start over with --force"),
    Purpose("cache", (), "the same cache entry", "the entry is rebuilt"),
    Purpose("int8 bundle", (), "the quantised model the features were made with",
            "re-extract with --precision fp32 and refit, or re-run the same `extract --precision int8` on the "
            "machine that made the features (it refills the cache) and fit again"),
)}


def first_difference(purpose: str | Purpose, recorded: dict[str, Any], current: dict[str, Any]
                     ) -> tuple[str, Any, Any] | None:
    """``(field, recorded value, current value)`` of the first field that differs, or None.

    A field missing on one side differs; among alternatives (``SAME_IMAGES``) the first field
    present on both sides is compared. A purpose without fields compares every field of ``recorded``.
    """
    spec = PURPOSES[purpose] if isinstance(purpose, str) else purpose
    for field in spec.fields or tuple(sorted(recorded)):
        options = field if isinstance(field, tuple) else (field,)
        chosen = next((key for key in options if recorded.get(key) is not None and current.get(key) is not None),
                      options[-1])
        a, b = recorded.get(chosen), current.get(chosen)
        if json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            return chosen, a, b
    return None


def _short(value: Any) -> str:
    text = "missing" if value is None else str(value)
    return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text[:80]


def check_joinable(purpose: str, recorded: dict[str, Any], current: dict[str, Any], recorded_name: str,
                   current_name: str, detail: Callable[[str], str | None] | None = None) -> None:
    """Refuse (one line, naming the first difference and the fix) unless ``recorded`` and
    ``current`` may be joined for ``purpose`` (one of :data:`PURPOSES`).

    ``detail(field)`` may say more about a difference than the two values (e.g. the first row
    whose path differs); the values are shown when it returns None.
    """
    spec = PURPOSES[purpose]
    difference = first_difference(spec, recorded, current)
    if difference is None:
        return
    field, a, b = difference
    what = (detail(field) if detail else None) or f"{field}: {_short(b)} vs {_short(a)}"
    raise FeaturebenchError(f"{purpose}: {current_name} and {recorded_name} are not {spec.what} ({what}); "
                            f"{spec.fix}.")


def check_run_source(purpose: str, metrics: dict[str, Any], current: dict[str, Any], run_name: str,
                     current_name: str) -> None:
    """Refuse unless the run whose record is ``metrics`` was fitted on the file whose identity is
    ``current`` (``audit --run``, ``--skip-existing``); runs recorded before identities are refused too."""
    recorded = recorded_run_identity(metrics)

    def detail(field: str) -> str | None:
        if recorded.get("recorded") is False:
            return "the run was recorded before featurebench stored identities, so it cannot be shown to come from it"
        return None

    check_joinable(purpose, recorded, current, run_name, current_name, detail)


def describe(identity: dict[str, Any] | None) -> str:
    """One line for ``info``: the digest and what it covers."""
    if not identity:
        return "not recorded"
    parts = [f"{identity['digest'][:16]}"]
    if identity.get("content_digest"):
        parts.append(f"images {identity['content_digest'][:12]}")
    parts.append(f"rows {str(identity.get('rows_digest', ''))[:12]}")
    if identity.get("weights_sha256"):
        parts.append(f"weights {str(identity['weights_sha256'])[:12]}")
    text = ", ".join(parts)
    if identity.get("recorded") is False:
        text += (" (computed: this file was written before identities were recorded; its images' bytes are not "
                 "known, so joins check its source root and rows only; re-extract with --force to record them)")
    return text


__all__ = ["FILE_FIELDS", "IDENTITY_ATTR", "PURPOSES", "Purpose", "RUN_IDENTITY_KEY", "check_run_source", "recorded_run_identity",
           "run_identity", "training_identity", "bytes_digest", "check_joinable", "content_digest",
           "describe", "digest_of", "feature_identity", "first_difference", "parse", "rows_digest",
           "seal"]
