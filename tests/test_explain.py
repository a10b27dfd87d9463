"""explain: the exact CAM against a direct computation, Grad-CAM on a planted patch, TFLite and ONNX refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.explain.cam import class_activation_maps, decision_from_maps, linear_head
from featurebench.explain.gradcam import numeric_gradients
from featurebench.store.writer import write_feature_arrays

REPO = Path(__file__).resolve().parents[1]


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of 32x32 images: class 1 has a bright square somewhere, class 0 none."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, 32, 32, 3)).astype(np.uint8)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, 24, 2)
        images[i, r:r + 8, c:c + 8] = 230
    return images, y


def test_linear_head_and_cam_match_the_classifier_exactly() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    maps = rng.random((40, 5, 6, 7))  # 40 images of (H=5, W=6, D=7) feature maps
    y = np.arange(40) % 3
    for pool, feats in (("avg", maps.mean(axis=(1, 2))), ("flatten", maps.reshape(40, -1))):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(feats, y)
        W, b = linear_head(clf)
        cams = class_activation_maps(maps[0], W, pool)
        assert cams.shape == (3, 5, 6)
        direct = np.zeros((3, 5, 6))  # the definition, written out
        for c in range(3):
            for i in range(5):
                for j in range(6):
                    w = W[c] if pool == "avg" else W[c].reshape(5, 6, 7)[i, j]
                    direct[c, i, j] = sum(w[k] * maps[0, i, j, k] for k in range(7))
        np.testing.assert_allclose(cams, direct, rtol=1e-10)
        np.testing.assert_allclose(decision_from_maps(cams, b, pool), clf.decision_function(feats[:1])[0], rtol=1e-8)
    binary = LogisticRegression().fit(maps.mean(axis=(1, 2)), np.arange(40) % 2)
    W, b = linear_head(binary)
    assert W.shape == (2, 7) and np.allclose(W[0], -W[1])
    from sklearn.neighbors import KNeighborsClassifier

    assert linear_head(KNeighborsClassifier().fit(maps.mean(axis=(1, 2)), y)) is None


def test_numeric_gradients_of_a_known_function() -> None:
    A = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    grads = numeric_gradients(lambda rows: rows @ A.T + np.sum(rows ** 2, axis=1, keepdims=True),
                              np.array([0.2, -0.4, 1.0]), step=1e-3, chunk=2)
    np.testing.assert_allclose(grads, A + 2 * np.array([0.2, -0.4, 1.0]), atol=1e-3)


def test_bundle_cam_is_the_direct_computation_on_a_tiny_keras_model(tiny_model_file: Path, tmp_path: Path) -> None:
    import keras

    from featurebench.explain.explainer import load_explainer
    from featurebench.extractors import load_extractor
    from featurebench.fit.run import run_fit

    from conftest import write_image

    extractor = load_extractor(str(tiny_model_file), layer="conv", pool="avg", engine="tensorflow")
    images, y = _images(40)
    feats = extractor.extract(images)
    attrs = {k: v for k, v in extractor.provenance.items() if isinstance(v, (str, int, float, bool))}
    attrs.update(input_size="[32, 32]", source=str(tmp_path / "src"))
    paths = [str(write_image(tmp_path / "src" / f"img_{i:02d}.png", im).relative_to(tmp_path / "src"))
             for i, im in enumerate(images)]
    y_file = y.copy()
    y_file[34:] = 1 - y_file[34:]  # six wrong test labels: the gallery has mistakes to show
    path = write_feature_arrays(tmp_path / "tiny.h5", feats, y_file, ["plain", "patch"], paths=paths, attrs=attrs)
    run = run_fit(path, "logreg", grid='{"C": [1]}', scale="standard", out=tmp_path / "r", n_jobs=1, n_boot=20)
    explainer = load_explainer(run.run_dir)
    assert explainer.method == "cam" and explainer.layer == "conv"
    result = explainer.explain(images[1], top=2)
    conv = keras.Model(extractor.model.inputs[0], extractor.model.get_layer("conv").output)
    A = np.asarray(conv(images[1:2].astype(np.float32)))[0]
    from featurebench.fit.bundle import load_bundle

    W, _ = linear_head(load_bundle(run.bundle_path).estimator)
    for label, heat in zip(result.labels, result.maps):
        raw = np.tensordot(A, W[["plain", "patch"].index(label)], axes=([2], [0]))
        expected = (raw - raw.min()) / (raw.max() - raw.min())
        np.testing.assert_allclose(heat, expected, atol=1e-5)
    with pytest.raises(FeaturebenchError, match="not a layer of"):
        load_explainer(run.run_dir, layer="no_such_layer")
    knn = run_fit(path, "knn", grid='{"n_neighbors": [3]}', out=tmp_path / "r", n_jobs=1, n_boot=20)
    numeric = load_explainer(knn.run_dir)
    assert (numeric.method, numeric.layer) == ("grad-cam-numeric", "conv")
    maps = numeric.explain(images[1], top=2).maps
    assert len(maps) == 2 and maps[0].shape == (30, 30) and maps[0].min() >= 0
    from featurebench.report.collect import read_run
    from featurebench.report.gallery import mistakes_view

    from typer.testing import CliRunner

    from featurebench.cli import app

    done = CliRunner().invoke(app, ["explain", str(run.run_dir), str(tmp_path / "src" / paths[1]), "--top", "2",
                                    "--out", str(tmp_path / "explain")])
    assert done.exit_code == 0, done.output
    record = json.loads((tmp_path / "explain" / "explain.json").read_text())
    assert record["method"] == "cam" and record["layer"] == "conv" and len(record["images"][0]["pngs"]) == 2
    from PIL import Image

    assert Image.open(record["images"][0]["pngs"][0]).size == (32, 32)
    view = mistakes_view(read_run(run.run_dir, run.run_name), heatmaps=True)
    assert view["n_wrong"] >= 1 and "heatmaps: cam on layer conv" in view["notes"][0]
    assert all(item["src"].startswith("data:image/jpeg;base64,") for item in view["items"])


def test_grad_cam_highlights_a_planted_bright_patch(tmp_path: Path) -> None:
    import keras

    from featurebench.explain.explainer import load_explainer
    from featurebench.finetune.surgery import assemble

    # A fine-tuned network's shape (normalisation -> nested body -> gap head) with hand-set weights:
    # the body's conv fires only on bright pixels, class "patch" is "much brightness".
    body_in = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")
    body = keras.Model(body_in, conv(body_in), name="body")
    model = assemble(body, 2, head="gap", normalization=keras.layers.Rescaling(1 / 255.0))
    conv.set_weights([np.full((3, 3, 3, 4), 1 / 27, np.float32), np.full(4, -0.5, np.float32)])
    model.get_layer("head_predictions").set_weights([
        np.stack([-np.full(4, 40.0), np.full(4, 40.0)], axis=1).astype(np.float32), np.array([1.0, -1.0], np.float32)])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"confusion": {"labels": ["plain", "patch"]}}))
    model.save(run_dir / "model.keras")
    explainer = load_explainer(run_dir)
    assert explainer.method == "grad-cam" and explainer.layer == "body"
    probe = np.full((32, 32, 3), 20, np.uint8)
    probe[20:28, 4:12] = 230
    result = explainer.explain(probe, top=2)
    assert result.labels[0] == "patch"
    heat = result.maps[0]
    inside = heat[20:28, 4:12].mean()
    outside = np.delete(heat.reshape(-1), (np.arange(20, 28)[:, None] * 32 + np.arange(4, 12)).ravel()).mean()
    assert inside > 3 * outside, (inside, outside)
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    assert 18 <= peak[0] < 30 and 2 <= peak[1] < 14


@pytest.mark.parametrize("suffix, magic, kind", [("tflite", b"TFL3", "TFLite"), ("onnx", b"onnx", "ONNX")])
def test_explain_refuses_non_keras_models_clearly(tmp_path: Path, suffix: str, magic: bytes, kind: str) -> None:
    """TFLite and ONNX extractors run on LiteRT / OpenVINO, with no Keras graph to cut or differentiate."""
    from featurebench.explain.explainer import load_explainer
    from featurebench.fit.run import run_fit

    fake = tmp_path / f"model.{suffix}"
    fake.write_bytes(magic)
    with pytest.raises(FeaturebenchError, match=f"Heatmaps need a Keras model.*{kind}"):
        load_explainer(fake)
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    model_path = f"/models/embedding.{suffix}"
    path = write_feature_arrays(tmp_path / "f.h5", rng.normal(size=(60, 4)) + y[:, None], y, ["a", "b"],
                                attrs={"model": f"embedding.{suffix}", "model_source": suffix,
                                       "model_path": model_path})
    run = run_fit(path, "logreg", grid='{"C": [1]}', out=tmp_path / "r", n_jobs=1, n_boot=20)
    with pytest.raises(FeaturebenchError, match=f"Heatmaps need a Keras model, and the bundle .* was trained on "
                       f"features of an? {kind} model \\({model_path}\\), which gives no access"):
        load_explainer(run.bundle_path)
    image = tmp_path / "x.png"
    from conftest import write_image

    write_image(image, np.zeros((8, 8, 3), np.uint8))
    done = subprocess.run([sys.executable, "-m", "featurebench", "explain", str(run.run_dir), str(image)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Heatmaps need a Keras model" in done.stderr and "does not fake them" in done.stderr
