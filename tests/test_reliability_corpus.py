"""The bad-input corpus (tests/corpus.py) through one real ``extract``: every case has its outcome.

For every case: no crash; a row, or a skip whose file and reason are in the
``skipped`` table, in ``featurebench info`` and in the end-of-run summary, or an
``ignored`` entry; and rows + skipped == candidate files. Duplicates (same bytes)
are kept as rows and reported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from rich.console import Console

import corpus as C
from featurebench.data.decode import DEFAULT_MAX_PIXELS, SkipImage, decode_image
from featurebench.extract import ExtractOptions, run_extract
from featurebench.info import describe
from featurebench.progress import print_extract_summary
from featurebench.store.writer import safe_text

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_file):
    """The corpus and one extraction over all of it (several shards, two decode threads)."""
    root = tmp_path_factory.mktemp("corpus") / "data"
    corpus = C.build_corpus(root)
    output = root.parent / "corpus.h5"
    try:
        summary = run_extract(ExtractOptions(str(root), str(output), str(tiny_model_file), batch_size=4,
                                             flush_rows=7, workers=2, max_file_mb=C.CORPUS_MAX_FILE_MB))
        yield corpus, summary, output
    finally:
        C.restore_permissions(root)


def _strings(dataset) -> list[str]:
    return [s.decode("utf-8") for s in dataset[()]]


def _read(output: Path) -> dict:
    with h5py.File(output, "r") as h5:
        return {
            "paths": _strings(h5["paths"]), "labels": h5["labels"][()], "label_names": _strings(h5["label_names"]),
            "skipped": dict(zip(_strings(h5["skipped/path"]), _strings(h5["skipped/reason"]))),
            "ignored": dict(zip(_strings(h5["ignored/path"]), _strings(h5["ignored/reason"]))),
            "duplicates": list(zip(_strings(h5["duplicates/path"]), _strings(h5["duplicates/first_path"]))),
            "duplicate_rows": (h5["duplicates/row"][()], h5["duplicates/first_row"][()]),
            "attrs": dict(h5.attrs), "n_features": h5["features"].shape[0],
        }


def test_corpus_is_big_enough_and_covers_every_outcome(built):
    corpus, _, _ = built
    assert len(corpus.cases) >= 30
    assert {c.outcome for c in corpus.cases} == {"row", "skip", "ignored"}
    assert len({c.name for c in corpus.cases}) == len(corpus.cases)


def test_every_case_has_its_outcome(built):
    corpus, summary, output = built
    data = _read(output)
    rows = dict(zip(data["paths"], (data["label_names"][k] for k in data["labels"])))
    problems = []
    for case in corpus.cases:
        stored = safe_text(case.path)
        if case.outcome == "row":
            if stored not in rows:
                problems.append(f"{case.name}: expected a row, got skipped={data['skipped'].get(stored)!r}")
            elif rows[stored] != case.label:
                problems.append(f"{case.name}: label {rows[stored]!r}, expected {case.label!r}")
        elif case.outcome == "skip":
            reason = data["skipped"].get(stored)
            if reason is None or reason.split(":", 1)[0] != case.reason:
                problems.append(f"{case.name}: expected skip {case.reason!r}, got {reason!r} (row: {stored in rows})")
        else:
            if data["ignored"].get(stored) != case.reason:
                problems.append(f"{case.name}: expected ignored {case.reason!r}, got {data['ignored'].get(stored)!r}")
    assert not problems, "\n".join(problems)
    # Nothing else slipped in, and nothing is counted twice.
    assert sorted(rows) == sorted(safe_text(c.path) for c in corpus.by_outcome("row"))
    assert sorted(data["skipped"]) == sorted(safe_text(c.path) for c in corpus.by_outcome("skip"))
    assert len(data["paths"]) == len(set(data["paths"])) == data["n_features"]


def test_counts_add_up(built):
    corpus, summary, output = built
    attrs = _read(output)["attrs"]
    n_candidates = len(corpus.candidates)
    assert summary.n_candidates == attrs["n_candidates"] == n_candidates
    assert summary.n_rows + summary.n_skipped == n_candidates
    assert summary.n_rows == attrs["n_rows"] == len(corpus.by_outcome("row"))
    assert summary.n_skipped == attrs["n_skipped"] == len(corpus.by_outcome("skip"))
    assert summary.n_ignored == attrs["n_ignored"] >= len(corpus.by_outcome("ignored"))
    assert attrs["complete"] and attrs["format"] == "featurebench-features"


def test_decoded_pixels_are_right(built):
    """Formats, modes, 16-bit, EXIF orientations 2-8, 1x1, 10000x10: the decoded pixels, not just 'no crash'."""
    corpus, _, _ = built
    checked = 0
    for case in corpus.by_outcome("row"):
        if case.check is not None:
            case.check(decode_image(corpus.root / case.path))
            checked += 1
    assert checked >= 36


def test_class_names_and_warnings(built):
    corpus, summary, output = built
    data = _read(output)
    assert data["label_names"] == sorted(C.CLASSES)  # hostile names stored intact
    assert any(f"'{C.EMPTY}'" in w and "no images" in w for w in summary.warnings)
    assert any("not valid UTF-8" in w for w in summary.warnings)
    assert C.EMPTY not in data["label_names"]


def test_non_utf8_file_name_is_kept_with_escapes(built):
    _, _, output = built
    paths = _read(output)["paths"]
    assert f"{C.PLAIN}/caf\\xe9-latin1.png" in paths


def test_duplicates_are_kept_and_reported(built):
    corpus, summary, output = built
    data = _read(output)
    group = {c.path for c in corpus.cases if c.duplicate_of} | {f"{C.PLAIN}/baseline.jpg"}
    assert summary.n_duplicates == data["attrs"]["n_duplicates"] == len(group) - 1 == 3
    assert data["attrs"]["duplicates_checked"]
    firsts = {first for _, first in data["duplicates"]}
    assert len(firsts) == 1 and firsts <= group
    assert {path for path, _ in data["duplicates"]} | firsts == group
    assert all(path in data["paths"] for path in group)  # kept as rows
    rows, first_rows = data["duplicate_rows"]
    assert [data["paths"][i] for i in rows] == [p for p, _ in data["duplicates"]]
    assert all(first < row for row, first in zip(rows, first_rows))  # "first" = earliest row in the file
    text = describe(output)
    assert "duplicates:   3 rows have the same bytes" in text and "with a different label" in text


def test_info_names_every_skipped_file_and_reason(built):
    corpus, _, output = built
    text = describe(output, max_skipped=100)
    for case in corpus.by_outcome("skip"):
        line = next((line for line in text.splitlines() if repr(case.path) in line), None)
        assert line is not None and f": {case.reason}" in line, (case.name, line)


def test_summary_names_every_skipped_file_and_reason(built):
    corpus, summary, _ = built
    console = Console(record=True, width=400, color_system=None)
    print_extract_summary(console, summary)
    text = console.export_text()
    for case in corpus.by_outcome("skip"):
        line = next((line for line in text.splitlines() if repr(case.path) in line), None)
        assert line is not None and f": {case.reason}" in line, (case.name, text)
    assert "Duplicates: 3 images" in text


def test_summary_prints_hostile_text_literally():
    """Rich markup in paths or warnings is printed as text, never interpreted (no MarkupError)."""
    from featurebench.extract import ExtractSummary

    summary = ExtractSummary(output=Path("/tmp/[/]out[red].h5"), n_candidates=2, n_rows=1, n_skipped=1, n_ignored=0,
                             resumed_from=0, seconds=1.0, images_per_second=1.0, file_bytes=10,
                             skipped_reasons={"corrupt": 1}, warnings=["class folder '[/bold]' has no images"],
                             skipped=[("[/]x.jpg", "corrupt: [/] bad")])
    console = Console(record=True, width=400, color_system=None)
    print_extract_summary(console, summary)
    text = console.export_text()
    assert "[/]out[red].h5" in text and "'[/]x.jpg': corrupt: [/] bad" in text and "'[/bold]'" in text


def test_truncated_kept_only_with_allow_truncated(built):
    corpus, _, _ = built
    for name in ("truncated_jpeg", "truncated_png"):
        image = decode_image(corpus.root / corpus[name].path, allow_truncated=True)
        assert image.dtype == np.uint8 and image.shape[2] == 3
    for name in ("corrupt_png_stream", "jpeg_header_only"):  # damaged data / no image data: refused anyway
        with pytest.raises(SkipImage) as info:
            decode_image(corpus.root / corpus[name].path, allow_truncated=True)
        assert info.value.reason == corpus[name].reason


def test_one_class_dataset(tmp_path, tiny_model_file):
    from conftest import make_class_folders

    root = make_class_folders(tmp_path / "one", classes=("only",), per_class=3)
    summary = run_extract(ExtractOptions(str(root), str(tmp_path / "one.h5"), str(tiny_model_file)))
    assert summary.n_rows == 3 and summary.n_skipped == 0
    assert any("only 1 class" in w and "classifier needs 2" in w for w in summary.warnings)


def test_opencv_limit_matches_the_decoder_limit():
    import featurebench.data  # noqa: F401 - sets the environment variable

    import os

    assert os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize("bomb", ["radiance_hdr(14_000)", "png_zlib_bomb()"])
def test_real_decompression_bombs_are_refused_without_the_memory(tmp_path, bomb):
    """A 12 MB HDR (2.4 GB decoded, OpenCV path) and a 180 kB PNG (180 MB decoded, Pillow path),
    decoded in a fresh process the way the CLI does: refused as "too large", peak memory small."""
    # VmHWM (peak RSS of this process image): unlike ru_maxrss it does not inherit the parent's
    # peak across fork+exec (the pytest process holds TensorFlow, ~700 MB).
    code = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from featurebench.data.decode import SkipImage, decode_image_bytes
import corpus
data = corpus.{bomb}
try:
    decode_image_bytes(data)
    print("decoded")
except SkipImage as exc:
    print(exc.reason)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) // 1024)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    reason, peak_mb = result.stdout.split("\n")[:2]
    assert reason == "too large"
    assert int(peak_mb) < 400, f"peak RSS {peak_mb} MB: the bomb was (partly) decoded"


def test_docs_list_every_case(built):
    corpus, _, _ = built
    doc = (TESTS.parent / "docs" / "reliability.md").read_text(encoding="utf-8")
    missing = [c.name for c in corpus.cases if f"`{c.name}`" not in doc and not c.name.startswith("exif_orientation_")]
    assert not missing, f"docs/reliability.md does not list: {missing}"
    assert "`exif_orientation_2` … `exif_orientation_8`" in doc
