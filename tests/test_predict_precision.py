"""predict scores new images with the extractor settings the training features were made with.

A bundle fitted on int8 features runs the quantised model ``fit`` copied into the run folder
(checked against its digests; refused in one line when missing or changed), bf16 features are
predicted in bf16, reduced-size decodes with the reduced-size decode, and bundles that record
none of it (made before) run fp32 with a full decode, as they always did.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import make_class_folders
from featurebench.errors import FeaturebenchError

pytest.importorskip("nncf", reason="the [int8] extra (NNCF) is not installed: pip install -e '.[int8]'")


def _stored(features: Path, rows: slice) -> tuple[list[str], np.ndarray]:
    """The relative paths and feature rows ``rows`` of a feature file."""
    from featurebench.store.reader import open_feature_file

    with open_feature_file(features) as ff:
        return list(ff.paths[rows]), ff.read_rows(rows.start, rows.stop)


def _predicted_scores(result, label_names: list[str]) -> np.ndarray:
    """Each prediction's scores in class order (predict lists them best first)."""
    return np.array([[dict(zip(p.labels, p.scores))[name] for name in label_names] for p in result.predictions])


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory, tiny_model_file):
    """int8 features of 160 images (a private calibration cache) and a logreg bundle fitted on them."""
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import run_fit

    root = tmp_path_factory.mktemp("int8-predict")
    data = make_class_folders(root / "data", per_class=80, size=(40, 56))
    features = root / "int8.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATUREBENCH_CACHE", str(root / "cache"))
        run_extract(ExtractOptions(str(data), str(features), model=str(tiny_model_file), precision="int8",
                                   command="pytest"))
    run = run_fit(features, "logreg", grid='{"C": [100]}', cv=2, n_jobs=1, out=root / "runs")
    return {"root": root, "data": data, "features": features, "run": run}


def test_an_int8_bundle_predicts_with_its_own_quantised_model(int8_run, tmp_path, capsys):
    from featurebench.fit import load_bundle, predict_images
    from featurebench.fit.predict import build_extractor

    bundle_dir = int8_run["run"].bundle_path.parent
    bundle = load_bundle(bundle_dir)
    # The run folder is self-contained: moved, and with the calibration cache gone, it predicts the
    # train images' stored int8 features' scores (the fp32 network's differ by more than the tolerance).
    shutil.rmtree(int8_run["root"] / "cache")
    moved = shutil.copytree(bundle_dir, tmp_path / "moved")
    paths, rows = _stored(int8_run["features"], slice(0, 5))
    images = [int8_run["data"] / path for path in paths]
    messages: list[str] = []
    result = predict_images(moved, images, top=2, say=messages.append)
    assert [Path(p.path).name for p in result.predictions] == [Path(p).name for p in paths]
    np.testing.assert_allclose(_predicted_scores(result, bundle.label_names), bundle.estimator.predict_proba(rows),
                               rtol=1e-5, atol=1e-6)
    assert any("in int8" in m and "quantised model saved with the bundle" in m for m in messages), messages
    assert bundle.extractor["precision"] == "int8" and sorted(p.name for p in (moved / "int8").iterdir()) == [
        "calibration.json", "model.bin", "model.xml"]
    extractor = build_extractor(load_bundle(moved).extractor, bundle_dir=moved)
    assert extractor.provenance["precision"] == "int8"
    np.testing.assert_allclose(extractor.extract(np.stack([_decode(p) for p in images])), rows, rtol=1e-5, atol=1e-5)


def _decode(path: Path) -> np.ndarray:
    """One image as extract decodes it for the tiny model (32x32, stretched)."""
    from featurebench.data.pipeline import DecodeOptions, load_image

    return load_image(str(path), DecodeOptions((32, 32), "stretch"))


def test_int8_bundle_with_its_model_changed_or_gone_is_refused(int8_run, tmp_path):
    from featurebench.fit import predict_images

    image = next((int8_run["data"] / "cat").iterdir())
    tampered = shutil.copytree(int8_run["run"].bundle_path.parent, tmp_path / "tampered")
    data = bytearray((tampered / "int8" / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "int8" / "model.bin").write_bytes(bytes(data))
    with pytest.raises(FeaturebenchError, match=r"int8 bundle: .*tampered/int8 .* \(model\.bin: .*re-extract with "
                                                r"--precision fp32 and refit"):
        predict_images(tampered, [image])
    shutil.rmtree(tampered / "int8")
    with pytest.raises(FeaturebenchError, match=r"\(model\.bin: missing vs "):
        predict_images(tampered, [image])


def test_fit_without_the_cache_entry_records_it_and_predict_refuses(int8_run, tmp_path, tiny_model_file):
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import load_bundle, predict_images, run_fit

    features = tmp_path / "int8.h5"
    small = make_class_folders(tmp_path / "data", per_class=75, size=(40, 56), seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATUREBENCH_CACHE", str(tmp_path / "cache"))
        patch.setattr("featurebench.extractors.int8.quantize", lambda model, images, prepare: model)  # fast stand-in
        run_extract(ExtractOptions(str(small), str(features), model=str(tiny_model_file), precision="int8",
                                   command="pytest"))
    shutil.rmtree(tmp_path / "cache")
    run = run_fit(features, "logreg", grid='{"C": [1]}', cv=2, n_jobs=1, out=tmp_path / "runs")
    assert any("quantised model they were made with is not in the bundle" in w and "is gone" in w
               for w in run.warnings), run.warnings
    assert "int8_model_missing" in load_bundle(run.bundle_path).extractor
    assert not (run.bundle_path.parent / "int8").exists()
    with pytest.raises(FeaturebenchError, match=r"fitted on int8 features, but the quantised model .* was not saved "
                                                r"with it \(its calibration cache entry .* is gone"):
        predict_images(run.bundle_path, [next((small / "cat").iterdir())])


def test_a_bundle_that_records_no_precision_predicts_at_fp32(int8_run, tmp_path, tiny_model_file):
    """Bundles fitted before the precision was recorded keep today's behaviour (fp32, full decode)."""
    from featurebench.extractors import load_extractor
    from featurebench.fit import load_bundle, predict_images, save_bundle

    bundle = load_bundle(int8_run["run"].bundle_path)
    old_spec = {k: v for k, v in bundle.extractor.items()
                if k not in ("precision", "fast_decode") and not k.startswith("int8_")}
    old = save_bundle(tmp_path / "model.skops", bundle.estimator, bundle.label_names, old_spec, bundle.classifier)
    paths, int8_rows = _stored(int8_run["features"], slice(0, 3))
    images = [int8_run["data"] / path for path in paths]
    messages: list[str] = []
    result = predict_images(old, images, top=2, say=messages.append)
    fp32 = load_extractor(str(tiny_model_file)).extract(np.stack([_decode(p) for p in images]))
    np.testing.assert_allclose(_predicted_scores(result, bundle.label_names), bundle.estimator.predict_proba(fp32),
                               rtol=1e-5, atol=1e-6)
    assert not any("Running the extractor in" in m for m in messages)
    # The tolerance the int8 test uses tells the two apart: fp32 scores are not the int8 rows' scores.
    assert not np.allclose(bundle.estimator.predict_proba(fp32), bundle.estimator.predict_proba(int8_rows),
                           rtol=1e-5, atol=1e-6)


def test_bf16_and_reduced_size_decode_are_predicted_as_extracted(tmp_path):
    """A registry model's bf16 features of large JPEGs decoded at reduced size: predict's features
    for the train images are the stored ones (on a CPU without bf16 the file records fp32, and so
    does predict)."""
    from finetune_support import register_tiny

    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import load_bundle, predict_images, run_fit

    data = make_class_folders(tmp_path / "data", per_class=6, size=(200, 240))  # 1/4-scale decodes >= 24 px
    features = tmp_path / "bf16.h5"
    run_extract(ExtractOptions(str(data), str(features), model=register_tiny(), weights="none", precision="bf16",
                               fast_decode=True, command="pytest"))
    run = run_fit(features, "logreg", grid='{"C": [100]}', cv=2, n_jobs=1, out=tmp_path / "runs")
    bundle = load_bundle(run.bundle_path)
    paths, rows = _stored(features, slice(0, 4))
    messages: list[str] = []
    result = predict_images(run.bundle_path, [data / path for path in paths], top=2, say=messages.append)
    np.testing.assert_allclose(_predicted_scores(result, bundle.label_names), bundle.estimator.predict_proba(rows),
                               rtol=1e-5, atol=1e-6)
    assert bundle.extractor["fast_decode"] in (True, "True") and bundle.extractor["precision"] in ("bf16", "fp32")
    assert any(f"in {bundle.extractor['precision']} with the reduced-size JPEG decode" in m for m in messages)
