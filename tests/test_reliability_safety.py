"""Safe loading: hostile model bundles are refused with a clear message unless trusted;
hostile names from the corpus render as text in reports.

Covered elsewhere (not repeated here): Keras model files with Lambda layers need
``unsafe_model=True`` (tests/test_extractors.py::test_keras_file_with_lambda_needs_opt_in);
CSV paths outside the dataset root are skipped unless ``--allow-outside-root``
(tests/test_sources.py::test_csv_table_with_header_and_root_escape); a bundle whose
schema was edited to name ``os.system`` is refused (tests/test_fit.py::
test_bundle_round_trip_and_tampered_bundle_is_refused).
"""

from __future__ import annotations

import operator
import pickle
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import corpus as C
from featurebench.errors import FeaturebenchError

bundle_mod = pytest.importorskip("featurebench.fit.bundle")


def _estimator():
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]])
    return LogisticRegression().fit(X, [0, 1, 0, 1]), X


@pytest.fixture()
def good_bundle(tmp_path: Path) -> Path:
    estimator, _ = _estimator()
    return bundle_mod.save_bundle(tmp_path / "good.skops", estimator, ["cat", "dog"], {"model": "tiny"}, "logreg")


class _OpensAFile:
    """Unpickling this creates a file: the stand-in for arbitrary code in a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _hostile_bundles(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a fragment the refusal must contain)."""
    estimator, _ = _estimator()
    marker = tmp_path / "pwned"
    out: dict[str, tuple[Path, str]] = {}
    pickled = tmp_path / "pickled.skops"
    pickled.write_bytes(pickle.dumps({"estimator": estimator, "payload": _OpensAFile(marker)}))
    out["pickle named .skops"] = (pickled, "not a skops model bundle")
    joblib_like = tmp_path / "model.pkl"
    joblib_like.write_bytes(pickle.dumps(_OpensAFile(marker)))
    out["pickle .pkl"] = (joblib_like, "not a skops model bundle")
    data = good.read_bytes()
    half = tmp_path / "half.skops"
    half.write_bytes(data[: len(data) // 2])
    out["truncated bundle"] = (half, "not a skops model bundle")
    empty = tmp_path / "empty.skops"
    empty.write_bytes(b"")
    out["zero bytes"] = (empty, "not a skops model bundle")
    folder = tmp_path / "folder.skops"
    folder.mkdir()
    out["a folder"] = (folder, "is a folder without model.skops")
    foreign = tmp_path / "foreign.skops"
    import skops.io as sio

    sio.dump({"just": "a dict"}, foreign)
    out["skops file that is not a bundle"] = (foreign, "not a featurebench bundle")
    smuggled = tmp_path / "smuggled.skops"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(smuggled, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item))
        dst.writestr("extra.pkl", pickle.dumps(_OpensAFile(marker)))  # never read by skops
    out["bundle with a pickle member"] = (smuggled, "")
    return out


def test_hostile_bundles_are_refused_and_run_no_code(tmp_path, good_bundle):
    marker = tmp_path / "pwned"
    for name, (path, fragment) in _hostile_bundles(tmp_path, good_bundle).items():
        if not fragment:  # loads the safe part only; the pickle member is ignored, never unpickled
            assert bundle_mod.load_bundle(path).label_names == ["cat", "dog"], name
            continue
        with pytest.raises(FeaturebenchError) as info:
            bundle_mod.load_bundle(path)
        message = str(info.value)
        assert fragment in message and path.name in message, (name, message)
    assert not marker.exists(), "loading a bundle ran code from a pickle"


def test_untrusted_type_needs_trust_then_loads(tmp_path):
    """A bundle holding a type outside the allow-list (here ``operator.neg`` in a pipeline) is refused
    naming the type; with ``trust=True`` it loads and predicts."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    estimator, X = _estimator()
    pipeline = make_pipeline(FunctionTransformer(operator.neg), estimator.__class__()).fit(X, [0, 1, 0, 1])
    path = bundle_mod.save_bundle(tmp_path / "custom.skops", pipeline, ["cat", "dog"], {"model": "tiny"})
    with pytest.raises(FeaturebenchError, match=r"Refusing to load .*custom\.skops.*_operator\.neg.*trust"):
        bundle_mod.load_bundle(path)
    loaded = bundle_mod.load_bundle(path, trust=True)
    np.testing.assert_array_equal(loaded.estimator.predict(X), pipeline.predict(X))


def test_bundle_from_a_newer_featurebench_is_refused(tmp_path):
    import skops.io as sio

    estimator, _ = _estimator()
    path = tmp_path / "future.skops"
    sio.dump({"format": bundle_mod.BUNDLE_FORMAT, "version": bundle_mod.BUNDLE_VERSION + 1, "estimator": estimator,
              "label_names": ["a", "b"], "extractor": {}, "meta": {}}, path)
    with pytest.raises(FeaturebenchError, match="Upgrade featurebench"):
        bundle_mod.load_bundle(path)


def test_predict_refuses_a_pickle_before_doing_anything(tmp_path):
    predict = pytest.importorskip("featurebench.fit.predict")
    marker = tmp_path / "pwned"
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(_OpensAFile(marker)))
    with pytest.raises(FeaturebenchError, match="not a skops model bundle"):
        predict.predict_images(path, [tmp_path])
    assert not marker.exists()


# --- reports: the corpus' hostile names are text, never markup ------------------------------------

class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_report_renders_corpus_hostile_names_as_text(tmp_path):
    pytest.importorskip("featurebench.report")
    from fixtures_report import make_metrics, write_run

    from featurebench.report import build_report

    dataset = f"{C.NEWLINE} {C.HTML} {C.UNICODE}"
    record = make_metrics("hostile-run", dataset=dataset, labels=list(C.HOSTILE_CLASS_NAMES))
    write_run(tmp_path / "results", record)
    build_report(tmp_path / "results", tmp_path / "r.html", md_path=tmp_path / "r.md", csv_path=tmp_path / "r.csv",
                 plots=False)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "<img src=x" not in html and "<img src=x" not in markdown
    parser = _Text()
    parser.feed(html)
    text = "".join(parser.text)
    for name in (C.HTML, C.UNICODE, C.MARKUP):
        assert name in text, name  # shown, as text
    assert not [attrs for _, attrs in parser.tags if any(key.startswith("on") for key in attrs)]
    for line in markdown.splitlines():  # a newline in a name must not break a table row
        if line.startswith("|") and "hostile-run" in line:
            assert line.endswith("|")
