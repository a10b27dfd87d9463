"""Extractor backends: registry shapes, weights errors, model files, TFLite, the sklearn transformer."""

from __future__ import annotations


import numpy as np
import pytest

from featurebench.errors import FeaturebenchError
from featurebench.extractors import FeatureExtractor, list_specs, load_extractor

REGISTRY_NAMES = [spec.name for spec in list_specs()]


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_registry_model_feature_shape_and_dtype(name: str):
    extractor = load_extractor(name, weights="none")
    spec = next(s for s in list_specs() if s.name == name)
    image = np.random.default_rng(0).integers(0, 256, (1, *extractor.input_size, 3), dtype=np.uint8)
    features = extractor.extract(image)
    assert extractor.input_size == (spec.input_size, spec.input_size)
    assert features.shape == (1, spec.feature_dim) and features.dtype == np.float32
    assert extractor.provenance["random_init"] is True
    assert extractor.provenance["preprocessing"] == spec.preprocessing


def test_layer_and_pool_choices():
    avg = load_extractor("mobilenet", weights="none", layer="conv_pw_13_relu", pool="avg")
    flat = load_extractor("mobilenet", weights="none", layer="conv_pw_13_relu", pool="flatten")
    assert avg.feature_dim == 1024 and flat.feature_dim == 7 * 7 * 1024
    fc = load_extractor("vgg16", weights="none", layer="fc2")
    assert fc.feature_dim == 4096 and fc.provenance["include_top"] is True
    with pytest.raises(FeaturebenchError, match="not found"):
        load_extractor("mobilenet", weights="none", layer="no_such_layer")


def test_imagenet_weights_offline_error_is_actionable(monkeypatch, tmp_path, capsys):
    import sys

    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        sys.stdout.write("Downloading data from https://storage.googleapis.com/x.h5\n")  # as Keras does
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FeaturebenchError) as info:
        load_extractor("resnet50", weights="imagenet")
    message = str(info.value)
    assert str(tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "--weights PATH" in message and "--weights none" in message
    assert capsys.readouterr().out == ""  # Keras' download line is not a result


def test_local_weights_file_and_seeded_random_init(tmp_path):
    first = load_extractor("mobilenet", weights="none", seed=3)
    again = load_extractor("mobilenet", weights="none", seed=3)
    image = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_array_equal(first.model.get_weights()[0], again.model.get_weights()[0])
    weights = tmp_path / "mine.weights.h5"
    first.model.save_weights(weights)
    loaded = load_extractor("mobilenet", weights=str(weights))
    np.testing.assert_allclose(loaded.extract(image), first.extract(image), rtol=1e-5, atol=1e-6)
    assert loaded.provenance["weights"] == "file:mine.weights.h5" and len(loaded.provenance["weights_sha256"]) == 64
    with pytest.raises(FeaturebenchError, match="no such file"):
        load_extractor("mobilenet", weights=str(tmp_path / "missing.h5"))


def test_keras_file_with_lambda_needs_opt_in(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Flatten()(outputs)).save(path)
    with pytest.raises(FeaturebenchError, match="--unsafe-model"):
        load_extractor(str(path))
    extractor = load_extractor(str(path), unsafe_model=True, preprocess="none")
    assert extractor.extract(np.ones((1, 8, 8, 3), np.uint8)).max() == 2.0


def test_savedmodel_folder(tmp_path, tiny_model_file):
    import keras

    model = keras.models.load_model(tiny_model_file)
    folder = tmp_path / "saved"
    model.export(folder)
    extractor = load_extractor(str(folder))
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(extractor.extract(images), model.predict(images.astype(np.float32), verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_feature_extractor_in_a_pipeline(class_folders, tiny_model_file):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    paths = sorted(class_folders.rglob("*.jpg"))
    labels = [p.parent.name for p in paths]
    pipe = Pipeline([("features", FeatureExtractor(model=str(tiny_model_file), batch_size=4)),
                     ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(paths, labels)
    assert pipe.named_steps["features"].n_features_out_ == 8
    assert pipe.score(paths, labels) >= 0.9
    arrays = np.stack([np.asarray(__import__("PIL.Image").Image.open(p)) for p in paths[:2]])
    np.testing.assert_allclose(pipe.named_steps["features"].transform(arrays),
                               pipe.named_steps["features"].transform(paths[:2]), atol=1e-5)
    with pytest.raises(FeaturebenchError, match="missing.jpg"):
        pipe.named_steps["features"].transform([class_folders / "missing.jpg"])


# -- the real ImageNet-pretrained Coral TFLite models from ../shared ---------------------------


def test_coral_classifier_recognises_grace_hopper(shared_dir):
    """Decoding, resizing and uint8 quantisation are right if the real classifier gets the photo right."""
    from featurebench.data.pipeline import DecodeOptions, load_image

    model = shared_dir / "models" / "coral" / "mobilenet_v2_1.0_224_quant.tflite"
    labels = (shared_dir / "models" / "coral" / "imagenet_labels.txt").read_text().splitlines()
    extractor = load_extractor(str(model))
    samples = shared_dir / "images" / "samples"
    images = np.stack([load_image(samples / name, DecodeOptions(extractor.input_size))
                       for name in ("grace_hopper.bmp", "cat.bmp", "parrot.jpg")])
    probabilities = extractor.extract(images)
    top = probabilities.argmax(axis=1)
    assert top[0] == 653 and "uniform" in labels[653]
    assert "cat" in labels[top[1]].lower()
    assert top[2] in range(81, 102), labels[top[2]]  # ImageNet birds incl. macaw/lorikeet (index+1 for background)


def test_coral_penultimate_layer_by_name_and_index(shared_dir):
    model = shared_dir / "models" / "coral" / "mobilenet_v2_1.0_224_quant.tflite"
    by_name = load_extractor(str(model), layer="MobilenetV2/Logits/AvgPool")
    by_index = load_extractor(str(model), layer=str(by_name._output["index"]))
    image = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert by_name.feature_dim == 1280
    np.testing.assert_array_equal(by_name.extract(image), by_index.extract(image))
    with pytest.raises(FeaturebenchError, match="No tensor named"):
        load_extractor(str(model), layer="NoSuchTensor")


def test_coral_embedding_extractor_end_to_end(shared_dir, coral_extractor_path, tmp_path):
    """extract on real photos with the real 1,024-d MobileNet v1: dequantised, non-degenerate features."""
    import h5py

    from featurebench.extract import ExtractOptions, run_extract

    samples = shared_dir / "images" / "samples"
    table = tmp_path / "samples.csv"
    table.write_text("path,label\n" + "".join(f"{p.name},{p.stem}\n" for p in sorted(samples.iterdir())
                                              if p.suffix in (".jpg", ".bmp")))
    summary = run_extract(ExtractOptions(str(table), str(tmp_path / "s.h5"), str(coral_extractor_path),
                                         root=str(samples)))
    assert summary.n_rows == 4 and summary.n_skipped == 0
    with h5py.File(tmp_path / "s.h5") as h5:
        features = h5["features"][()]
        assert features.shape == (4, 1024) and features.dtype == np.float32
        assert h5.attrs["preprocessing"] == "uint8" and h5.attrs["backend"] == "litert"
    # Dequantised activations are non-negative (ReLU6 before the pool) and differ between photos.
    assert features.min() >= 0 and features.std(axis=0).mean() > 0.05
    cosine = features @ features.T / np.outer(np.linalg.norm(features, axis=1), np.linalg.norm(features, axis=1))
    assert cosine[np.triu_indices(4, 1)].max() < 0.95
