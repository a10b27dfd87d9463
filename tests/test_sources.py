"""Listing sources: class folders, CSV/TSV tables, file-name patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_image
from featurebench.data.sources import list_source
from featurebench.errors import FeaturebenchError

PIXEL = np.zeros((4, 4, 3), dtype=np.uint8)


def test_class_folders_lists_images_and_ignores_clutter(tmp_path: Path):
    write_image(tmp_path / "cat" / "a.jpg", PIXEL)
    write_image(tmp_path / "cat" / "sub" / "b.png", PIXEL)
    write_image(tmp_path / "dog" / "c.jpg", PIXEL)
    (tmp_path / "dog" / "notes.txt").write_text("x")
    (tmp_path / "dog" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "dog" / "Thumbs.db").write_bytes(b"\0")
    (tmp_path / "empty").mkdir()
    (tmp_path / "stray.jpg").write_bytes(b"x")
    listing = list_source(tmp_path)
    assert listing.kind == "class-folders"
    assert [(c.path, c.label) for c in listing.candidates] == [
        ("cat/a.jpg", "cat"), ("cat/sub/b.png", "cat"), ("dog/c.jpg", "dog")]
    assert listing.label_names == ["cat", "dog"]
    ignored = dict(listing.ignored)
    assert ignored["dog/notes.txt"] == "not an image file extension"
    assert ignored["dog/.DS_Store"] == ignored["dog/Thumbs.db"] == "hidden or system file"
    assert ignored["stray.jpg"] == "not inside a class folder"
    assert any("'empty'" in w for w in listing.warnings)


def test_folder_without_classes_suggests_label_pattern(tmp_path: Path):
    write_image(tmp_path / "cat.1.jpg", PIXEL)
    with pytest.raises(FeaturebenchError, match="--label-pattern"):
        list_source(tmp_path)


def test_label_pattern_kaggle_style(tmp_path: Path):
    for name in ("cat.1.jpg", "dog.2.jpg", "dog.10.jpg", "bird-3.jpg"):
        write_image(tmp_path / name, PIXEL)
    listing = list_source(tmp_path, label_pattern=r"^(cat|dog)\.")
    labels = {c.path: (c.label, c.skip_reason) for c in listing.candidates}
    assert labels["cat.1.jpg"] == ("cat", None)
    assert labels["dog.10.jpg"] == ("dog", None)
    assert labels["bird-3.jpg"][0] is None and "does not match" in labels["bird-3.jpg"][1]
    assert listing.label_names == ["cat", "dog"]


def test_label_pattern_named_group(tmp_path: Path):
    write_image(tmp_path / "img_tulip_01.png", PIXEL)
    write_image(tmp_path / "img_rose_02.png", PIXEL)
    listing = list_source(tmp_path, label_pattern=r"img_(?P<label>[a-z]+)_")
    assert listing.label_names == ["rose", "tulip"]


def test_csv_table_with_header_and_root_escape(tmp_path: Path):
    write_image(tmp_path / "imgs" / "a.jpg", PIXEL)
    write_image(tmp_path / "imgs" / "b.jpg", PIXEL)
    outside = write_image(tmp_path.parent / f"{tmp_path.name}-outside.jpg", PIXEL)
    table = tmp_path / "labels.csv"
    table.write_text(f"path,label\nimgs/a.jpg,x\nimgs/b.jpg,y\n../{outside.name},x\nimgs/readme.md,x\n")
    listing = list_source(table)
    by_path = {c.path: c for c in listing.candidates}
    assert by_path["imgs/a.jpg"].label == "x" and by_path["imgs/a.jpg"].skip_reason is None
    assert "outside the dataset root" in by_path[f"../{outside.name}"].skip_reason
    assert listing.ignored == [("imgs/readme.md", "not an image file extension")]
    allowed = list_source(table, allow_outside_root=True)
    assert all(c.skip_reason is None for c in allowed.candidates)


def test_tsv_without_header(tmp_path: Path):
    write_image(tmp_path / "a.jpg", PIXEL)
    write_image(tmp_path / "b.jpg", PIXEL)
    table = tmp_path / "labels.tsv"
    table.write_text("a.jpg\tone\nb.jpg\ttwo\n")
    listing = list_source(table)
    assert [(c.path, c.label) for c in listing.candidates] == [("a.jpg", "one"), ("b.jpg", "two")]


def test_bad_table_row_names_file_and_row(tmp_path: Path):
    table = tmp_path / "labels.csv"
    table.write_text("path,label\nonly-one-column\n")
    with pytest.raises(FeaturebenchError, match=r"labels\.csv: row 1"):
        list_source(table)


def test_missing_source_and_empty_source(tmp_path: Path):
    with pytest.raises(FeaturebenchError, match="does not exist"):
        list_source(tmp_path / "nope")
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.txt").write_text("x")
    with pytest.raises(FeaturebenchError, match="No images found"):
        list_source(tmp_path)


def test_label_pattern_matching_nothing_is_an_error_naming_the_pattern_and_a_file(tmp_path: Path):
    for name in ("cat.1.jpg", "dog.2.jpg"):
        write_image(tmp_path / name, PIXEL)
    with pytest.raises(FeaturebenchError) as caught:
        list_source(tmp_path, label_pattern=r"^(bird)_")
    message = str(caught.value)
    assert "No usable images" in message and "all 2 image file(s)" in message
    assert "'cat.1.jpg'" in message and "'^(bird)_'" in message


def test_table_whose_rows_are_all_unusable_is_an_error(tmp_path: Path):
    write_image(tmp_path / "a.jpg", PIXEL)
    table = tmp_path / "labels.csv"
    table.write_text("path,label\na.jpg,\n")
    with pytest.raises(FeaturebenchError, match="empty label"):
        list_source(table)


def test_default_dataset_name_skips_generic_folder_names(tmp_path: Path):
    from featurebench.data.sources import default_dataset_name

    assert default_dataset_name(Path("/data/dogs-vs-cats/train")) == "dogs-vs-cats"
    assert default_dataset_name(Path("/x/flowers17/images/Train")) == "flowers17"
    assert default_dataset_name(Path("/x/flowers17")) == "flowers17"
    assert default_dataset_name(Path("/train")) == "train"  # nothing better above it
