"""featurebench predict: bundle -> rebuilt extractor -> top-k labels; unreadable files listed, not fatal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_image

from featurebench.errors import FeaturebenchError
from featurebench.fit.bundle import save_bundle
from featurebench.fit.predict import (PredictResult, Prediction, build_extractor, collect_images,
                                      format_predictions, predict_images, write_predictions_csv)


def test_collect_images_walks_folders_and_reports_missing(tmp_path: Path) -> None:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    for name in ("a/x.jpg", "a/sub/y.PNG", "a/.hidden.jpg", "a/notes.txt", "z.bmp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    files, missing = collect_images([tmp_path / "a", tmp_path / "z.bmp", tmp_path / "nope.jpg", tmp_path / "empty"])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == ["a/sub/y.PNG", "a/x.jpg", "z.bmp"]
    assert dict(missing) == {str(tmp_path / "nope.jpg"): "no such file or folder",
                             str(tmp_path / "empty"): "folder holds no image files"}


def test_csv_and_text_output(tmp_path: Path) -> None:
    result = PredictResult([Prediction("/img/a.jpg", ["cat", "dog"], [0.9, 0.1])],
                           [("/img/b.jpg", "cannot identify image file")], "probability", 2)
    lines = write_predictions_csv(result, tmp_path / "p.csv").read_text().splitlines()
    assert lines == ["path,top1,score1,top2,score2,error", "/img/a.jpg,cat,0.9,dog,0.1,",
                     "/img/b.jpg,,,,,cannot identify image file"]
    text = format_predictions(result)
    assert "cat 0.900, dog 0.100" in text and "UNREADABLE: cannot identify image file" in text


def test_moved_model_file_is_a_clear_error(tmp_path: Path) -> None:
    spec = {"model": "gone.tflite", "model_source": "tflite", "model_path": str(tmp_path / "gone.tflite"),
            "layer": "out", "pool": "none", "preprocessing": "uint8"}
    with pytest.raises(FeaturebenchError, match="not there any more.*--model"):
        build_extractor(spec)
    with pytest.raises(FeaturebenchError, match="weights file 'w.h5'.*--weights"):
        build_extractor({"model": "resnet50", "model_source": "registry", "weights": "file:w.h5"})


def test_predict_with_a_keras_model_file_end_to_end(class_folders: Path, tiny_model_file: Path,
                                                    tmp_path: Path) -> None:
    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import load_bundle, run_fit

    features = tmp_path / "tiny.h5"
    run_extract(ExtractOptions(source=str(class_folders), output=str(features), model=str(tiny_model_file),
                               command="pytest"))
    run = run_fit(features, "logreg", grid='{"C": [1, 100]}', cv=2, n_jobs=1, out=tmp_path / "runs")
    bundle = load_bundle(run.bundle_path)
    assert bundle.extractor["model_source"] == "keras-file" and bundle.extractor["input_size"] == [32, 32]
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    images = sorted(class_folders.rglob("*.jpg"))
    result = predict_images(run.bundle_path, [class_folders / "cat", images[-1], tmp_path / "bad.jpg"], top=5)
    assert result.top == 2  # capped by the number of classes
    assert len(result.predictions) == 7 and [p for p, _ in result.unreadable] == [str(tmp_path / "bad.jpg")]
    cats = [p for p in result.predictions if "/cat/" in p.path]
    assert np.mean([p.labels[0] == "cat" for p in cats]) >= 5 / 6
    assert all(abs(sum(p.scores) - 1) < 1e-5 for p in result.predictions)
    # The features match the stored ones: same decoder, resize and preprocessing as extract.
    from featurebench.store.reader import open_feature_file

    with open_feature_file(features) as ff:
        stored = bundle.estimator.predict_proba(ff.read_rows(0, 1))[0]
        first = class_folders / ff.paths[0]
    again = predict_images(bundle, [first], top=2)
    np.testing.assert_allclose(sorted(again.predictions[0].scores), sorted(stored), atol=1e-5)


def test_feature_dimension_mismatch_is_refused(tiny_model_file: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression().fit(np.random.default_rng(0).normal(size=(10, 5)), [0, 1] * 5)
    spec = {"model": tiny_model_file.name, "model_source": "keras-file", "model_path": str(tiny_model_file),
            "layer": "embedding", "pool": "none", "preprocessing": "none", "input_size": [32, 32]}
    path = save_bundle(tmp_path / "m.skops", est, ["a", "b"], spec, "logreg")
    write_image(tmp_path / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FeaturebenchError, match="8-d features but the bundle's classifier expects 5-d"):
        predict_images(path, [tmp_path], top=1)


def test_non_regular_files_inside_folders_are_listed_not_left_out(tmp_path: Path) -> None:
    import os

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ok.jpg").write_bytes(b"")
    os.mkfifo(tmp_path / "in" / "pipe.jpg")
    (tmp_path / "in" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    files, missing = collect_images([tmp_path / "in"])
    assert files == [str(tmp_path / "in" / "ok.jpg")]
    assert dict(missing) == {str(tmp_path / "in" / "pipe.jpg"): "not a regular file",
                             str(tmp_path / "in" / "gone.jpg"): "broken link"}



def test_cli_lists_results_in_the_order_given_and_fails_on_a_missing_path(class_folders: Path,
                                                                          tiny_tflite_file: Path,
                                                                          tmp_path: Path) -> None:
    """Results come back in the order the inputs were named (not sorted); a path that does not exist
    is an error (exit 2) after the other results; the model loading is announced on stderr."""
    import subprocess
    import sys

    from featurebench.extract import ExtractOptions, run_extract
    from featurebench.fit import run_fit

    features = tmp_path / "tiny.h5"
    run_extract(ExtractOptions(source=str(class_folders), output=str(features), model=str(tiny_tflite_file),
                               command="pytest"))
    run = run_fit(features, "logreg", grid='{"C": [1]}', cv=2, n_jobs=1, out=tmp_path / "runs")
    dog, cat = class_folders / "dog" / "dog_001.jpg", class_folders / "cat" / "cat_000.jpg"
    done = subprocess.run([sys.executable, "-m", "featurebench", "predict", str(run.bundle_path), str(dog),
                           str(tmp_path / "nope.jpg"), str(cat)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == [str(dog), str(tmp_path / "nope.jpg"),
                                                                         str(cat)]
    assert "Loading the extractor tiny.tflite for 2 images" in done.stderr
    assert f"No such file or folder: {tmp_path / 'nope.jpg'}" in done.stderr and "Traceback" not in done.stderr
