"""Data for training: the raw-image HDF5 builder, streaming readers, crops, means, augmentation, recipes."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import make_class_folders, write_image
from featurebench.errors import FeaturebenchError
from finetune_support import tiny_set  # noqa: F401 - fixture


def build(source: Path, output: Path, **kwargs):
    from featurebench.training.image_file import BuildImagesOptions, build_images

    return build_images(BuildImagesOptions(source=str(source), output=str(output), **kwargs))


def test_build_images_round_trip(tmp_path, tiny_set):
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.data.sources import list_source
    from featurebench.extract import shuffled

    (tiny_set / "rose" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tiny_set / "rose" / "notes.txt").write_text("ignored")
    summary = build(tiny_set, tmp_path / "images.h5", size=28, seed=7, val_fraction=0.15, batch_rows=5)
    assert summary.n_images == 24 and summary.n_skipped == 1 and summary.n_ignored == 1
    assert summary.counts == {"train": 15, "val": 3, "test": 6}  # int(24*0.75)=18 -> 15 + 3; test = rows[18:]
    with h5py.File(tmp_path / "images.h5", "r") as h5:
        images = h5["images"]
        assert images.dtype == np.uint8 and images.shape == (24, 28, 28, 3) and images.chunks == (1, 28, 28, 3)
        paths = [p.decode() for p in h5["paths"][()]]
        labels = h5["labels"][()]
        names = [n.decode() for n in h5["label_names"][()]]
        assert names == ["daisy", "rose", "tulip"]
        expected_order = [p for p, _, skip in shuffled(list_source(tiny_set), 7) if p != "rose/broken.jpg"]
        assert paths == expected_order
        for i, (path, label) in enumerate(zip(paths, labels)):
            assert path.startswith(names[label] + "/")
            expected = load_image(tiny_set / path, DecodeOptions((28, 28), "center-crop"))
            np.testing.assert_array_equal(images[i], expected)
        np.testing.assert_array_equal(h5["split"][()], [0] * 15 + [1] * 3 + [2] * 6)
        assert [p.decode() for p in h5["skipped/path"][()]] == ["rose/broken.jpg"]
        attrs = dict(h5.attrs)
        assert attrs["complete"] and attrs["format"] == "featurebench-images" and attrs["seed"] == 7
        assert attrs["resize"] == "center-crop" and list(attrs["image_size"]) == [28, 28]
    assert not (tmp_path / "images.h5.partial").exists()
    with pytest.raises(FeaturebenchError, match="already exists"):
        build(tiny_set, tmp_path / "images.h5", size=28)
    from featurebench.info import describe

    text = describe(tmp_path / "images.h5")  # `info` describes the image file, not a broken feature file
    assert "raw images from `featurebench build-images`" in text and "24 x 28x28 RGB uint8" in text
    assert "15 train, 3 validation, 6 test" in text and "missing" not in text and "--force" not in text


def test_image_file_streams_batches_and_reshuffles_per_seed(tmp_path, tiny_set):
    from featurebench.training.image_file import ImageFile

    build(tiny_set, tmp_path / "images.h5", size=24, val_fraction=0.0)
    source = ImageFile(tmp_path / "images.h5")
    assert source.count("train") == 18 and source.count("val") == 0 and source.count("test") == 6
    with h5py.File(tmp_path / "images.h5", "r") as h5:
        stored, stored_labels = h5["images"][:18], h5["labels"][:18]
    batches = list(source.iter_split("train", 8))
    assert [len(b[0]) for b in batches] == [8, 8, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), stored)
    shuffled_a = list(source.iter_split("train", 8, order_seed=(42, 0)))
    shuffled_b = list(source.iter_split("train", 8, order_seed=(42, 0)))
    shuffled_c = list(source.iter_split("train", 8, order_seed=(42, 1)))
    images_a = np.concatenate([b[0] for b in shuffled_a])
    labels_a = np.concatenate([b[1] for b in shuffled_a])
    np.testing.assert_array_equal(images_a, np.concatenate([b[0] for b in shuffled_b]))
    assert not np.array_equal(labels_a, np.concatenate([b[1] for b in shuffled_c])) or \
        not np.array_equal(images_a, np.concatenate([b[0] for b in shuffled_c]))
    # Every train row exactly once per epoch, each with its own label.
    order = [int(np.flatnonzero((stored == img).all(axis=(1, 2, 3)))[0]) for img in images_a]
    assert sorted(order) == list(range(18))
    np.testing.assert_array_equal(stored_labels[order], labels_a)


def test_folder_source_uses_the_same_split_as_the_image_file(tmp_path, tiny_set):
    from featurebench.training.folder_source import FolderSource, open_source
    from featurebench.training.image_file import ImageFile

    build(tiny_set, tmp_path / "images.h5", size=24, val_fraction=0.15)
    assert isinstance(open_source(str(tmp_path / "images.h5"), 24), ImageFile)
    folder = open_source(str(tiny_set), 24, val_fraction=0.15)
    assert isinstance(folder, FolderSource)
    from_file = ImageFile(tmp_path / "images.h5")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(folder.labels(split), from_file.labels(split))
        a = np.concatenate([b[0] for b in folder.iter_split(split, 5)])
        b = np.concatenate([b[0] for b in from_file.iter_split(split, 5)])
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FeaturebenchError, match="not a raw-image file"):
        h5py.File(tmp_path / "features.h5", "w").close()
        open_source(str(tmp_path / "features.h5"), 24)


def test_test_split_is_the_feature_files_test_split(tmp_path, tiny_set, tiny_model_file):
    from featurebench.extract import ExtractOptions, run_extract

    (tiny_set / "rose" / "broken.jpg").write_bytes(b"broken")
    run_extract(ExtractOptions(source=str(tiny_set), output=str(tmp_path / "f.h5"), model=str(tiny_model_file)))
    build(tiny_set, tmp_path / "images.h5", size=24, val_fraction=0.1)
    with h5py.File(tmp_path / "f.h5", "r") as features, h5py.File(tmp_path / "images.h5", "r") as images:
        cut = int(features.attrs["split_index"])
        test = images["split"][()] == 2
        assert list(features["paths"][cut:]) == list(images["paths"][test])
        assert list(features["paths"][:cut]) == list(images["paths"][~test])  # train + val


def test_folder_source_keeps_the_batch_count_when_an_image_breaks(tmp_path, tiny_set):
    from featurebench.training.folder_source import FolderSource

    source = FolderSource(str(tiny_set), 24, val_fraction=0.0)
    broken = source._paths[2]  # a train image
    (tiny_set / broken).write_bytes(b"\xff\xd8\xff truncated")
    batches = list(source.iter_split("train", 8))
    assert [len(images) for images, _ in batches] == [7, 8, 2]  # 18 train candidates, one unusable
    assert list(source.skipped) == [broken] and source.describe()["n_skipped"] == 1
    for path in source._paths[:8]:
        (tiny_set / path).write_bytes(b"")
    with pytest.raises(FeaturebenchError, match="could be decoded.*build-images"):
        list(source.iter_split("train", 8))


def test_means_are_computed_on_the_training_split_only(tmp_path):
    from featurebench.training.image_file import ImageFile
    from featurebench.training.means import compute_means, load_means, save_means

    root = make_class_folders(tmp_path / "data", per_class=10, size=(16, 16))
    build(root, tmp_path / "images.h5", size=16, val_fraction=0.1)
    source = ImageFile(tmp_path / "images.h5")
    stats = compute_means(images for images, _ in source.iter_split("train", 4))
    with h5py.File(tmp_path / "images.h5", "r") as h5:
        split, images = h5["split"][()], h5["images"][()]
    train = images[split == 0].reshape(-1, 3).astype(np.float64)
    assert stats["n_images"] == source.count("train") == 13  # int(20*.75) - int(20*.1)
    np.testing.assert_allclose([stats["R"], stats["G"], stats["B"]], train.mean(axis=0))
    assert not np.allclose(train.mean(axis=0), images.reshape(-1, 3).mean(axis=0))
    save_means(stats, tmp_path / "means.json")
    assert json.loads((tmp_path / "means.json").read_text())["split"] == "train"
    np.testing.assert_allclose(load_means(tmp_path / "means.json"), train.mean(axis=0), rtol=1e-6)


def test_classic_preprocessors():
    from featurebench.training.preprocess import (AspectAwareResize, CenterCrop, MeanSubtract, PatchCrop,
                                                  SimpleResize)

    batch = np.random.default_rng(0).integers(0, 256, (3, 40, 60, 3), dtype=np.uint8)
    assert SimpleResize(32)(batch).shape == (3, 32, 32, 3)
    aspect = AspectAwareResize((32, 32))(batch)
    assert aspect.shape == (3, 32, 32, 3) and aspect.dtype == np.uint8
    np.testing.assert_array_equal(CenterCrop(20)(batch), batch[:, 10:30, 20:40])
    np.testing.assert_allclose(MeanSubtract([1, 2, 3])(batch)[..., 2], batch[..., 2] - 3.0)
    crops = PatchCrop(20, rng=0)(batch)
    assert crops.shape == (3, 20, 20, 3)
    again = PatchCrop(20, rng=0)(batch)
    np.testing.assert_array_equal(crops, again)
    with pytest.raises(ValueError, match="cannot crop"):
        CenterCrop(50)(batch)


def test_ten_crops_positions_and_test_time_averaging():
    from featurebench.training.evaluate import predict_proba
    from featurebench.training.preprocess import ten_crops

    image = np.arange(6 * 8 * 3, dtype=np.float32).reshape(1, 6, 8, 3)
    crops = ten_crops(image, 4)
    assert crops.shape == (10, 1, 4, 4, 3)
    expected = [image[:, 1:5, 2:6], image[:, 0:4, 0:4], image[:, 0:4, 4:8], image[:, 2:6, 0:4], image[:, 2:6, 4:8]]
    for k, crop in enumerate(expected):
        np.testing.assert_array_equal(crops[k], crop)
        np.testing.assert_array_equal(crops[k + 5], crop[:, :, ::-1])

    def forward(x):  # a "model" whose output depends on where the crop was taken
        return np.stack([x[:, 0, 0, 0], x[:, -1, -1, 0], x.mean(axis=(1, 2, 3))], axis=1)

    averaged = predict_proba(forward, image.astype(np.uint8), 4, ten_crop=True)
    np.testing.assert_allclose(averaged, np.mean([forward(c) for c in crops], axis=0))
    centre = predict_proba(forward, image.astype(np.uint8), 4, ten_crop=False)
    np.testing.assert_allclose(centre, forward(expected[0]))
    assert not np.allclose(averaged, centre)


def test_classic_augmentation_preset_is_one_affine_then_a_flip_and_is_seeded(tmp_path, tiny_set):
    from featurebench.training.augment import build_augmenter
    from featurebench.training.image_file import ImageFile
    from featurebench.training.pipeline import make_dataset

    aug = build_augmenter("classic", seed=3)
    layers = {type(layer).__name__: layer for layer in aug.layers}
    assert list(layers) == ["ClassicAffine", "RandomFlip"]  # one resampling, then the flip
    assert layers["ClassicAffine"].ranges == {"rotation": 30.0, "shift": 0.1, "shear": 0.2, "zoom": 0.2}
    assert layers["RandomFlip"].mode == "horizontal"
    assert build_augmenter("none") is None

    build(tiny_set, tmp_path / "images.h5", size=28, val_fraction=0.0)
    source = ImageFile(tmp_path / "images.h5")
    first = [next(iter(make_dataset(source, "train", 8, 24, True, 5, build_augmenter("classic", 3), patch=True)))
             for _ in range(2)]
    (x1, y1), (x2, y2) = first
    assert x1.shape == (8, 24, 24, 3) and x1.dtype.name == "float32"
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())  # same seed, same epoch: same batch
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    plain = next(iter(make_dataset(source, "train", 8, 24, True, 5, None, patch=False)))[0].numpy()
    assert not np.allclose(plain, x1.numpy())
    epochs = make_dataset(source, "train", 8, 24, True, 5)
    labels = [np.concatenate([y.numpy() for _, y in epochs]) for _ in range(2)]  # reshuffled each epoch
    assert sorted(labels[0]) == sorted(labels[1]) and not np.array_equal(labels[0], labels[1])
    with pytest.raises(FeaturebenchError, match="rebuild the image file"):
        make_dataset(source, "train", 8, 32)


def test_recipes_builtin_files_and_overrides(tmp_path):
    from featurebench.finetune.recipes import BUILTIN, load_recipe, resolve_recipe, write_recipe

    classic = BUILTIN["classic-flowers17"]
    assert (classic.model, classic.head, classic.head_hidden, classic.head_dropout) == ("vgg16", "fc", 256, 0.5)
    assert (classic.warmup_epochs, classic.warmup_optimizer, classic.warmup_lr) == (25, "rmsprop", 1e-3)
    assert (classic.epochs, classic.optimizer, classic.lr, classic.unfreeze_from) == (100, "sgd", 1e-3, 15)
    hub = BUILTIN["tfhub-mobilenet"]
    assert (hub.model, hub.head, hub.warmup_optimizer, hub.warmup_epochs, hub.unfreeze_from) == \
        ("mobilenetv2", "gap", "adam", 6, None)

    (tmp_path / "mine.yaml").write_text("base: classic-flowers17\nwarmup-epochs: 3\nunfreeze_from: block5_conv1\n"
                                        "early_stopping: 4\n")
    mine = load_recipe(str(tmp_path / "mine.yaml"))
    assert (mine.name, mine.model, mine.warmup_epochs, mine.epochs) == ("mine", "vgg16", 3, 100)
    assert mine.unfreeze_from == "block5_conv1" and mine.early_stopping == 4
    (tmp_path / "frozen.json").write_text(json.dumps({"model": "resnet50", "head": "gap", "unfreeze_from": None,
                                                      "warmup_epochs": 2}))
    frozen = load_recipe(str(tmp_path / "frozen.json"))
    assert frozen.unfreeze_from is None and frozen.head == "gap" and frozen.warmup_optimizer == "rmsprop"

    cli = resolve_recipe("classic-flowers17", {"epochs": 5, "unfreeze_from": "-4", "lr": None, "patch": True})
    assert cli.epochs == 5 and cli.unfreeze_from == -4 and cli.lr == 1e-3 and cli.patch is True
    write_recipe(cli, tmp_path / "resolved.yaml")
    assert load_recipe(str(tmp_path / "resolved.yaml")) == cli

    (tmp_path / "bad.yaml").write_text("warmup_epoch: 3\n")
    with pytest.raises(FeaturebenchError, match="unknown recipe key 'warmup_epoch'"):
        load_recipe(str(tmp_path / "bad.yaml"))
    with pytest.raises(FeaturebenchError, match="head = 'mlp'"):
        resolve_recipe(None, {"head": "mlp"})
    with pytest.raises(FeaturebenchError, match="neither a built-in"):
        load_recipe("classic-flowers-17")


def test_corrupt_only_source_gives_a_clear_error(tmp_path):
    write_image(tmp_path / "d" / "a" / "ok.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "d" / "b").mkdir()
    (tmp_path / "d" / "b" / "x.jpg").write_bytes(b"garbage")
    (tmp_path / "e" / "a").mkdir(parents=True)
    (tmp_path / "e" / "a" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(FeaturebenchError, match="No usable images"):
        build(tmp_path / "e", tmp_path / "e.h5", size=8)
    assert not (tmp_path / "e.h5.partial").exists() and not (tmp_path / "e.h5").exists()


def test_flags_a_recipe_cannot_honour_are_errors():
    from featurebench.finetune.recipes import resolve_recipe

    with pytest.raises(FeaturebenchError, match=r"--epochs, --lr set phase 2.*'tfhub-mobilenet' never unfreezes"
                                                r".*--unfreeze-from"):
        resolve_recipe("tfhub-mobilenet", {"epochs": 1, "lr": 1e-4})
    honoured = resolve_recipe("tfhub-mobilenet", {"epochs": 1, "unfreeze_from": "100"})
    assert honoured.epochs == 1 and honoured.unfreeze_from == 100
    with pytest.raises(FeaturebenchError, match="--head-hidden.*'gap'"):
        resolve_recipe("tfhub-mobilenet", {"head_hidden": 64})
    assert resolve_recipe("tfhub-mobilenet", {"head_hidden": 64, "head": "fc"}).head_hidden == 64


def test_image_file_split_warning_only_for_a_seed_or_fraction_the_user_gave(tmp_path, tiny_set):
    """docs/train.md word for word (build-images --val-fraction 0, then train without split flags) must not
    warn about a validation fraction nobody asked for; asking for one that the file cannot honour does."""
    from types import SimpleNamespace

    from featurebench.training.session import open_training_source

    build(tiny_set, tmp_path / "images.h5", size=28, seed=42, val_fraction=0.0)
    settings = SimpleNamespace(resize="center-crop", seed=42, train_fraction=0.75, val_fraction=0.1, load_size=None,
                               patch=False, ten_crop=False)
    opts = SimpleNamespace(label_pattern=None, root=None, workers=1)
    _, quiet = open_training_source(str(tmp_path / "images.h5"), 28, settings, opts, None, given={"net": "x"})
    assert quiet == []
    _, warned = open_training_source(str(tmp_path / "images.h5"), 28, settings, opts, None, given={"val_fraction"})
    assert len(warned) == 1 and "stores its own split" in warned[0]


def test_classic_affine_matches_image_data_generator():
    """The classic preset's matrices and warp are keras_preprocessing's apply_affine_transform:
    R @ T @ S(deg) @ Z, centred on (h/2 + 0.5, w/2 + 0.5), then ndimage bilinear with nearest fill."""
    from scipy import ndimage

    from featurebench.training.augment import affine_matrices, warp_affine

    theta, tx, ty, shear, zx, zy, h, w = 17.0, 3.0, -2.0, 0.2, 1.15, 0.85, 40, 48
    t, s = np.deg2rad(theta), np.deg2rad(shear)
    rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    shearing = np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    o = np.array([[1, 0, h / 2 + 0.5], [0, 1, w / 2 + 0.5], [0, 0, 1]])
    expected = o @ rotation @ shift @ shearing @ zoom @ np.linalg.inv(o)
    got = affine_matrices(np.array([theta]), np.array([tx]), np.array([ty]), np.array([shear]), np.array([zx]),
                          np.array([zy]), h, w)
    np.testing.assert_allclose(got[0], expected, atol=1e-12)

    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.uniform(0, 255, (h, w, 3)), (2, 2, 0)).astype(np.float32)
    reference = np.stack([ndimage.affine_transform(image[..., c], expected[:2, :2], expected[:2, 2], order=1,
                                                   mode="nearest") for c in range(3)], axis=-1)
    warped = np.asarray(warp_affine(image[None], expected[None].astype(np.float32)))[0]
    np.testing.assert_allclose(warped[2:-2, 2:-2], reference[2:-2, 2:-2], atol=0.05)
    assert np.abs(warped - image).mean() > 1  # it moved the pixels


def test_classic_shear_is_degrees_not_a_fraction_of_the_image():
    """shear_range=0.2 is 0.2 degrees (a 0.35% slant), not Keras 3 RandomShear's 20% of the image."""
    from featurebench.training.augment import affine_matrices

    m = affine_matrices(np.zeros(1), np.zeros(1), np.zeros(1), np.full(1, 0.2), np.ones(1), np.ones(1), 64, 64)[0]
    assert abs(m[0, 1]) == pytest.approx(np.sin(np.deg2rad(0.2))) and abs(m[0, 1]) < 0.004
