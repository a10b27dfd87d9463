"""The int8 model a bundle was fitted with: copied into the run folder by ``fit``, loaded by ``predict``.

Features made with ``--precision int8`` come from a model NNCF quantised on the source's own
images and cached under ``$FEATUREBENCH_CACHE/int8/<key>/`` (featurebench/extractors/int8.py).
A bundle fitted on them must score new images with that same model, not with the fp32 network
nor with a fresh calibration. ``fit`` therefore copies the entry's OpenVINO IR (``model.xml``,
``model.bin``, ``calibration.json``) into ``RUN/int8/`` and checks the copies' SHA-256 against
the digests the entry recorded (and, for files extracted since, against the digests the feature
file recorded): purpose ``int8 bundle`` of :func:`featurebench.store.identity.check_joinable`.
The bundle spec records the folder and the digests (``int8_model``), or why the model could not
be copied (``int8_model_missing``); ``predict`` checks the digests again before loading it, and
refuses a bundle without it. Nothing here imports TensorFlow (``fit`` must not): files and hashes,
and OpenVINO only in :func:`load_int8_model`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from featurebench.errors import FeaturebenchError

#: The run folder's subfolder holding the quantised model.
INT8_FOLDER = "int8"
#: Bundle-spec key: ``{"folder", "files" (name -> sha256), "calibration_digest"}``.
INT8_MODEL_KEY = "int8_model"
#: Bundle-spec key: why ``fit`` could not copy the quantised model (predict then refuses).
INT8_MISSING_KEY = "int8_model_missing"
#: The cache entry's record copied beside the model (calibration images, fidelity check).
RECORD_FILE = "calibration.json"


def is_int8(spec: dict[str, Any]) -> bool:
    """Whether the bundle's features were made by a quantised (int8) model."""
    return str(spec.get("precision") or "fp32") == "int8" and spec.get("model_source") != "fused"


def _recorded_files(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The model files' digests the feature file recorded (files extracted before it: None)."""
    files = spec.get("int8_model_files")
    return files if isinstance(files, dict) else None


def _copy_entry(spec: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Copy the cache entry the features name into ``folder``; its description for the spec."""
    from featurebench.extractors.int8 import ENTRY_FILES, entry_digests
    from featurebench.store.identity import check_joinable

    key = str(spec.get("int8_calibration_digest") or "")
    entry = Path(str(spec.get("int8_cache") or ""))
    if not key or not spec.get("int8_cache"):
        raise FeaturebenchError("the feature file names no int8 cache entry")
    try:
        record = json.loads((entry / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FeaturebenchError(f"its calibration cache entry {entry} is gone or unreadable") from None
    if not isinstance(record, dict) or record.get("key") != key:
        raise FeaturebenchError(f"the cache entry {entry} now holds another calibration")
    if not isinstance(record.get("files"), dict):
        raise FeaturebenchError(f"the cache entry {entry} records no digests of its files")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name in (*ENTRY_FILES, RECORD_FILE):
            shutil.copyfile(entry / name, folder / name)
    except OSError as exc:
        raise FeaturebenchError(f"could not copy {entry}: {exc.strerror or exc}") from None
    copied = entry_digests(folder)  # the copies' bytes, so a file changed while copying is caught
    check_joinable("int8 bundle", record["files"], copied, f"{entry}/{RECORD_FILE}", str(folder))
    made_with = _recorded_files(spec)
    if made_with is not None:
        check_joinable("int8 bundle", made_with, copied, "the feature file's int8_model_files", str(entry))
    return {"folder": INT8_FOLDER, "files": copied, "calibration_digest": key}


def attach_int8_model(spec: dict[str, Any], run_folder: Path) -> tuple[dict[str, Any], str | None]:
    """``spec`` plus where the bundle keeps its int8 model (copied into ``run_folder``), and a
    warning when it could not be copied (the spec then records why; ``fit`` still succeeds)."""
    from featurebench.store.identity import PURPOSES

    if not is_int8(spec):
        return spec, None
    try:
        return {**spec, INT8_MODEL_KEY: _copy_entry(spec, run_folder / INT8_FOLDER)}, None
    except FeaturebenchError as exc:
        shutil.rmtree(run_folder / INT8_FOLDER, ignore_errors=True)
        why = str(exc)
        return {**spec, INT8_MISSING_KEY: why}, (
            f"The features are int8, but the quantised model they were made with is not in the bundle ({why}): "
            f"`predict` will refuse this bundle; to predict, {PURPOSES['int8 bundle'].fix}.")


def load_int8_model(spec: dict[str, Any], bundle_dir: Path | None) -> tuple[Any, dict[str, Any]]:
    """The bundle's quantised OpenVINO model, its bytes checked against the digests ``fit``
    recorded, and the provenance to record; a one-line refusal when it is missing or changed."""
    from featurebench.extractors.int8 import entry_digests
    from featurebench.extractors.openvino_engine import import_openvino
    from featurebench.store.identity import PURPOSES, check_joinable

    fix = PURPOSES["int8 bundle"].fix
    stored = spec.get(INT8_MODEL_KEY)
    if not isinstance(stored, dict):
        why = spec.get(INT8_MISSING_KEY) or "the bundle records no int8 model"
        raise FeaturebenchError(f"This bundle was fitted on int8 features, but the quantised model they were made "
                                f"with was not saved with it ({why}); predict will not score new images with "
                                f"other features: {fix}.")
    folder = (bundle_dir or Path(".")) / str(stored.get("folder") or INT8_FOLDER)
    check_joinable("int8 bundle", stored.get("files") or {}, entry_digests(folder), "the bundle", str(folder))
    try:
        model = import_openvino().Core().read_model(str(folder / "model.xml"))
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and others for a foreign IR
        raise FeaturebenchError(f"The bundle's int8 model {folder} cannot be read ({type(exc).__name__}); "
                                f"{fix}.") from None
    return model, {"int8_calibration_digest": stored.get("calibration_digest"), "int8_model": str(folder)}


__all__ = ["INT8_FOLDER", "INT8_MISSING_KEY", "INT8_MODEL_KEY", "attach_int8_model", "is_int8",
           "load_int8_model"]
