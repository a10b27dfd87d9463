"""``featurebench extract`` end to end on small generated sets with a tiny Keras model file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import write_image
from featurebench.errors import FeaturebenchError
from featurebench.extract import ExtractOptions, run_extract
from featurebench.store.format import REQUIRED_ATTRS


def extract(source, output, model, **kwargs):
    return run_extract(ExtractOptions(source=str(source), output=str(output), model=str(model), **kwargs))


def read(path: Path) -> dict:
    """Read a feature file with plain h5py, as a user would."""
    with h5py.File(path, "r") as h5:
        return {
            "features": h5["features"][()], "labels": h5["labels"][()],
            "label_names": [s.decode() for s in h5["label_names"][()]],
            "paths": [s.decode() for s in h5["paths"][()]],
            "skipped": list(zip([s.decode() for s in h5["skipped/path"][()]],
                                [s.decode() for s in h5["skipped/reason"][()]])),
            "attrs": dict(h5.attrs),
        }


def test_class_folders_to_self_describing_file(tmp_path, class_folders, tiny_model_file):
    summary = extract(class_folders, tmp_path / "f.h5", tiny_model_file, batch_size=5)
    data = read(tmp_path / "f.h5")
    assert summary.n_rows == 12 and summary.n_skipped == 0
    assert data["features"].shape == (12, 8) and data["features"].dtype == np.float32
    assert data["label_names"] == ["cat", "dog"]
    assert sorted(data["paths"]) == sorted(p.relative_to(class_folders).as_posix()
                                           for p in class_folders.rglob("*.jpg"))
    for path, label in zip(data["paths"], data["labels"]):
        assert path.startswith(data["label_names"][label] + "/")
    attrs = data["attrs"]
    assert set(REQUIRED_ATTRS) <= set(attrs)
    assert attrs["complete"] and attrs["split_index"] == 9 and attrs["seed"] == 42
    assert attrs["model"] == "tiny.keras" and attrs["layer"] == "embedding" and attrs["preprocessing"] == "none"
    assert len(attrs["weights_sha256"]) == 64 and attrs["tensorflow_version"]
    assert not (tmp_path / "f.h5.partial").exists()


def test_rows_match_direct_forward_pass(tmp_path, class_folders, tiny_model_file):
    import keras

    from featurebench.data.pipeline import DecodeOptions, load_image

    extract(class_folders, tmp_path / "f.h5", tiny_model_file)
    data = read(tmp_path / "f.h5")
    model = keras.models.load_model(tiny_model_file)
    images = np.stack([load_image(class_folders / p, DecodeOptions((32, 32))) for p in data["paths"]])
    expected = model.predict(images.astype(np.float32), verbose=0)
    np.testing.assert_allclose(data["features"], expected, rtol=1e-5, atol=1e-5)


def test_shuffle_is_seeded_and_stored(tmp_path, class_folders, tiny_model_file):
    extract(class_folders, tmp_path / "a.h5", tiny_model_file, seed=7)
    extract(class_folders, tmp_path / "b.h5", tiny_model_file, seed=7)
    extract(class_folders, tmp_path / "c.h5", tiny_model_file, seed=8)
    a, b, c = (read(tmp_path / f"{n}.h5") for n in "abc")
    assert a["paths"] == b["paths"] != c["paths"]
    np.testing.assert_array_equal(a["features"], b["features"])
    assert sorted(a["paths"]) == sorted(c["paths"])


def test_skipped_images_are_recorded_with_reasons(tmp_path, class_folders, tiny_model_file):
    (class_folders / "cat" / "text.jpg").write_text("not an image")
    (class_folders / "dog" / "empty.png").write_bytes(b"")
    good = (class_folders / "dog" / "dog_000.jpg").read_bytes()
    (class_folders / "dog" / "half.jpg").write_bytes(good[: len(good) // 2])
    (class_folders / "dog" / "readme.txt").write_text("ignored")
    summary = extract(class_folders, tmp_path / "f.h5", tiny_model_file)
    data = read(tmp_path / "f.h5")
    skipped = dict(data["skipped"])
    assert skipped["cat/text.jpg"].startswith("not an image")
    assert skipped["dog/empty.png"].startswith("empty file")
    assert skipped["dog/half.jpg"].startswith("truncated")
    assert summary.n_rows + summary.n_skipped == summary.n_candidates == 15
    assert summary.skipped_reasons == {"not an image": 1, "empty file": 1, "truncated": 1}
    assert data["attrs"]["n_ignored"] == 1
    kept = extract(class_folders, tmp_path / "g.h5", tiny_model_file, allow_truncated=True)
    assert kept.n_rows == 13


def test_csv_and_pattern_sources(tmp_path, tiny_model_file):
    rng = np.random.default_rng(1)
    for i in range(4):
        write_image(tmp_path / "flat" / f"cat.{i}.jpg", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
        write_image(tmp_path / "flat" / f"dog.{i}.jpg", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    summary = extract(tmp_path / "flat", tmp_path / "p.h5", tiny_model_file, label_pattern=r"^(cat|dog)\.")
    data = read(tmp_path / "p.h5")
    assert summary.n_rows == 8 and data["label_names"] == ["cat", "dog"]
    assert all(p.split(".")[0] == data["label_names"][y] for p, y in zip(data["paths"], data["labels"]))
    table = tmp_path / "flat" / "labels.csv"
    table.write_text("path,label\n" + "".join(f"cat.{i}.jpg,feline\n" for i in range(4)))
    summary = extract(table, tmp_path / "t.h5", tiny_model_file)
    assert summary.n_rows == 4 and read(tmp_path / "t.h5")["label_names"] == ["feline"]
    assert any("class" in w for w in summary.warnings)


def test_existing_output_needs_force(tmp_path, class_folders, tiny_model_file):
    out = tmp_path / "f.h5"
    out.write_bytes(b"precious")
    with pytest.raises(FeaturebenchError, match="--force"):
        extract(class_folders, out, tiny_model_file)
    assert out.read_bytes() == b"precious"
    extract(class_folders, out, tiny_model_file, force=True)
    assert read(out)["features"].shape == (12, 8)


def test_partial_from_other_settings_is_refused(tmp_path, class_folders, tiny_model_file):
    from featurebench.store.journal import partial_dir_for

    out = tmp_path / "f.h5"
    with pytest.raises(KeyboardInterrupt):
        run_extract(ExtractOptions(str(class_folders), str(out), str(tiny_model_file), batch_size=2),
                    progress=_interrupt_after_first_batch)
    assert partial_dir_for(out).exists() and not out.exists()
    with pytest.raises(FeaturebenchError, match=r"seed: 42 -> 5"):
        extract(class_folders, out, tiny_model_file, seed=5)
    summary = extract(class_folders, out, tiny_model_file, batch_size=2)
    assert summary.resumed_from == 2 and summary.n_rows == 12


def _interrupt_after_first_batch(done: int, total: int) -> None:
    raise KeyboardInterrupt


def test_float16_halves_the_feature_storage(tmp_path, class_folders, tiny_model_file):
    extract(class_folders, tmp_path / "a.h5", tiny_model_file)
    extract(class_folders, tmp_path / "b.h5", tiny_model_file, dtype="float16")
    a, b = read(tmp_path / "a.h5"), read(tmp_path / "b.h5")
    assert b["features"].dtype == np.float16 and b["attrs"]["dtype"] == "float16"
    np.testing.assert_allclose(a["features"], b["features"].astype(np.float32), rtol=2e-3, atol=2e-3)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert fb["features"].id.get_storage_size() * 2 == fa["features"].id.get_storage_size()


def test_bad_options_are_refused_before_work(tmp_path, class_folders, tiny_model_file):
    with pytest.raises(FeaturebenchError, match="train-fraction"):
        extract(class_folders, tmp_path / "f.h5", tiny_model_file, train_fraction=1.5)
    with pytest.raises(FeaturebenchError, match="does not exist"):
        extract(class_folders, tmp_path / "missing-dir" / "f.h5", tiny_model_file)
    with pytest.raises(FeaturebenchError, match="Unknown model"):
        extract(class_folders, tmp_path / "f.h5", "resnet5000")


def test_source_whose_images_all_fail_to_decode_is_an_error_and_keeps_the_file(tmp_path, tiny_model_file):
    for cls in ("cat", "dog"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        (tmp_path / "src" / cls / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(FeaturebenchError, match="None of the 2 images") as caught:
        extract(tmp_path / "src", tmp_path / "f.h5", tiny_model_file)
    assert "featurebench info" in str(caught.value)
    assert read(tmp_path / "f.h5")["features"].shape[0] == 0 and len(read(tmp_path / "f.h5")["skipped"]) == 2


def test_a_folder_named_train_records_its_parent_as_the_dataset(tmp_path, tiny_model_file):
    from conftest import make_class_folders

    source = make_class_folders(tmp_path / "pets" / "train", per_class=2)
    extract(source, tmp_path / "f.h5", tiny_model_file)
    assert read(tmp_path / "f.h5")["attrs"]["dataset"] == "pets"


def test_split_stratified_interleaves_classes_so_the_stored_split_is_stratified(tmp_path):
    """`extract --split stratified`: the same seeded shuffle, reordered so every prefix holds each class
    in proportion (no model needed: the order is decided before any image is read)."""
    from featurebench.data.sources import list_source
    from featurebench.extract import shuffled, stratified_order

    sizes = {"a": 40, "b": 24, "c": 16}  # 80 images, imbalanced
    for name, n in sizes.items():
        (tmp_path / "src" / name).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "src" / name / f"{name}{i:02d}.jpg").write_bytes(b"")
    listing = list_source(tmp_path / "src")
    plain, strat = shuffled(listing, 42), shuffled(listing, 42, "stratified")
    assert sorted(map(tuple, plain)) == sorted(map(tuple, strat)) and plain != strat
    split = int(80 * 0.75)
    train = np.bincount([row[1] for row in strat[:split]], minlength=3)
    assert train.tolist() == [30, 18, 12]  # exactly 75% of every class
    for cut in (10, 33, 57):  # and in proportion at any split point (within one row)
        counts = np.bincount([row[1] for row in strat[:cut]], minlength=3)
        assert np.all(np.abs(counts - cut * np.array([40, 24, 16]) / 80) <= 1)
    within = [row[0] for row in strat if row[1] == 0]
    assert within == [row[0] for row in plain if row[1] == 0]  # each class keeps its shuffled order
    assert stratified_order([]).tolist() == []
    # candidates skipped while listing (label -1) are spread as a group of their own, not a crash
    with_unlabelled = [0, -1, 1, 0, -1, 1, 0, 1]
    order = stratified_order(with_unlabelled)
    assert sorted(order.tolist()) == list(range(8))
    assert [with_unlabelled[i] for i in order[:4]].count(-1) == 1
    from featurebench.extract import ExtractOptions, _check_options

    with pytest.raises(FeaturebenchError, match="--split 'random'"):
        _check_options(ExtractOptions(str(tmp_path / "src"), str(tmp_path / "o.h5"), split="random"), tmp_path / "o.h5")


def test_info_shows_per_class_train_and_test_counts_and_the_split(tmp_path):
    from featurebench.info import describe
    from featurebench.store.writer import write_feature_arrays

    labels = [0] * 12 + [1] * 4  # stored split [:12]: every test row is class 1
    path = write_feature_arrays(tmp_path / "f.h5", np.zeros((16, 2)), labels, ["rose", "tulip"],
                                attrs={"model": "synthetic", "split": "index"})
    text = describe(path)
    assert "test rows [12:] (index)" in text
    assert "per class:    train/test rows: rose 12/0, tulip 0/4" in text
    assert "test rows per class: 0..4" in text
