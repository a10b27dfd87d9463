"""Wording helpers: counts in the right number."""

from featurebench.text import plural


def test_plural():
    assert plural(1, "epoch") == "1 epoch"
    assert plural(0, "epoch") == "0 epochs" and plural(2, "dataset") == "2 datasets"
    assert plural(1_360, "image") == "1,360 images" and plural(3, "class", "classes") == "3 classes"
