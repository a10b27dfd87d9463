"""Pick and run the heatmap method for a classifier bundle or a Keras classifier network.

* bundle, Keras extractor pooled avg/flatten from a conv layer, linear classifier: the exact
  class activation map (:mod:`cam`);
* any other bundle on Keras features, and fine-tuned / scratch / user Keras classifiers: Grad-CAM
  (:mod:`gradcam`) on the last spatial layer, or ``layer``;
* TFLite and SavedModel extractors: refused, since a heatmap needs the Keras graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from featurebench.errors import FeaturebenchError
from featurebench.explain.overlay import normalise_map

#: What each method's maps mean (for the CLI and the gallery).
METHODS = {"cam": "class activation map (exact: linear classifier weights on the pooled conv maps)",
           "grad-cam": "Grad-CAM (class-score gradients averaged per channel of the conv maps)",
           "grad-cam-numeric": "Grad-CAM with the classifier's gradient by central differences (non-linear "
                               "scikit-learn classifier; coarse for tree ensembles)"}


#: Feature extractors whose graphs featurebench runs but cannot differentiate or cut at a conv
#: layer (``model_source`` in a bundle's provenance -> how the error names them).
NON_KERAS_SOURCES = {"tflite": "a TFLite model", "onnx": "an ONNX model", "savedmodel": "a SavedModel"}


def heatmaps_refused(what: str) -> FeaturebenchError:
    """The error for a model whose heatmaps cannot be computed (TFLite, ONNX, SavedModel)."""
    return FeaturebenchError(
        f"Heatmaps need a Keras model, and {what}, which gives no access to its conv feature maps or "
        "gradients (featurebench does not fake them). Re-extract with a Keras extractor (e.g. `--model efficientnet_lite0` "
        "or a .keras file), fit again, and explain that bundle."
    )


@dataclass
class Explanation:
    """Top classes of one image and, per class, a [0, 1] heatmap at the conv layer's resolution."""

    labels: list[str]
    scores: list[float]
    maps: list[np.ndarray]
    method: str
    layer: str


@dataclass
class Explainer:
    """A loaded model ready to explain images already decoded and resized to ``input_size``."""

    name: str
    input_size: tuple[int, int]
    resize: str
    label_names: list[str]
    layer: str
    method: str
    score_kind: str
    _scores_and_maps: Callable[[np.ndarray, int], tuple[np.ndarray, list[int], list[np.ndarray]]]
    warnings: list[str] = field(default_factory=list)

    def explain(self, image: np.ndarray, top: int = 3) -> Explanation:
        """Explain one (H, W, 3) uint8 image of ``input_size``."""
        scores, order, maps = self._scores_and_maps(image, max(1, min(top, len(self.label_names))))
        positive = self.method != "cam"
        return Explanation([self.label_names[j] for j in order], [float(scores[j]) for j in order],
                           [normalise_map(m, positive_only=positive) for m in maps], self.method, self.layer)


def _top(scores: np.ndarray, k: int) -> list[int]:
    return [int(j) for j in np.argsort(-scores, kind="stable")[:k]]


def _bundle_explainer(path: Path, layer: str | None, trust: bool, model: str | None, weights: str | None,
                      unsafe_model: bool) -> Explainer:
    from featurebench.fit.bundle import load_bundle

    bundle = load_bundle(path, trust=trust)
    spec = bundle.extractor
    source = str(spec.get("model_source") or "registry")
    model_file = str(spec.get("model_path") or spec.get("model") or "")
    source = next((kind for kind in NON_KERAS_SOURCES if model_file.lower().endswith(f".{kind}")), source)
    if source in NON_KERAS_SOURCES:
        raise heatmaps_refused(f"the bundle {path} was trained on features of {NON_KERAS_SOURCES[source]} "
                               f"({model_file})")
    import keras

    from featurebench.explain.cam import CAM_POOLS, class_activation_maps, linear_head
    from featurebench.explain.gradcam import grad_cam, gradient_model, numeric_gradients
    from featurebench.fit.metrics import estimator_scores
    from featurebench.fit.predict import build_extractor, features_precision

    sink: list[str] = []
    made_in = features_precision(spec)
    fast_decode = str(spec.get("fast_decode")).lower() == "true"
    if made_in != "fp32" or fast_decode:
        sink.append(f"The bundle was fitted on {made_in} features{' of reduced-size decodes' if fast_decode else ''}; "
                    "explain runs the fp32 network on full decodes (heatmaps need its gradients), so its scores "
                    "may differ slightly from `featurebench predict`'s.")
    extractor = build_extractor(spec, model, weights, unsafe_model, sink, engine="tensorflow", precision="fp32")
    feature_net = extractor.model
    estimator = bundle.estimator
    pool = str(extractor.provenance.get("pool"))
    head = linear_head(estimator)
    score_kind = estimator_scores(estimator, np.zeros((1, extractor.feature_dim), np.float32))[1]

    def scores_of(feats: np.ndarray) -> np.ndarray:
        return estimator_scores(estimator, feats)[0]

    pooled_from = feature_net.get_layer(f"featurebench_{pool}").input if pool in CAM_POOLS else None
    if head is not None and layer is None and pooled_from is not None and len(pooled_from.shape) == 4:
        W, _ = head
        conv = keras.Model(feature_net.inputs[0], pooled_from)
        conv_layer = str(extractor.provenance.get("layer"))

        def run(image: np.ndarray, k: int):
            maps_in = np.asarray(conv(extractor.preprocess(image[None]), training=False), dtype=np.float64)[0]
            feats = maps_in.mean(axis=(0, 1)) if pool == "avg" else maps_in.reshape(-1)
            scores = scores_of(feats[None].astype(np.float32))[0]
            order = _top(scores, k)
            return scores, order, list(class_activation_maps(maps_in, W[order], pool))

        return Explainer(path.name, extractor.input_size, str(spec.get("resize") or "stretch"), bundle.label_names,
                         conv_layer, "cam", score_kind, run, sink)
    grad_model, layer_name = gradient_model(feature_net, layer)
    method = "grad-cam" if head is not None else "grad-cam-numeric"

    def run(image: np.ndarray, k: int):
        batch = extractor.preprocess(image[None])
        feats = np.asarray(grad_model(batch, training=False)[1], dtype=np.float32)
        scores = scores_of(feats)[0]
        order = _top(scores, k)
        gradients = head[0][order] if head is not None else numeric_gradients(scores_of, feats[0])[order]
        maps, _ = grad_cam(grad_model, np.asarray(batch), gradients)
        return scores, order, list(maps)

    return Explainer(path.name, extractor.input_size, str(spec.get("resize") or "stretch"), bundle.label_names,
                     layer_name, method, score_kind, run, sink)


def _run_folder_info(folder: Path) -> tuple[list[str] | None, str]:
    """Class names and resize mode recorded beside a fine-tuned model (``metrics.json``, ``recipe.json``)."""
    names, resize = None, "stretch"
    try:
        names = json.loads((folder / "metrics.json").read_text())["confusion"]["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        resize = str(json.loads((folder / "recipe.json").read_text()).get("resize") or resize)
    except (OSError, ValueError, AttributeError):
        pass
    return names, resize


def _keras_explainer(path: Path, layer: str | None, preprocess: str, unsafe_model: bool) -> Explainer:
    from featurebench.explain.gradcam import grad_cam, gradient_model
    from featurebench.explain.inspection import load_keras_model
    from featurebench.extractors.preprocessing import get_preprocessor

    net, _, _ = load_keras_model(str(path), unsafe=unsafe_model)
    if len(net.output_shape) != 2:
        raise FeaturebenchError(f"{path} outputs shape {net.output_shape}: explain needs a classifier "
                                "(one score per class); for a feature extractor, fit a bundle and explain that")
    grad_model, layer_name = gradient_model(net, layer)
    names, resize = _run_folder_info(path.parent)
    n_out = int(net.output_shape[-1])
    names = names if names and len(names) == n_out else [f"class {i}" for i in range(n_out)]
    prep = get_preprocessor(preprocess)

    def run(image: np.ndarray, k: int):
        batch = prep(image[None].astype(np.float32))
        probe = np.asarray(net(batch, training=False), dtype=np.float64)[0]
        order = _top(probe, k)
        maps, _ = grad_cam(grad_model, batch, np.eye(n_out)[order])
        return probe, order, list(maps)

    size = tuple(int(d) for d in net.input_shape[1:3])
    return Explainer(path.name, size, resize, names, layer_name, "grad-cam", "probability", run)


def load_explainer(target: str | Path, layer: str | None = None, trust: bool = False, model: str | None = None,
                   weights: str | None = None, preprocess: str = "none", unsafe_model: bool = False) -> Explainer:
    """An :class:`Explainer` for a bundle (``model.skops`` or its run folder), a Keras classifier file
    (``.keras``/``.h5``, e.g. a fine-tuned run's ``model.keras``) or such a run folder."""
    path = Path(target).expanduser()
    if path.is_dir():
        found = [path / name for name in ("model.skops", "model.keras") if (path / name).is_file()]
        if not found:
            raise FeaturebenchError(f"{path} holds neither model.skops (a fit run) nor model.keras (a finetune run)")
        path = found[0]
    if not path.exists():
        raise FeaturebenchError(f"{path} does not exist: pass a bundle (RUN/model.skops), a Keras model file or a run folder")
    suffix = path.suffix.lower()
    if suffix in (".tflite", ".onnx"):
        raise heatmaps_refused(f"{path} is {NON_KERAS_SOURCES[suffix[1:]]}")
    if suffix == ".skops":
        return _bundle_explainer(path, layer, trust, model, weights, unsafe_model)
    if suffix in (".keras", ".h5", ".hdf5"):
        return _keras_explainer(path, layer, preprocess, unsafe_model)
    raise FeaturebenchError(f"{path}: explain takes a bundle (.skops), a Keras classifier (.keras/.h5) or a run folder")
