"""Run a Keras network as an extractor: a named layer, pooled, compiled once.

Used for registry models (``keras.applications`` and ports such as
EfficientNet-Lite0) and for user ``.keras``/``.h5`` model files.
"""

from __future__ import annotations

import io
import sys
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, Callable

import numpy as np

from featurebench.data.resize import check_input_size
from featurebench.errors import FeaturebenchError, WeightsUnavailableError
from featurebench.extractors.base import Extractor
from featurebench.extractors.devices import DEFAULT_ENGINE, EngineChoice, choose_engine, gpu_batch_size
from featurebench.extractors.hashing import file_sha256
from featurebench.extractors.preprocessing import DESCRIPTIONS, get_preprocessor
from featurebench.extractors.spec import POOLS, ModelSpec, imagenet_weights_file, keras_cache_dir


#: ``--precision`` -> the Keras dtype policy the network is built under. ``bf16`` computes
#: in bfloat16 with float32 weights (oneDNN/AMX on CPUs with AVX512-BF16); opt-in: see
#: docs/performance.md for its speed per model and how close its features stay to fp32.
#: ``fp16`` (mixed float16) is for GPUs, with the TensorFlow engine.
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def check_precision(precision: str, engine: str) -> None:
    """Refuse a precision the engine cannot run: int8 is OpenVINO's (NNCF-quantised)."""
    if precision == "int8" and engine != "openvino":
        raise FeaturebenchError("--precision int8 runs on the OpenVINO engine (NNCF quantisation); "
                                "leave --engine tensorflow out, or use --precision fp32 or bf16.")


@contextmanager
def dtype_policy(precision: str):
    """Build Keras layers under the policy for ``precision``; the global policy is restored after."""
    import keras

    if precision not in PRECISION_POLICIES:
        raise FeaturebenchError(f"--precision {precision!r}: choose one of {', '.join(PRECISION_POLICIES)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def framework_versions() -> dict[str, str]:
    """TensorFlow and Keras versions, for provenance."""
    import keras
    import tensorflow as tf

    return {"tensorflow_version": tf.__version__, "keras_version": keras.__version__}


def feature_model(base: Any, layer: str | None, pool: str | None) -> tuple[Any, str, str]:
    """Cut ``base`` at ``layer`` (default: its last layer) and pool a 4-D output.

    Returns ``(model, layer_name, pool_used)``; ``pool_used`` is ``"none"`` for
    outputs that are already vectors.
    """
    import keras

    layer_name = layer or base.layers[-1].name
    try:
        output = base.get_layer(layer_name).output
    except ValueError:
        names = [lay.name for lay in base.layers]
        raise FeaturebenchError(
            f"Layer {layer_name!r} not found in {base.name}. Some layer names: "
            f"{', '.join(names[-12:])} (run `featurebench inspect` for all)."
        ) from None
    if pool is not None and pool not in POOLS:
        raise FeaturebenchError(f"--pool {pool!r} is not one of {', '.join(POOLS)}")
    if len(output.shape) == 4:
        pool = pool or "avg"
        # float32 even under a bf16 policy: the pooled features are summed and stored in float32.
        head = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
                "flatten": keras.layers.Flatten}[pool](name=f"featurebench_{pool}", dtype="float32")
        output = head(output)
    elif len(output.shape) > 2:
        pool = "flatten"
        output = keras.layers.Flatten(name="featurebench_flatten", dtype="float32")(output)
    else:
        pool = "none"
    return keras.Model(base.inputs, output, name=f"{base.name}_features"), layer_name, pool


class KerasExtractor(Extractor):
    """A Keras feature model plus its preprocessing and provenance, run by OpenVINO or TensorFlow.

    ``engine="openvino"`` converts the model and runs it in ``precision`` on the CPU;
    ``engine="tensorflow"`` calls it as built (a bf16/fp16 model is built under that policy),
    on a GPU when TensorFlow sees one; ``"auto"`` (the default) or an :class:`EngineChoice`
    already made: see :func:`featurebench.extractors.devices.choose_engine`.
    """

    def __init__(self, model: Any, preprocessing: str, provenance: dict[str, Any], batch_size: int = 32,
                 engine: str | EngineChoice = DEFAULT_ENGINE, precision: str = "fp32", converted: Any = None,
                 build_model: Callable[[], Any] | None = None):
        """``converted``: the model's OpenVINO graph, already converted; with ``model`` None (a
        graph read from featurebench/extractors/model_cache.py, no TensorFlow imported), the
        provenance must be that of the model it was converted from, and ``build_model`` builds
        the Keras model should :attr:`model` be asked for."""
        choice = engine if isinstance(engine, EngineChoice) else choose_engine(engine)
        engine = choice.engine
        self._model, self._build_model = model, build_model
        if model is None:
            self.input_size = tuple(int(d) for d in provenance["input_size"])
            self.feature_dim = int(provenance["feature_dim"])
            described = dict(provenance)
        else:
            self.input_size = tuple(int(d) for d in model.input_shape[1:3])
            self.feature_dim = int(model.output_shape[-1])
            described = {**provenance, "feature_dim": self.feature_dim, "input_size": list(self.input_size),
                         **framework_versions()}
        check_input_size(*self.input_size, str(provenance.get("model", "the model")))
        self.preprocessing = preprocessing
        self.preprocess_fn = get_preprocessor(preprocessing)
        self.batch_size = batch_size
        self._provenance = {**described, "preprocessing": preprocessing,
                            "preprocessing_description": DESCRIPTIONS.get(preprocessing, preprocessing),
                            "backend": "keras", "engine": engine, "device": choice.device}
        if choice.requested == "auto":
            self._provenance["engine_selection"] = choice.reason
        # Each engine: how a preprocessed batch becomes its input (done in prepare(), off the
        # thread that runs the network), and the call that turns that input into numpy features.
        check_precision(precision, engine)
        #: The OpenVINO engine running the model (None with TensorFlow); int8 calibrates through it.
        self.openvino = None
        if engine == "openvino":
            from featurebench.extractors.openvino_engine import OpenVINOForward, openvino_version

            self._to_input = OpenVINOForward.to_input
            self._run = self.openvino = OpenVINOForward(model if model is not None else provenance["model"],
                                                        precision, converted)
            self._provenance["openvino_version"] = openvino_version()
            self._record_precision(precision, self._run.precision, engine)
        else:
            import tensorflow as tf

            # A tf.function, not model.predict: no per-call data-adapter overhead (DESIGN.md section 7,
            # docs/performance.md). The cast is a no-op for fp32 and widens bf16 outputs.
            call = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
            self._to_input = tf.convert_to_tensor
            self._run = lambda batch: call(batch).numpy()
            if choice.on_gpu:  # the CPU's bf16 support does not matter there
                self._provenance["precision"] = precision
            else:
                self._record_precision(precision, precision, engine)
        if choice.requested == "auto":
            self.notices = (choice.reason, *self.notices)

    def _record_precision(self, requested: str, running: str, engine: str) -> None:
        """Record the precision that really runs (and the request, when it differs), with a
        one-line notice for the user when the CPU changes what a bf16 request means."""
        from featurebench.extractors.cpu import has_native_bf16

        self._provenance["precision"] = running
        if requested != running:
            self._provenance["precision_requested"] = requested
            self.notices = (f"--precision {requested}: this CPU has no native bf16 (AVX512-BF16/AMX), so "
                            f"{engine} runs {running}; the file records precision {running}.",)
        elif running == "bf16" and not has_native_bf16():
            self.notices = (f"--precision {requested}: this CPU has no native bf16 (AVX512-BF16/AMX); "
                            f"{engine} emulates it, slower than fp32 (--precision fp32 is faster here).",)

    @property
    def model(self) -> Any:
        """The Keras feature model (built on first use when the graph came from the model cache)."""
        if self._model is None and self._build_model is not None:
            self._model = self._build_model()
        return self._model

    def note_model_cache(self, entry: Path | None, hit: bool, notes: list[str]) -> None:
        """Record where the converted graph is cached (and whether it was read from there), with notes."""
        if entry is not None:
            self._provenance.update(openvino_cache=str(entry), openvino_cache_hit=hit)
        self.notices = (*self.notices, *notes)

    def use_openvino_model(self, ov_model: Any, precision: str, record: dict[str, Any]) -> None:
        """Run ``ov_model`` (the int8 model made by :mod:`featurebench.extractors.int8`, or this
        model's fp32 graph) from now on; ``record`` joins the provenance."""
        self.openvino.use(ov_model, precision)
        self._provenance.update(record)
        self._provenance["precision"] = self.openvino.precision

    def prepare(self, images: np.ndarray) -> Any:
        return self._to_input(self.preprocess(images))

    def _forward(self, batch: Any) -> np.ndarray:
        return self._run(batch)

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)


def build_base(spec: ModelSpec, weights: str, include_top: bool, seed: int) -> tuple[Any, dict[str, str]]:
    import keras

    if weights == "none":
        keras.utils.set_random_seed(seed)
        return spec.builder(None, include_top), {"weights": f"random-init (seed {seed})", "weights_sha256": "",
                                                 "random_init": True}
    if weights == "imagenet":
        said = io.StringIO()  # Keras prints "Downloading data from https://..." on stdout
        try:
            with redirect_stdout(said):
                base = spec.builder("imagenet", include_top)
        except FeaturebenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for a failed download
            expected = imagenet_weights_file(spec)
            where = f" Keras looks for {expected};" if expected else ""
            raise WeightsUnavailableError(
                f"Could not load ImageNet weights for {spec.name} ({type(exc).__name__}: {exc}).{where} "
                "download it on a machine with internet and copy it there, or pass --weights PATH to a "
                "local weights file, or --weights none for random init (a baseline, not transfer learning)."
            ) from None
        sys.stderr.write(said.getvalue())  # a real download's progress: a diagnostic, never a result
        located = imagenet_weights_file(spec)
        sha = file_sha256(located) if located and located.is_file() and not include_top else ""
        return base, {"weights": "imagenet", "weights_sha256": sha, "random_init": False}
    path = Path(weights).expanduser()
    if not path.exists():
        raise FeaturebenchError(f"--weights {weights}: no such file; pass imagenet, none, or a weights file path")
    try:
        base = spec.builder(str(path), include_top)
    except Exception as exc:  # noqa: BLE001
        raise FeaturebenchError(
            f"Could not load weights file {path} into {spec.name} ({type(exc).__name__}: {exc}). "
            "The file must hold weights for this exact architecture (include_top=False unless you pick a top layer)."
        ) from None
    return base, {"weights": f"file:{path.name}", "weights_sha256": file_sha256(path), "random_init": False}


def check_precision_device(precision: str, choice: EngineChoice) -> None:
    """Refuse fp16 off a GPU: mixed float16 is a GPU path (OpenVINO's CPU runtime has none)."""
    if precision == "fp16" and not choice.on_gpu:
        raise FeaturebenchError(f"--precision fp16 (mixed float16) runs on a GPU with the TensorFlow engine; "
                                f"here {choice.reason.split(': ', 1)[-1]}. Use fp32, or bf16 on CPUs with "
                                "AVX512-BF16/AMX.")


def load_registry_model(spec: ModelSpec, weights: str = "imagenet", layer: str | None = None,
                        pool: str | None = None, seed: int = 42, batch_size: int | None = None,
                        precision: str = "fp32", engine: str = DEFAULT_ENGINE) -> KerasExtractor:
    """Build the extractor for a registered model spec (``precision``: fp32, bf16, fp16 on a GPU, or
    int8 = fp32 until :func:`featurebench.extractors.int8.calibrate` quantises it; ``engine``: see
    ENGINES). On a GPU the default batch size is sized for its memory."""
    if weights == "imagenet" and spec.locate_imagenet_weights is not None:
        spec.locate_imagenet_weights()  # a missing weights package is a clear error before TensorFlow loads
    choice = choose_engine(engine)
    check_precision_device(precision, choice)
    engine = choice.engine
    check_precision(precision, engine)
    if batch_size is None and choice.on_gpu:
        batch_size = gpu_batch_size(choice.gpu_memory_mib, spec.input_size, precision, spec.batch_size)
    if engine == "openvino":
        from featurebench.extractors import model_cache

        cached_id = model_cache.identity(spec, weights, layer, pool, seed, precision)
        cached, notes = model_cache.load(cached_id) if cached_id else (None, [])
        if cached is not None:
            extractor = KerasExtractor(None, spec.preprocessing, {**cached.provenance, "precision": precision},
                                       batch_size or spec.batch_size, choice, precision, cached.graph,
                                       lambda: _feature_model_of(spec, weights, layer, pool, seed, precision,
                                                                 engine)[0])
            extractor.note_model_cache(cached.entry, True, notes)
            return extractor
    model, provenance = _feature_model_of(spec, weights, layer, pool, seed, precision, engine)
    if engine != "openvino":
        return KerasExtractor(model, spec.preprocessing, provenance, batch_size or spec.batch_size, choice, precision)
    from featurebench.extractors.openvino_engine import convert_keras

    graph = convert_keras(model)
    extractor = KerasExtractor(model, spec.preprocessing, provenance, batch_size or spec.batch_size, choice,
                               precision, graph)
    # The imagenet weights file was keyed on; a layer found only in the include_top network loads another.
    if cached_id and not (provenance["include_top"] and weights == "imagenet"):
        entry, store_notes = model_cache.store(cached_id, graph, extractor.provenance)
        extractor.note_model_cache(entry, False, notes + store_notes)
    return extractor


def _feature_model_of(spec: ModelSpec, weights: str, layer: str | None, pool: str | None, seed: int,
                      precision: str, engine: str) -> tuple[Any, dict[str, Any]]:
    """Build the Keras feature model of ``spec`` and its provenance."""
    layer = layer or spec.default_layer
    include_top = bool(layer) and layer in spec.top_layers
    # OpenVINO takes the precision at compile time; TensorFlow needs a bf16/fp16 model built as such.
    with dtype_policy(precision if engine == "tensorflow" else "fp32"):
        base, weights_info = build_base(spec, weights, include_top, seed)
        if layer and not include_top and layer not in {lay.name for lay in base.layers}:
            base, weights_info = build_base(spec, weights, True, seed)
            include_top = True
        if pool is None and layer == spec.default_layer:
            pool = spec.default_pool
        model, layer_name, pool_used = feature_model(base, layer, pool)
    provenance = {"model": spec.name, "model_source": "registry", "layer": layer_name, "pool": pool_used,
                  "include_top": include_top, "seed": seed, "precision": precision, **weights_info}
    return model, provenance
