"""Model bundles: the fitted pipeline, its class names and the extractor spec, saved with skops.

A bundle is a skops file (no pickle): loading rebuilds only types that
scikit-learn/skops trust by default plus the short allow-list below. Any other
type in the file (a tampered or foreign bundle) is refused with its name unless
the caller passes ``trust=True`` after inspecting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurebench.errors import FeaturebenchError, note_file

BUNDLE_FORMAT = "featurebench-bundle"
BUNDLE_VERSION = 1
BUNDLE_NAME = "model.skops"

#: Types our own bundles contain beyond skops' default-trusted scikit-learn/numpy types.
ALLOWED_TYPES = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.EuclideanDistance32",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance32",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance32",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    "featurebench.fit.boosting.EarlyStoppingXGBClassifier",
    "sklearn.calibration._CalibratedClassifier",  # fit --calibrate
    "sklearn.calibration._SigmoidCalibration",
})

#: Feature-file attributes that say how features were made (what ``predict`` must reproduce).
EXTRACTOR_KEYS = ("model", "model_source", "model_path", "layer", "pool", "input_size", "resize", "preprocessing",
                  "weights", "weights_sha256", "random_init", "feature_dim", "seed", "backend", "include_top",
                  "max_pixels", "allow_truncated", "precision", "fast_decode",
                  # int8: which quantised model made the features (fit copies it into the bundle: fit/quantised.py)
                  "int8_calibration_digest", "int8_cache", "int8_model_files")


@dataclass
class Bundle:
    """A loaded bundle. ``label_names[i]`` is the class of the estimator's output ``i``."""

    estimator: Any
    label_names: list[str]
    extractor: dict[str, Any]
    classifier: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def extractor_spec(attrs: dict[str, Any]) -> dict[str, Any]:
    """The extractor spec from a feature file's attributes (``input_size``, ``int8_model_files`` parsed from JSON)."""
    import json

    spec = {key: attrs[key] for key in EXTRACTOR_KEYS if key in attrs}
    for key in ("input_size", "int8_model_files"):
        value = spec.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            spec[key] = json.loads(value)
    return spec


def save_bundle(path: str | Path, estimator: Any, label_names: list[str], extractor: dict[str, Any],
                classifier: str = "", meta: dict[str, Any] | None = None) -> Path:
    """Write a bundle to ``path`` (through a temporary name, then renamed)."""
    import os

    import skops.io as sio

    path = Path(path)
    payload = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "classifier": classifier,
        "estimator": estimator, "label_names": [str(n) for n in label_names],
        "extractor": _plain(extractor), "meta": _plain(meta or {}),
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        sio.dump(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(value: Any) -> Any:
    """JSON-like plain Python values only (skops stores them without extra types)."""
    from featurebench.fit.record import jsonable

    return jsonable(value)


def untrusted_types(path: str | Path) -> list[str]:
    """Types in the bundle that neither skops nor :data:`ALLOWED_TYPES` trust."""
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(file=str(path))) - ALLOWED_TYPES)


#: The most a bundle's ``schema.json`` may inflate to (ours are a few kB to a few MB).
MAX_SCHEMA_BYTES = 64 << 20
#: A compressed member bigger than this once inflated, and compressed more than
#: :data:`MAX_COMPRESSION_RATIO` times, is a zip bomb (skops stores arrays uncompressed).
MAX_INFLATED_MEMBER_BYTES = 256 << 20
MAX_COMPRESSION_RATIO = 100


def _check_inflated_sizes(path: Path) -> None:
    """Refuse a bundle whose members would inflate to far more than they take on disk,
    from the zip directory, before anything is decompressed."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            ratio = member.file_size / max(1, member.compress_size)
            if ((member.filename == "schema.json" and member.file_size > MAX_SCHEMA_BYTES)
                    or (member.file_size > MAX_INFLATED_MEMBER_BYTES and ratio > MAX_COMPRESSION_RATIO)):
                raise FeaturebenchError(
                    f"Refusing to load {path}: its member {member.filename!r} would inflate from "
                    f"{member.compress_size:,} to {member.file_size:,} bytes (a zip bomb, or not a featurebench "
                    "bundle). Re-create the bundle with `featurebench fit`.")


def load_bundle(path: str | Path, trust: bool = False) -> Bundle:
    """Load a bundle, refusing unknown types (naming them) unless ``trust=True``."""
    import zipfile

    import skops.io as sio

    path = Path(path)
    note_file(path)
    if path.is_dir() and (path / BUNDLE_NAME).is_file():
        path = path / BUNDLE_NAME  # a fit run folder: its bundle
    keras_file = path / "model.keras" if path.is_dir() else path
    if keras_file.suffix.lower() in (".keras", ".h5") and keras_file.is_file():
        raise FeaturebenchError(
            f"{keras_file} is a Keras network (from `featurebench train` or `finetune`), not a fit bundle "
            f"({BUNDLE_NAME}); classify images with it by `featurebench explain {path} IMAGE...` (top classes and "
            "heatmaps), or extract features and `fit` a bundle.")
    if path.is_dir():
        raise FeaturebenchError(f"{path} is a folder without {BUNDLE_NAME}; pass a fit run folder "
                                f"(RESULTS_DIR/<run>/) or its {BUNDLE_NAME}.")
    if not path.is_file():
        raise FeaturebenchError(
            f"Model bundle {path} does not exist (a fit run writes RESULTS_DIR/<run>/{BUNDLE_NAME})"
        )
    try:
        _check_inflated_sizes(path)
        found = sio.get_untrusted_types(file=str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FeaturebenchError(f"{path} is not a skops model bundle ({type(exc).__name__}: {exc})") from None
    refused = sorted(set(found) - ALLOWED_TYPES)
    if refused and not trust:
        raise FeaturebenchError(
            f"Refusing to load {path}: it contains types outside featurebench's allow-list: {', '.join(refused)}. "
            "Loading them could run arbitrary code. If you made this file yourself and trust it, load it with "
            "trust=True (CLI: --trust)."
        )
    try:
        payload = sio.load(str(path), trusted=sorted(set(found)))
    except Exception as exc:  # noqa: BLE001 - skops raises many types for a malformed file
        raise FeaturebenchError(f"Could not load model bundle {path} ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise FeaturebenchError(f"{path} is a skops file but not a featurebench bundle (no {BUNDLE_FORMAT} header)")
    if int(payload.get("version", 0)) > BUNDLE_VERSION:
        raise FeaturebenchError(f"{path} is bundle version {payload.get('version')}; this featurebench reads "
                                f"version {BUNDLE_VERSION} and older. Upgrade featurebench.")
    return Bundle(payload["estimator"], list(payload["label_names"]), dict(payload["extractor"]),
                  payload.get("classifier", ""), dict(payload.get("meta", {})), path)
