"""``featurebench predict``: classify images with a saved bundle.

The bundle's extractor spec rebuilds the same extractor (model, layer, pooling,
preprocessing, resize, precision) that made the training features; images go through the
same robust decoder as ``extract``, with the same reduced-size decode when the features used
one (``fast_decode``). A bundle fitted on int8 features runs the quantised model saved in its
run folder (featurebench/fit/quantised.py), never the fp32 network. Bundles made before the
precision was recorded run fp32, as they always did. Unreadable files are listed (the CLI
exits 2 only when nothing could be classified).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.fit.bundle import Bundle, load_bundle
from featurebench.fit.warn import warn
from featurebench.text import plural


@dataclass
class Prediction:
    """Top-k classes of one image, best first."""

    path: str
    labels: list[str]
    scores: list[float]


@dataclass
class PredictResult:
    """Predictions plus the files that could not be classified (path, reason)."""

    predictions: list[Prediction]
    unreadable: list[tuple[str, str]]
    score_kind: str
    top: int
    warnings: list[str] = field(default_factory=list)
    #: Every image file and unreadable input in the order the inputs were given (results are listed so).
    order: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Inputs given by name that do not exist (an error for the command, unlike an unreadable image)."""
        return [path for path, reason in self.unreadable if reason == NO_SUCH_PATH]

    def in_given_order(self) -> tuple[list[Prediction], list[tuple[str, str]]]:
        """Predictions and unreadable inputs, each sorted by where the inputs named them."""
        rank = {path: i for i, path in enumerate(self.order)}
        return (sorted(self.predictions, key=lambda p: rank.get(p.path, len(rank))),
                sorted(self.unreadable, key=lambda item: rank.get(item[0], len(rank))))


#: The reason given for an input path that does not exist.
NO_SUCH_PATH = "no such file or folder"


def collect_images(inputs: Iterable[str | os.PathLike]) -> tuple[list[str], list[tuple[str, str]]]:
    """Image files from files and folders (recursively, sorted); missing inputs are reported."""
    files, missing, _ = collect_inputs(inputs)
    return files, missing


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """As :func:`collect_images`, plus every file and unreadable path in the order the inputs gave them."""
    files: list[str] = []
    missing: list[tuple[str, str]] = []
    order: list[str] = []
    for item in inputs:
        path = Path(item).expanduser()
        before = len(missing)
        if path.is_dir():
            found = _folder_images(path, missing)
            if not found:
                missing.append((str(path), "folder holds no image files"))
            files.extend(found)
            order.extend(sorted([*found, *(p for p, _ in missing[before:])]))
        elif path.is_file():
            files.append(str(path))
            order.append(str(path))
        else:
            missing.append((str(path), NO_SUCH_PATH))
            order.append(str(path))
    return files, missing, order


def _folder_images(folder: Path, missing: list[tuple[str, str]]) -> list[str]:
    """Image files under ``folder``, walked as ``extract`` lists a source (hidden folders and links to folders
    not entered); image names that are not regular files and folders not searched go to ``missing``."""
    from featurebench.data.sources import _classify_file, _walk_files

    ignored: list[tuple[str, str]] = []
    found = []
    for path in _walk_files(folder, folder, ignored):
        if _classify_file(path.name):
            continue  # hidden, system or not an image: not an input
        if path.is_file():
            found.append(str(path))
        else:
            missing.append((str(path), "broken link" if path.is_symlink() else "not a regular file"))
    missing.extend((str(folder / rel), reason) for rel, reason in ignored if not reason.startswith("hidden"))
    return sorted(found)


def _weights_arg(spec: dict[str, Any], weights: str | None) -> str:
    if weights is not None:
        return weights
    value = str(spec.get("weights") or "imagenet")
    if spec.get("model_source") not in (None, "", "registry"):
        return "imagenet"  # a model file carries its own weights
    if value.startswith("random"):
        return "none"
    if value.startswith("file:"):
        raise FeaturebenchError(
            f"The bundle's extractor used the weights file {value[5:]!r}; pass its path (--weights PATH) to predict."
        )
    return value


def features_precision(spec: dict[str, Any]) -> str:
    """The precision the bundle's training features were made in (fp32 for bundles that do not record it)."""
    return str(spec.get("precision") or "fp32")


def _precision_here(spec: dict[str, Any], engine: str | None, sink: list[str] | None) -> str:
    """The precision to rebuild the extractor in: the features' one, except fp16 without a GPU (fp32, warned)."""
    from featurebench.extractors.devices import choose_engine

    precision = features_precision(spec)
    if precision == "fp16" and not choose_engine(engine or "auto").on_gpu:
        warn("The bundle's features were made in fp16 on a GPU; there is none here, so predict runs fp32: "
             "scores may differ slightly from the training features'", sink)
        return "fp32"
    return precision


def build_extractor(spec: dict[str, Any], model: str | None = None, weights: str | None = None,
                    unsafe_model: bool = False, sink: list[str] | None = None, engine: str | None = None,
                    precision: str | None = None, bundle_dir: Path | None = None) -> Any:
    """Rebuild the extractor described by a bundle's spec (``model``/``weights`` override locations;
    ``engine``: what runs a Keras model, default auto (OpenVINO on a CPU); ``explain`` needs ``tensorflow`` for gradients).

    ``precision``: what to run, default the precision the features were made in; int8 loads the
    quantised model saved in the bundle's folder ``bundle_dir`` (checked against its digests),
    and refuses, in one line, a bundle without it."""
    from featurebench.extractors import load_extractor

    precision = precision or _precision_here(spec, engine, sink)
    quantized = None
    if precision == "int8":
        from featurebench.fit.quantised import load_int8_model

        quantized = load_int8_model(spec, bundle_dir)  # refused before the (slow) model load
        engine = engine or "openvino"
    source = spec.get("model_source") or "registry"
    if model is None:
        if source == "registry":
            model = str(spec.get("model"))
        else:
            model = str(spec.get("model_path") or spec.get("model"))
            if not Path(model).exists():
                raise FeaturebenchError(
                    f"The bundle's model file {model} is not there any more; pass its new location with --model PATH."
                )
    pool = spec.get("pool") or None
    pool = None if pool == "none" else pool
    preprocess = spec.get("preprocessing") or None
    if source == "registry" or preprocess == "uint8":
        preprocess = None
    seed = int(spec.get("seed") or 42)
    layer = spec.get("layer") or None
    kwargs = dict(weights=_weights_arg(spec, weights), pool=pool, seed=seed, preprocess=preprocess,
                  unsafe_model=unsafe_model, precision=precision)
    if source != "tflite":
        kwargs["engine"] = engine
    if source == "tflite":
        # The default output tensor is cheapest; ask for a named tensor only if the spec used another one.
        extractor = load_extractor(model, layer=None, **kwargs)
        if layer and extractor.provenance.get("layer") != layer:
            extractor = load_extractor(model, layer=layer, **kwargs)
    else:
        extractor = load_extractor(model, layer=layer, **kwargs)
    if quantized is not None:
        extractor.use_openvino_model(quantized[0], "int8", quantized[1])
    built = extractor.provenance
    if built.get("precision", "fp32") != precision:  # bf16 asked for, on a CPU that has none
        warn(f"The bundle's features were made in {precision}; this machine runs {built.get('precision')} "
             "(no native support): scores may differ slightly from the training features'", sink)
    expected_sha = spec.get("weights_sha256")
    if expected_sha and built.get("weights_sha256") and built["weights_sha256"] != expected_sha:
        warn(f"The extractor's weights ({built.get('weights')}) differ from the ones the bundle was trained on "
             f"(sha256 {expected_sha[:12]}... vs {built['weights_sha256'][:12]}...): predictions may be wrong", sink)
    if spec.get("random_init") in (True, "True", "true", 1):
        warn("The bundle was trained on random-init features (a baseline, not transfer learning)", sink)
    return extractor


def _n_features(estimator: Any) -> int | None:
    value = getattr(estimator, "n_features_in_", None)
    return int(value) if value is not None else None


def predict_images(bundle_path: str | Path | Bundle, inputs: Sequence[str | os.PathLike], top: int = 5,
                   trust: bool = False, model: str | None = None, weights: str | None = None,
                   batch_size: int | None = None, workers: int = 2, unsafe_model: bool = False,
                   extractor: Any = None, say: Any = None) -> PredictResult:
    """Classify ``inputs`` (image files and folders) with the bundle; top-``top`` labels per image.

    ``extractor`` may be passed to reuse an already-built one; ``say(message)`` hears the stages
    (loading the model takes a while).
    """
    from featurebench.data.pipeline import DecodeOptions, iter_batches, iter_decoded
    from featurebench.data.sources import Candidate
    from featurebench.fit.metrics import estimator_scores

    if top < 1:
        raise FeaturebenchError(f"--top {top}: must be at least 1")
    if batch_size is not None and batch_size < 1:
        raise FeaturebenchError(f"--batch-size {batch_size}: must be at least 1")
    bundle = bundle_path if isinstance(bundle_path, Bundle) else load_bundle(bundle_path, trust=trust)
    if bundle.extractor.get("model_source") == "fused":
        raise FeaturebenchError(
            f"This bundle was fitted on fused features ({bundle.extractor.get('model')}, `featurebench fuse`): "
            "predict runs one extractor. Extract new images with each part's model, fuse the files, and score "
            "them with the bundle's classifier, or predict with a single-extractor run (or `featurebench ensemble`).")
    files, unreadable, listed = collect_inputs(inputs)
    if not files:  # nothing to classify: no need to build (and load) the extractor
        return PredictResult([], unreadable, "probability", min(top, len(bundle.label_names)), order=listed)
    sink: list[str] = []
    if extractor is None:
        if say is not None:
            say(f"Loading the extractor {bundle.extractor.get('model')} for {plural(len(files), 'image')}...")
        extractor = build_extractor(bundle.extractor, model, weights, unsafe_model, sink,
                                    bundle_dir=bundle.path.parent if bundle.path else None)
    spec = bundle.extractor
    fast_decode = str(spec.get("fast_decode")).lower() == "true"
    running = str(extractor.provenance.get("precision") or "fp32")
    if say is not None and (running != "fp32" or fast_decode):
        say(f"Running the extractor in {running}{' with the reduced-size JPEG decode' if fast_decode else ''}, "
            "as the bundle's training features were made"
            + (" (the quantised model saved with the bundle)." if running == "int8" else "."))
    expected = _n_features(bundle.estimator)
    if expected is not None and expected != extractor.feature_dim:
        raise FeaturebenchError(
            f"The extractor gives {extractor.feature_dim}-d features but the bundle's classifier expects {expected}-d; "
            "the bundle's extractor spec does not match the model found (check --model/--weights)."
        )
    options = DecodeOptions(tuple(extractor.input_size), str(spec.get("resize") or "stretch"),
                            **({"max_pixels": int(spec["max_pixels"])} if spec.get("max_pixels") else {}),
                            allow_truncated=str(spec.get("allow_truncated")).lower() == "true",
                            fast_decode=fast_decode)
    candidates = [Candidate(str(Path(f).resolve()), None) for f in files]
    predictions: list[Prediction] = []
    score_kind = "probability"
    k = min(top, len(bundle.label_names))
    for batch in iter_batches(iter_decoded(candidates, Path("/"), options, workers=workers),
                              batch_size or extractor.batch_size):
        unreadable.extend((files[item.index], item.skip or "unreadable") for item in batch.skipped)
        if not batch.rows:
            continue
        feats = extractor.extract(batch.images())
        scores, score_kind = estimator_scores(bundle.estimator, feats)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for row, item in enumerate(batch.rows):
            predictions.append(Prediction(files[item.index], [bundle.label_names[j] for j in order[row]],
                                          [float(scores[row, j]) for j in order[row]]))
    return PredictResult(predictions, unreadable, score_kind, k, sink, listed)


def write_predictions_csv(result: PredictResult, path: str | Path) -> Path:
    """One row per input: ``path, top1, score1, ..., topK, scoreK, error`` (unreadable files: error only)."""
    path = Path(path)
    header = ["path"] + [c for i in range(1, result.top + 1) for c in (f"top{i}", f"score{i}")] + ["error"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        predictions, unreadable = result.in_given_order()
        for p in predictions:
            cells = [x for pair in zip(p.labels, (f"{s:.6g}" for s in p.scores)) for x in pair]
            writer.writerow([p.path, *cells, *[""] * (2 * result.top - len(cells)), ""])
        for file, reason in unreadable:
            writer.writerow([file, *[""] * (2 * result.top), reason])
    return path


def format_predictions(result: PredictResult) -> str:
    """Plain-text table for the terminal."""
    rank = {path: i for i, path in enumerate(result.order)}
    lines = []
    for p in result.predictions:
        best = ", ".join(f"{label} {score:.3f}" for label, score in zip(p.labels, p.scores))
        lines.append((p.path, f"{p.path}\t{best}"))
    for file, reason in result.unreadable:
        lines.append((file, f"{file}\tUNREADABLE: {reason}"))
    return "\n".join(line for _, line in sorted(lines, key=lambda item: rank.get(item[0], len(rank))))
