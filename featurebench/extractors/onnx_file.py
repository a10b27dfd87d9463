"""ONNX model files as extractors, run by OpenVINO (which reads ONNX directly).

The bridge to PyTorch models: a timm or torchvision network exported with
``torch.onnx.export`` runs here without torch. The file must have one image input of
fixed height and width, NCHW (PyTorch exports) or NHWC, float or uint8; the batch
dimension may be fixed or dynamic (it is made dynamic). Features are the model's only
output, a named output or any named tensor inside the graph (``--layer``); a 4-D result
is pooled over its spatial axes (``--pool avg|max|flatten``, default avg). The model's
normalisation is the user's to give (``--preprocess``: a named mode or
``mean=R,G,B;std=R,G,B`` on the 0..1 scale); the default is 0..255 floats, like other
model files. The weights identity is the sha256 of the file and of every external data file it
names (``model.onnx.data``: changing it changes the identity, so an interrupted extraction does
not resume with other weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featurebench.data.resize import check_input_size
from featurebench.errors import FeaturebenchError
from featurebench.extractors.base import Extractor
from featurebench.extractors.hashing import file_provenance
from featurebench.extractors.preprocessing import DESCRIPTIONS, get_preprocessor
from featurebench.extractors.spec import POOLS
from featurebench.text import plural

#: Axes of height and width in each input layout.
_SPATIAL = {"NCHW": (2, 3), "NHWC": (1, 2)}


def _input_layout(dims: list[int | None], path: Path) -> str:
    """``NCHW`` or ``NHWC`` from a rank-4 input shape (None = dynamic), by where the 3 channels are."""
    if len(dims) != 4:
        raise FeaturebenchError(f"{path}: the input has shape {dims}; an image model takes a rank-4 batch "
                                "(N, 3, H, W) or (N, H, W, 3).")
    if dims[1] == 3 and dims[3] != 3:
        layout = "NCHW"
    elif dims[3] == 3 and dims[1] != 3:
        layout = "NHWC"
    else:
        raise FeaturebenchError(f"{path}: cannot tell the channel axis of input shape {dims}; export the model "
                                "with 3 channels fixed on axis 1 (NCHW) or axis 3 (NHWC).")
    height, width = (dims[a] for a in _SPATIAL[layout])
    if height is None or width is None:
        raise FeaturebenchError(f"{path}: the input's height and width are dynamic ({dims}); re-export it with a "
                                "fixed image size (e.g. torch.onnx.export with a 224x224 example and no dynamic "
                                "axes except the batch).")
    return layout


def _static_dims(partial_shape: Any) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in partial_shape]


class ONNXExtractor(Extractor):
    """One ONNX file compiled by OpenVINO for the CPU (fp32), reading one tensor per batch."""

    def __init__(self, path: Path, layer: str | None = None, pool: str | None = None,
                 preprocess: str | None = None, batch_size: int = 32):
        from featurebench.extractors.openvino_engine import compile_for_cpu, import_openvino, openvino_version

        ov = import_openvino()
        try:
            model = ov.Core().read_model(str(path))
        except Exception as exc:  # noqa: BLE001 - the ONNX frontend raises many types
            raise FeaturebenchError(f"OpenVINO cannot read {path} as an ONNX model "
                                    f"({type(exc).__name__}: {str(exc).strip()[:300]})") from None
        if len(model.inputs) != 1:
            names = ", ".join(i.get_any_name() for i in model.inputs)
            raise FeaturebenchError(f"{path} has {len(model.inputs)} inputs ({names}); featurebench feeds one "
                                    "image batch.")
        port = model.inputs[0]
        dims = _static_dims(port.get_partial_shape())
        self.layout = _input_layout(dims, path)
        self.input_size = tuple(int(dims[a]) for a in _SPATIAL[self.layout])
        check_input_size(*self.input_size, str(path))
        output_name = self._select_output(model, layer, path)
        model.reshape({port: ov.PartialShape([-1, *dims[1:]])})  # any batch size, the last one too
        output = next(o for o in model.outputs if output_name in o.get_names())
        out_dims = _static_dims(output.get_partial_shape())
        if any(d is None for d in out_dims[1:]):
            raise FeaturebenchError(f"{path}: tensor {output_name} has a dynamic shape {out_dims} (only the batch, "
                                    "axis 0, may vary: features need the batch first); pick a tensor of fixed size "
                                    "with --layer.")
        if not out_dims or 0 in out_dims[1:]:
            raise FeaturebenchError(f"{path}: tensor {output_name} has shape {out_dims}; features need a batch axis "
                                    "first and at least one value per image; pick another tensor with --layer.")
        if pool is not None and pool not in POOLS:
            raise FeaturebenchError(f"--pool {pool!r} is not one of {', '.join(POOLS)}")
        self.pool = (pool or "avg") if len(out_dims) == 4 else ("none" if len(out_dims) == 2 else "flatten")
        channels_axis = 1 if self.layout == "NCHW" else 3
        self.feature_dim = (int(out_dims[channels_axis]) if self.pool in ("avg", "max")
                            else int(np.prod(out_dims[1:])))
        is_uint8 = port.get_element_type() == ov.Type.u8
        self.preprocessing = preprocess or ("uint8" if is_uint8 else "none")
        self.preprocess_fn = get_preprocessor(self.preprocessing)
        self._input_dtype = np.uint8 if is_uint8 else np.float32
        self.batch_size = batch_size
        try:
            compiled = compile_for_cpu(model, "fp32")
        except Exception as exc:  # noqa: BLE001
            raise FeaturebenchError(f"OpenVINO could not compile {path} for the CPU "
                                    f"({type(exc).__name__}: {str(exc).strip()[:300]})") from None
        self._output = compiled.outputs[list(model.outputs).index(output)]
        self._request = compiled.create_infer_request()
        self._probe(path, output_name)
        self._provenance = {**file_provenance(path, "onnx"), "layer": output_name, "pool": self.pool,
                            "input_size": list(self.input_size), "input_layout": self.layout,
                            "feature_dim": self.feature_dim, "preprocessing": self.preprocessing,
                            "preprocessing_description": DESCRIPTIONS.get(self.preprocessing, self.preprocessing),
                            "backend": "onnx", "engine": "openvino", "precision": "fp32",
                            "openvino_version": openvino_version()}

    @staticmethod
    def _select_output(model: Any, layer: str | None, path: Path) -> str:
        """The name of the tensor to read: the only output, a named output, or an inner tensor
        (added as an output)."""
        outputs = {name: out for out in model.outputs for name in out.get_names()}
        listed = ", ".join(sorted(outputs))
        if layer is None:
            if len(model.outputs) != 1:
                raise FeaturebenchError(f"{path} has {len(model.outputs)} outputs ({listed}); pick one with --layer.")
            return model.outputs[0].get_any_name()
        if layer in outputs:
            return layer
        try:
            model.add_outputs([layer])
        except Exception:  # noqa: BLE001 - OpenVINO raises RuntimeError-like types for unknown names
            raise FeaturebenchError(f"{path} has no tensor named {layer!r}; its outputs are {listed} (--layer takes "
                                    "an output or any named tensor of the graph, e.g. from Netron).") from None
        return layer

    def _probe(self, path: Path, output_name: str) -> None:
        """Run two blank images once: the tensor must have one row of ``feature_dim`` values per
        image (a tensor that is not batch-first, or reduces over the batch, is refused before any
        image is decoded)."""
        blank = self.prepare(np.zeros((2, *self.input_size, 3), np.uint8))
        shape = tuple(self._request.infer({0: blank}, share_inputs=False, share_outputs=False)[self._output].shape)
        if len(shape) < 1 or shape[0] != 2 or int(np.prod(shape)) != 2 * self.feature_dim * (
                np.prod([shape[a] for a in _SPATIAL[self.layout]]) if self.pool in ("avg", "max") else 1):
            raise FeaturebenchError(f"{path}: tensor {output_name} gives shape {shape} for a batch of 2 images; "
                                    f"features need the batch first ({plural(self.feature_dim, 'value')} per image); export "
                                    "the model with the batch as axis 0, or pick another tensor with --layer.")

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Preprocess, put the channels where the model wants them, make it contiguous."""
        x = self.preprocess(images)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=self._input_dtype)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        out = self._request.infer({0: batch}, share_inputs=True, share_outputs=False)[self._output]
        if self.pool == "avg":
            out = out.mean(axis=_SPATIAL[self.layout], dtype=np.float32)
        elif self.pool == "max":
            out = out.max(axis=_SPATIAL[self.layout])
        return out.reshape(len(batch), -1)

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)
