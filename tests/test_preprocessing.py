"""Each named preprocessing mode equals the Keras ``preprocess_input`` it stands for."""

from __future__ import annotations

import numpy as np
import pytest

from featurebench.extractors import get_spec, list_specs
from featurebench.extractors.preprocessing import PREPROCESSORS

KERAS_MODULE = {
    "vgg16": "vgg16", "vgg19": "vgg19", "resnet50": "resnet50", "resnet50v2": "resnet_v2",
    "mobilenet": "mobilenet", "mobilenetv2": "mobilenet_v2", "inceptionv3": "inception_v3",
    "xception": "xception", "efficientnetb0": "efficientnet", "densenet121": "densenet",
}


@pytest.mark.parametrize("name", sorted(KERAS_MODULE))
def test_spec_preprocessing_matches_keras(name: str):
    import importlib

    keras_fn = importlib.import_module(f"keras.applications.{KERAS_MODULE[name]}").preprocess_input
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    ours = PREPROCESSORS[get_spec(name).preprocessing](images)
    theirs = np.asarray(keras_fn(images.astype(np.float32).copy()))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_every_registered_spec_names_a_known_preprocessing():
    for spec in list_specs():
        assert spec.preprocessing in PREPROCESSORS, spec.name
