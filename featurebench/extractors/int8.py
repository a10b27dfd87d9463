"""``--precision int8``: a Keras model run by OpenVINO, quantised by NNCF on the source's own images.

Post-training quantisation needs a calibration sample: the first :data:`CALIBRATION_IMAGES`
usable images of the seeded shuffle's train slice (never a test image: the ranges are
statistics fitted on data), at most 90% of that slice, so that a test row stays out of it
unless more than a tenth of the images later fail to decode. The fidelity check runs both
the fp32 and the int8 model on up to :data:`HOLDOUT_IMAGES` images of the test slice that
calibration never saw; per-image cosine (mean, minimum) is recorded in the feature file.

The quantised model is cached as OpenVINO IR under ``$FEATUREBENCH_CACHE/int8/<key>/``;
the key digests the model's identity (name, weights and their hash, layer, pool, input
size, preprocessing), the decode settings, the bytes of every calibration and check image,
and the OpenVINO/NNCF versions, so a second run (or a resumed one) does not recalibrate and
anything that would change the quantised model makes a new entry. ``calibration.json`` records the
sha256 of the entry's ``model.xml`` and ``model.bin``; an entry whose bytes no longer match (a
damaged file of the same size) is not used: it is calibrated again, with a notice. The feature file
records those digests too (``int8_model_files``): ``fit`` copies the entry into the bundle's run
folder and ``predict`` runs that copy (featurebench/fit/quantised.py). See docs/performance.md
for the speed and the downstream accuracy it was measured at.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from featurebench.errors import FeaturebenchError

#: Calibration images taken from the train slice. NNCF's default is 300; with 128 (and the fast
#: bias correction) EfficientNet-Lite0's int8 features on 200 held-out Flowers-17 photos stayed
#: nearly as close to fp32 (cosine mean / 1st percentile / min 0.991 / 0.950 / 0.905) as with 300
#: and the full correction (0.993 / 0.963 / 0.890), for a third of the CPU time (11.0 vs 33.4 s),
#: and with 64 as close as with 128 (0.990 / 0.951 / 0.904 vs 0.991 / 0.950 / 0.905) for 1.3 CPU-s
#: less (results/bench_calibration_settings_avx512-vnni.md; the downstream accuracy is in
#: docs/performance.md).
CALIBRATION_IMAGES = 64
#: Calibration images per NNCF statistics step (batchwise statistics).
CALIBRATION_BATCH = 16
#: Fewer calibration images than this (90% of the train slice at most) and ``--precision int8``
#: refuses (``auto`` runs fp32).
MIN_CALIBRATION_IMAGES = CALIBRATION_IMAGES
#: Test-slice images the int8 features are compared on (fp32 vs int8 cosine).
HOLDOUT_IMAGES = 64
#: ``auto`` keeps int8 only when the check images are this close to fp32 (mean, minimum cosine).
#: Measured with EfficientNet-Lite0, 64 calibration images (results/bench_accuracy_avx512-vnni.md):
#: int8 and int8 + reduced decode on Flowers-17 and Dogs vs Cats had whole-test-set mean cosines
#: of 0.986-0.993 (checks 0.990-0.993, minimum 0.951) and lost no test accuracy (+0.00 to +0.88
#: points); the mean bound sits just below the lowest of them.
AUTO_GATE = (0.985, 0.95)
#: Bumped when the quantisation settings change, so older cache entries are not reused.
QUANTIZATION_VERSION = 3
#: Provenance fields that identify the fp32 model being quantised.
_MODEL_IDENTITY = ("model", "model_source", "weights", "weights_sha256", "layer", "pool", "include_top",
                   "input_size", "preprocessing", "feature_dim", "keras_version")


@dataclass
class CalibrationSample:
    """Relative paths of the calibration images (train slice) and of the check images (test slice)."""

    calibration: list[str]
    holdout: list[str]


def calibration_sample(candidates: Sequence[Sequence[Any]], train_fraction: float,
                       size: int = CALIBRATION_IMAGES) -> CalibrationSample:
    """Pick the calibration and check images from ``[path, label, skip]`` candidates in shuffled order.

    Raises :class:`FeaturebenchError` when the train slice has fewer than
    :data:`MIN_CALIBRATION_IMAGES` usable images.
    """
    usable = [candidate[0] for candidate in candidates if not candidate[2]]
    split = int(len(usable) * train_fraction)
    train, test = usable[:split], usable[split:]
    count = min(size, int(0.9 * len(train)))
    if count < MIN_CALIBRATION_IMAGES:
        raise FeaturebenchError(
            f"--precision int8 needs at least {MIN_CALIBRATION_IMAGES} calibration images from the train slice "
            f"(at most 90% of it); this source gives {count} ({len(usable)} usable images, train fraction "
            f"{train_fraction}). Add images, or use --precision fp32 for a source this small.")
    return CalibrationSample(train[:count], test[:HOLDOUT_IMAGES])


def cache_root() -> Path:
    """Where quantised models are kept: ``$FEATUREBENCH_CACHE/int8`` (default ``~/.cache/featurebench/int8``)."""
    from featurebench.extractors.efficientnet_lite import cache_dir

    return cache_dir() / "int8"


def _file_digests(root: Path, paths: Sequence[str]) -> list[tuple[str, str]]:
    """``(path, BLAKE2b of its bytes)`` for each readable file (unreadable ones are left out)."""
    from featurebench.data.decode import DEFAULT_MAX_FILE_BYTES, SkipImage, content_digest
    from featurebench.data.storage import location_of, read_bytes

    digests = []
    for path in paths:
        try:
            digests.append((path, content_digest(read_bytes(location_of(root, path), DEFAULT_MAX_FILE_BYTES)).hex()))
        except SkipImage:
            continue
    return digests


def import_nncf() -> Any:
    """Import NNCF (the ``[int8]`` extra) after OpenVINO, so that both run with telemetry off."""
    from featurebench.extractors.openvino_engine import import_openvino

    import_openvino()  # marks openvino_telemetry unimportable: NNCF then uses its no-op stand-in
    try:
        import nncf
    except ImportError:
        raise FeaturebenchError("--precision int8 needs NNCF: pip install 'featurebench[int8]' "
                                "(or pip install nncf).") from None
    return nncf


def cache_key(provenance: dict[str, Any], decode: Any, calibration: list[tuple[str, str]],
              holdout: list[tuple[str, str]]) -> str:
    """The digest naming a quantised model: model identity, decode settings, image bytes, versions."""
    nncf = import_nncf()
    from featurebench.extractors.openvino_engine import openvino_version

    identity = {key: provenance.get(key) for key in _MODEL_IDENTITY}
    decode_settings = {"size": list(decode.size), "resize": decode.resize, "fast_decode": decode.fast_decode,
                       "allow_truncated": decode.allow_truncated}
    payload = [QUANTIZATION_VERSION, identity, decode_settings, calibration, holdout,
               openvino_version(), nncf.__version__]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _diagnostics_to_stderr():
    """NNCF logs and draws its progress bars on stdout; featurebench keeps stdout for results."""
    from nncf.common.logging.logger import nncf_logger

    handlers = [h for h in nncf_logger.handlers if isinstance(h, logging.StreamHandler) and h.stream is sys.stdout]
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler in handlers:
            handler.setStream(sys.stdout)


def quantize(fp32_model: Any, images: Sequence[np.ndarray], prepare: Callable[[np.ndarray], np.ndarray]) -> Any:
    """NNCF post-training quantisation of an OpenVINO model on ``images`` (uint8, one each).

    NNCF's defaults for CNNs (weights per channel, the fast bias correction), with statistics
    gathered over batches of :data:`CALIBRATION_BATCH` images. The full bias correction and
    300 images at batch 1 took three times the CPU for features barely closer to fp32 (see
    :data:`CALIBRATION_IMAGES`).
    """
    nncf = import_nncf()
    batches = [np.stack(images[i:i + CALIBRATION_BATCH]) for i in range(0, len(images), CALIBRATION_BATCH)]
    dataset = nncf.Dataset(batches, prepare)
    advanced = nncf.AdvancedQuantizationParameters(batchwise_statistics=True)
    with _diagnostics_to_stderr():
        return nncf.quantize(fp32_model, dataset, subset_size=len(batches), fast_bias_correction=True,
                             advanced_parameters=advanced)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0), 1.0)


def _decode_all(root: Path, paths: Sequence[str], decode: Any, workers: int) -> list[np.ndarray]:
    from featurebench.data.pipeline import iter_decoded
    from featurebench.data.sources import Candidate

    items = [Candidate(path, None) for path in paths]
    return [item.image for item in iter_decoded(items, root, decode, 0, workers) if item.image is not None]


def _build(extractor: Any, root: Path, sample: CalibrationSample, decode: Any, workers: int,
           entry: Path, key: str) -> None:
    """Quantise, check against fp32 on the held-out images, and store the IR and its record in ``entry``."""
    from featurebench.extractors.openvino_engine import import_openvino

    ov = import_openvino()
    started = time.perf_counter()
    calibration_images = _decode_all(root, sample.calibration, decode, workers)
    if len(calibration_images) < MIN_CALIBRATION_IMAGES:
        raise FeaturebenchError(f"--precision int8: only {len(calibration_images)} of the {len(sample.calibration)} "
                                f"calibration images in {root} decode; at least {MIN_CALIBRATION_IMAGES} are needed.")
    print(f"Calibrating int8 on {len(calibration_images)} train images of {root} (once; cached under "
          f"{entry.parent})", file=sys.stderr, flush=True)
    forward = extractor.openvino
    quantized = quantize(forward.fp32_model, calibration_images, extractor.prepare)
    holdout = _decode_all(root, sample.holdout, decode, workers)
    record: dict[str, Any] = {"key": key, "calibration_paths": sample.calibration,
                              "calibration_images": len(calibration_images), "holdout_images": len(holdout)}
    if holdout:
        (fp32_run, _), (int8_run, _) = forward.compile(forward.fp32_model, "fp32"), forward.compile(quantized, "int8")
        a, b = (np.concatenate([run(extractor.prepare(np.stack(holdout[i:i + 16])))
                                for i in range(0, len(holdout), 16)]) for run in (fp32_run, int8_run))
        cosines = _cosines(a, b)
        record.update(cosine_mean=round(float(cosines.mean()), 6), cosine_min=round(float(cosines.min()), 6))
    record["calibration_seconds"] = round(time.perf_counter() - started, 1)
    tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ov.save_model(quantized, str(tmp / "model.xml"), compress_to_fp16=False)
    record["files"] = entry_digests(tmp)
    (tmp / "calibration.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    try:
        os.replace(tmp, entry)
    except OSError:  # another run stored the same entry first: keep that one
        shutil.rmtree(tmp, ignore_errors=True)


#: The files of a cache entry whose bytes ``calibration.json`` records (``files``: name -> sha256).
ENTRY_FILES = ("model.xml", "model.bin")


def entry_digests(folder: Path) -> dict[str, str | None]:
    """SHA-256 of each of the entry's :data:`ENTRY_FILES` (None for a missing one)."""
    from featurebench.store.identity import bytes_digest

    return {name: bytes_digest(folder / name) if (folder / name).is_file() else None for name in ENTRY_FILES}


def _read_entry(entry: Path, key: str) -> tuple[tuple[dict[str, Any], Any] | None, str | None]:
    """``((record, OpenVINO model), None)`` of a cache entry made for ``key``, or ``(None, why)``: absent
    (why None), made for another key, or damaged (its files' bytes differ from the digests it recorded:
    :func:`featurebench.store.identity.check_joinable`, purpose ``cache``)."""
    from featurebench.extractors.openvino_engine import import_openvino
    from featurebench.store.identity import check_joinable

    if not (entry / "calibration.json").exists():
        return None, None
    try:
        record = json.loads((entry / "calibration.json").read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("key") != key:
            return None, "it was made for another model or images"
        if not isinstance(record.get("files"), dict):
            return None, "it records no digests of its files (made by an older featurebench)"
        check_joinable("cache", record["files"], entry_digests(entry), "calibration.json", str(entry))
        return (record, import_openvino().Core().read_model(str(entry / "model.xml"))), None
    except FeaturebenchError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files all mean: calibrate again
        return None, f"it cannot be read ({type(exc).__name__})"


def calibrate(extractor: Any, root: Path, candidates: Sequence[Sequence[Any]], train_fraction: float,
              decode: Any, workers: int = 2, auto: bool = False) -> list[str]:
    """Turn an int8 :class:`~featurebench.extractors.keras_backend.KerasExtractor` into a quantised one.

    Uses the cached model when there is one. ``auto``: a source too small to calibrate on,
    or int8 features further from fp32 than :data:`AUTO_GATE`, runs fp32 instead. Returns
    one-line notices for the user.
    """
    forward = getattr(extractor, "openvino", None)
    if forward is None or forward.fp32_model is None:
        raise FeaturebenchError("--precision int8 applies to Keras models run by OpenVINO "
                                "(registry models and .keras/.h5 files, not --engine tensorflow).")
    try:
        sample = calibration_sample(candidates, train_fraction)
    except FeaturebenchError as exc:
        if not auto:
            raise
        extractor.use_openvino_model(forward.fp32_model, "fp32", {})
        return [f"--precision auto: fp32 ({exc})"]
    calibration = _file_digests(root, sample.calibration)
    holdout = _file_digests(root, sample.holdout)
    key = cache_key(extractor.provenance, decode, calibration, holdout)
    entry = cache_root() / key[:32]
    found, why = _read_entry(entry, key)
    cached = found is not None
    notices = [] if why is None else [f"int8: the cached calibration in {entry} is not used ({why}); calibrating again."]
    if found is None:
        shutil.rmtree(entry, ignore_errors=True)  # a damaged or foreign entry: make it again
        _build(extractor, root, CalibrationSample([p for p, _ in calibration], [p for p, _ in holdout]),
               decode, workers, entry, key)
        found, why = _read_entry(entry, key)
        if found is None:
            raise FeaturebenchError(f"--precision int8: could not read back the quantised model stored in {entry} "
                                    f"({why}).")
    record, quantized = found
    info = {"int8_calibration_digest": key, "int8_calibration_images": record["calibration_images"],
            "int8_calibration_paths": record["calibration_paths"],
            "int8_calibration_rule": f"the first {len(record['calibration_paths'])} usable images of the seeded "
                                     "shuffle's train slice",
            "int8_holdout_images": record["holdout_images"], "int8_cache": str(entry), "int8_cache_hit": cached,
            # The bytes that ran: `fit` copies these files into the bundle and checks them (fit/quantised.py).
            "int8_model_files": record["files"]}
    mean, low = record.get("cosine_mean"), record.get("cosine_min")
    if mean is not None:
        info.update(int8_cosine_mean=mean, int8_cosine_min=low)
    passed = mean is not None and mean >= AUTO_GATE[0] and low >= AUTO_GATE[1]
    info["nncf_version"] = import_nncf().__version__
    check = (f"int8 vs fp32 cosine on {record['holdout_images']} held-out images: mean {mean:.4f}, min {low:.4f}"
             if mean is not None else "no held-out test images to compare int8 with fp32 on")
    if auto and not passed:
        extractor.use_openvino_model(forward.fp32_model, "fp32", {})
        return notices + [f"--precision auto: fp32 ({check}; int8 needs mean >= {AUTO_GATE[0]} and min >= {AUTO_GATE[1]})"]
    extractor.use_openvino_model(quantized, "int8", info)
    notices.append(f"int8: {'cached calibration' if cached else 'calibrated'} ({check}).")
    if not passed:
        notices.append(f"int8 features are further from fp32 than {AUTO_GATE} (mean, min cosine); "
                       "check accuracy against --precision fp32 before relying on them.")
    return notices


__all__ = ["ENTRY_FILES", "CalibrationSample", "cache_key", "cache_root", "calibrate", "calibration_sample",
           "entry_digests", "quantize"]
