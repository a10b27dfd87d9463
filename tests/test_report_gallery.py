"""The report's gallery of mistakes and audit section: escaped, size-capped, most confident first."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import numpy as np

from conftest import write_image
from fixtures_report import HOSTILE_CLASS, make_metrics, write_run
from featurebench.explain.overlay import THUMB_MAX_BYTES
from featurebench.report import build_report
from featurebench.report.gallery import MAX_MISTAKES

URI = re.compile(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)")


def _results(tmp_path: Path, n_wrong: int = 30) -> Path:
    source = tmp_path / "photos"
    rng = np.random.default_rng(0)
    labels = ["cats", HOSTILE_CLASS, "panda"]
    rows = []
    for i in range(60):
        rel = f"{'<b>' if i == 29 else ''}img_{i:03d}.jpg"
        write_image(source / rel, rng.integers(0, 256, (600, 800, 3), dtype=np.uint8), quality=95)  # noisy: big JPEGs
        true = labels[i % 3]
        predicted = labels[(i + 1) % 3] if i < n_wrong else true
        rows.append([1000 + i, rel, true, predicted, f"{0.4 + i / 200:.3f}", "0.1"])
    metrics = make_metrics("pets-run", labels=labels, provenance={"source": str(source)})
    run_dir = write_run(tmp_path / "results", metrics)
    with open(run_dir / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "path", "true", "predicted", "score", "true_score"])
        writer.writerows(rows)
    audit = {"source": str(source), "near_duplicates": {
        "threshold": 0.97, "pairs": [{"train_row": 1, "test_row": 1001, "train_path": "img_001.jpg",
                                      "test_path": "img_002.jpg", "similarity": 0.999}],
        "test_rows_affected": 1, "exact_duplicates": [],
        "accuracy": {"all": 0.5, "without_duplicates": 0.49, "source": "run pets-run"}},
        "label_issues": {"method": "confident learning", "rows": [
            {"row": 3, "path": "img_003.jpg", "given": HOSTILE_CLASS, "suggested": "cats", "self_confidence": 0.01}]},
        "outliers": {"n_flagged": 0, "rows": []}, "imbalance": {"ratio_largest_to_smallest": 1.5}}
    (run_dir / "audit.json").write_text(json.dumps(audit))
    return tmp_path / "results"


def test_gallery_is_escaped_size_capped_and_most_confident_first(tmp_path: Path) -> None:
    results = _results(tmp_path)
    build_report(results, tmp_path / "report.html", plots=False)
    page = (tmp_path / "report.html").read_text()
    assert HOSTILE_CLASS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>img_029" not in page and "&lt;b&gt;img_029.jpg" in page
    assert "Gallery of mistakes (30 of 60 test images wrong; the 24 most confident shown)" in page
    gallery = page[page.index("Gallery of mistakes"):page.index("Most-confused pairs")]
    thumbs = URI.findall(gallery)
    assert len(thumbs) == MAX_MISTAKES
    for data in URI.findall(page):
        assert len(base64.b64decode(data)) <= THUMB_MAX_BYTES
    titles = re.findall(r'title="((?:&lt;b&gt;)?img_\d+\.jpg)"', gallery)
    assert titles[0] == "&lt;b&gt;img_029.jpg" and titles[1] == "img_028.jpg"  # highest score first
    assert "taken for" in page and "Data audit" in page and "1 near-duplicate train/test pair(s)" in page
    assert "labelled <b>&lt;script&gt;" in page


def test_runs_without_predictions_show_no_gallery(tmp_path: Path) -> None:
    write_run(tmp_path / "results", make_metrics("old-run"))
    build_report(tmp_path / "results", tmp_path / "report.html", plots=False)
    page = (tmp_path / "report.html").read_text()
    assert "Gallery of mistakes" not in page and "Data audit" not in page


def test_unreadable_predictions_are_a_note_not_a_crash(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "results", make_metrics("broken-run"))
    (run_dir / "predictions.csv").write_bytes(b"\xff\xfe\x00 not text")
    (run_dir / "audit.json").write_text("{not json")
    build_report(tmp_path / "results", tmp_path / "report.html", plots=False)
    page = (tmp_path / "report.html").read_text()
    assert "predictions.csv unreadable" in page and "audit.json unreadable" in page
