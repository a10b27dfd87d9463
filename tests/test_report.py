"""`featurebench report`: collect runs, leaderboard tables, Markdown, CSV and the HTML page."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_report import (  # noqa: E402
    HOSTILE_CLASS, HOSTILE_DATASET, HOSTILE_RUNS, hostile_results, make_metrics, write_run,
)

from featurebench.errors import FeaturebenchError  # noqa: E402
from featurebench.report import build_report, collect_runs  # noqa: E402
from featurebench.report import plots, tables  # noqa: E402
from featurebench.report.collect import read_run  # noqa: E402
from featurebench.report.html import METRIC_COLUMNS  # noqa: E402

GOOD = len(HOSTILE_RUNS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The hostile results folder and one report built from it (with plots), shared by this module."""
    base = tmp_path_factory.mktemp("report")
    results = hostile_results(base / "results")
    out = base / "out"
    summary = build_report(results, out / "report.html", md_path=out / "report.md", csv_path=out / "runs.csv")
    return {
        "results": results, "summary": summary,
        "html": (out / "report.html").read_text(encoding="utf-8"),
        "md": (out / "report.md").read_text(encoding="utf-8"),
        "csv": out / "runs.csv",
        "metrics": {folder: json.loads((results / folder / "metrics.json").read_text()) for folder, *_ in HOSTILE_RUNS},
    }


def expected_order():
    """Run folders in leaderboard order, computed independently of the code under test."""
    rows = sorted(HOSTILE_RUNS, key=lambda r: (r[1].casefold(), -r[4], r[0]))
    return [r[0] for r in rows]


# --- collecting runs ----------------------------------------------------------------------------

def test_collect_reads_good_runs_and_lists_unreadable_with_reason(built):
    collection = collect_runs(built["results"])
    assert sorted(r.name for r in collection.runs) == sorted(r[0] for r in HOSTILE_RUNS)
    reasons = {u.name: u.reason for u in collection.unreadable}
    assert set(reasons) == {"broken-run", "crashed-run"}
    assert "not valid JSON" in reasons["broken-run"]
    assert "no metrics.json" in reasons["crashed-run"]


@pytest.mark.parametrize("change, fragment", [
    ({"accuracy": 1.7}, "'accuracy'"),
    ({"dataset": None}, "dataset"),
    ({"schema": "something-else"}, "'schema'"),
    ({"schema_version": 2}, "newer"),
    ({"confusion": {"labels": ["a", "b"], "matrix": [[1, 2]]}}, "'confusion'"),
    ({"per_class": [{"precision": 0.5}]}, "'per_class'"),
    ({"n_test": "many"}, "'n_test'"),
    ({"random_init": "yes"}, "'random_init'"),
    ({"accuracy_ci95": [0.9]}, "'accuracy_ci95'"),
])
def test_schema_violations_make_the_run_unreadable_naming_the_key(tmp_path, change, fragment):
    record = make_metrics("r1")
    record.update(change)
    run_dir = write_run(tmp_path, record)
    result = read_run(run_dir, "r1")
    assert not hasattr(result, "metrics"), "expected an UnreadableRun"
    assert "schema" in result.reason and fragment in result.reason


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("[1, 2]", "JSON list"), ("{not json", "not valid JSON")])
def test_broken_files_are_unreadable(tmp_path, text, fragment):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text(text)
    assert fragment in read_run(tmp_path / "r", "r").reason


def test_missing_optional_keys_are_blank_with_a_note(tmp_path):
    record = make_metrics("r1")
    for key in ("rank5", "extract_images_per_second", "cv", "provenance"):
        del record[key]
    result = read_run(write_run(tmp_path, record), "r1")
    assert result.metrics["rank5"] is None and result.metrics["cv"] is None
    assert "lacks key(s)" in result.notes[0] and "provenance" in result.notes[0]


def test_nested_runs_and_feature_folders(tmp_path):
    write_run(tmp_path, make_metrics("a"), folder="logreg/a")
    write_run(tmp_path, make_metrics("b"), folder="svm/b")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "animals-resnet50.h5").write_bytes(b"\x89HDF")
    (tmp_path / ".cache").mkdir()
    collection = collect_runs(tmp_path)
    assert [r.name for r in collection.runs] == ["logreg/a", "svm/b"]
    assert collection.unreadable == []


def test_results_folder_errors(tmp_path):
    with pytest.raises(FeaturebenchError, match="does not exist"):
        build_report(tmp_path / "nope", tmp_path / "r.html")
    with pytest.raises(FeaturebenchError, match="no readable run"):
        build_report(tmp_path, tmp_path / "r.html")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text("{")
    with pytest.raises(FeaturebenchError, match="bad: metrics.json is not valid JSON"):
        build_report(tmp_path, tmp_path / "r.html")


# --- tables -------------------------------------------------------------------------------------

def test_leaderboard_order_rank_and_best(built):
    summary = built["summary"]
    assert [r.name for r in summary.runs] == expected_order()
    pairs = tables.leaderboard_rows(summary.runs)
    assert [row["rank_in_dataset"] for _, row in pairs] == [1, 2, 3, 4, 1, 2, 1]
    assert {d: r.name for d, r in summary.best.items()} == {
        "animals": "animals-vgg16-logreg", "flowers17": "flowers17-vgg16-svm", HOSTILE_DATASET: "hostile-resnet50-knn"}


def test_ties_broken_by_macro_f1_then_run_name(tmp_path):
    write_run(tmp_path, make_metrics("b-run", accuracy=0.9, macro_f1=0.80))
    write_run(tmp_path, make_metrics("a-run", accuracy=0.9, macro_f1=0.80))
    write_run(tmp_path, make_metrics("c-run", accuracy=0.9, macro_f1=0.85))
    runs = collect_runs(tmp_path).runs
    assert [run.name for run, _ in tables.leaderboard_rows(runs)] == ["c-run", "a-run", "b-run"]


def test_csv_has_one_flat_row_per_run_matching_metrics(built):
    import pandas as pd

    frame = pd.read_csv(built["csv"])
    assert list(frame.columns) == list(tables.COLUMNS)
    assert list(frame["run"]) == expected_order()
    for _, row in frame.iterrows():
        m = built["metrics"][row["run"]]
        for key in ("dataset", "extractor", "classifier", "weights", "split", "command"):
            assert row[key] == m[key]
        for key in ("accuracy", "rank1", "mean_per_class_accuracy", "macro_f1", "weighted_f1", "fit_seconds",
                    "extract_images_per_second", "n_test", "n_train", "feature_dim", "feature_file_bytes"):
            assert row[key] == pytest.approx(m[key], rel=1e-12), key
        assert (math.isnan(row["rank5"]) if m["rank5"] is None else row["rank5"] == pytest.approx(m["rank5"]))
        assert [row["accuracy_ci_low"], row["accuracy_ci_high"]] == pytest.approx(m["accuracy_ci95"])
        assert json.loads(row["best_params"]) == m["best_params"]
        assert bool(row["random_init"]) == m["random_init"]
        assert row["label"] == ("random-init baseline" if m["random_init"] else "") or (pd.isna(row["label"]) and not m["random_init"])
        assert row["seed"] == m["provenance"]["seed"]
    assert frame["best_in_dataset"].sum() == 3


def _md_table(md: str, heading: str) -> list[list[str]]:
    block = md.split(f"### {heading}\n", 1)[1].strip().split("\n\n")[0]
    lines = [line for line in block.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


def test_markdown_leaderboard_and_best_match_metrics(built):
    md = built["md"]
    rows = _md_table(md, "Leaderboard")
    assert len(rows) == GOOD
    for cells, name in zip(rows, expected_order()):
        m = built["metrics"][name]
        assert cells[-1] == name
        assert cells[1] == tables.md_escape(m["dataset"])
        assert cells[2].startswith(m["extractor"])
        assert ("random-init baseline" in cells[2]) == m["random_init"]
        assert cells[3] == m["classifier"]
        assert f"{100 * m['accuracy']:.2f}" in cells[4]
        assert cells[5] == f"{100 * m['rank1']:.2f}"
        assert cells[6] == ("—" if m["rank5"] is None else f"{100 * m['rank5']:.2f}")
        assert cells[8] == f"{100 * m['macro_f1']:.2f}"
        assert cells[11] == f"{m['feature_dim']:,}"
    best = _md_table(md, "Best run per dataset")
    assert [cells[-1] for cells in best] == ["animals-vgg16-logreg", "flowers17-vgg16-svm", "hostile-resnet50-knn"]
    assert "broken-run: metrics.json is not valid JSON" in md
    assert "crashed-run: no metrics.json" in md


def test_markdown_escapes_hostile_names(built):
    md = built["md"]
    assert "<img" not in md and "<script" not in md
    assert "pets &lt;img src=x onerror=\"alert(2)\"&gt; &amp; co" in md
    assert tables.md_escape("a|b") == "a\\|b"


# --- HTML ---------------------------------------------------------------------------------------

class _Page(HTMLParser):
    """Collects tags with attributes and the text of every element id'd or classed below."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def page(built):
    parser = _Page()
    parser.feed(built["html"])
    return parser


def test_html_escapes_every_user_string(built, page):
    html = built["html"]
    assert HOSTILE_CLASS not in html
    assert "<img src=x" not in html
    assert page.scripts == 1, "only the report's own inline script"
    text = "".join(page.text)
    assert HOSTILE_CLASS in text  # shown as text in the per-class table
    assert HOSTILE_DATASET in text
    datasets = {attrs.get("data-dataset") for tag, attrs in page.tags if tag == "tr" and "data-dataset" in attrs}
    assert HOSTILE_DATASET in datasets  # attribute round-trips intact, quotes escaped
    assert not [attrs for _, attrs in page.tags if any(k.startswith("on") for k in attrs)]


def test_html_is_self_contained(built, page):
    html = built["html"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    for tag, attrs in page.tags:
        if tag == "img":
            assert attrs["src"].startswith(("data:image/png;base64,", "data:image/svg+xml;base64,"))
        if tag == "a":
            assert attrs["href"].startswith("#")
        assert tag not in ("link", "iframe", "object", "embed")


def test_html_leaderboard_runs_plots_and_provenance(built, page):
    html = built["html"]
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and "data-run" in attrs]
    assert [r["data-run"] for r in rows] == expected_order()
    assert sum("best" in r["class"].split() for r in rows) == 3
    baseline = [r for r in rows if "baseline" in r["class"].split()]
    assert [r["data-run"] for r in baseline] == ["animals-random-resnet50-logreg"]
    keys = [attrs["data-key"] for tag, attrs in page.tags if tag == "th" and "data-key" in attrs]
    assert keys == [key for key, *_ in METRIC_COLUMNS]
    assert set(keys) >= {"accuracy", "rank1", "rank5", "mean_per_class_accuracy", "macro_f1", "fit_seconds",
                         "extract_images_per_second", "feature_dim", "feature_file_bytes"}
    # confusion, per-class and CV plot per run; the accuracy chart is HTML (text labels), one bar per run
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 3 * GOOD
    assert html.count('class="bar-label"') == GOOD
    # the random-init run's section title says so
    section = html.split('id="run-4"', 1)[1].split("</h3>", 1)[0]
    assert "animals · resnet50 · logreg" in section and "random-init baseline" in section
    # provenance block
    for needed in ("Provenance", "Weights", "Preprocessing", "Seed", "Split", "Versions", "Command",
                   "featurebench fit features/animals-vgg16.h5 --clf logreg --out results", "sha256"):
        assert needed in html
    # unreadable runs, with reasons
    unreadable = html.split('id="unreadable-section"', 1)[1]
    assert "broken-run" in unreadable and "not valid JSON" in unreadable and "crashed-run" in unreadable


def test_summary_describe(built):
    text = built["summary"].describe()
    assert "7 runs on 3 datasets" in text and "held-out test split" in text
    assert "best test accuracy on animals (its stored split's group): vgg16 + logreg = 97.50%" in text
    assert "unreadable: broken-run" in text
    assert len(built["summary"].outputs) == 3


def test_html_only_without_plots(tmp_path):
    write_run(tmp_path / "res", make_metrics("only", dataset="d"))
    summary = build_report(tmp_path / "res", tmp_path / "r.html", plots=False)
    assert summary.md_path is None and summary.csv_path is None
    html = (tmp_path / "r.html").read_text()
    assert "<img" not in html and 'data-run="only"' in html


# --- plots --------------------------------------------------------------------------------------

def test_plots_cope_with_odd_inputs():
    assert plots.cv_curve(None) is None
    assert plots.cv_curve({"param": "C", "results": [{"params": {"C": 1.0}, "mean_test_score": 0.9, "std_test_score": 0.0}]}) is None
    categorical = {"param": None, "results": [
        {"params": {"kernel": k, "C": c}, "mean_test_score": s, "std_test_score": 0.01}
        for k, c, s in (("rbf", 1, 0.9), ("linear", 1, 0.85), ("rbf", 10, 0.92), ("linear", 10, 0.86))]}
    assert plots.cv_curve(categorical, {"kernel": "rbf", "C": 10}).startswith("data:image/svg+xml;base64,")
    assert plots.confusion_heatmap({"labels": [], "matrix": []}) is None
    odd = ["$x$", "a $ b", "\\frac{1}{2}", "日本語", "x" * 80, "</text><script>alert(1)</script>"]
    conf = {"labels": odd, "matrix": [[3 if i == j else 1 for j in range(6)] for i in range(6)]}
    uri = plots.confusion_heatmap(conf)
    assert uri.startswith("data:image/svg+xml;base64,")
    import base64
    import xml.etree.ElementTree as ET

    svg = ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))  # well-formed: every label escaped
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "$x$" in texts and "日本語" in texts and not list(svg.iter("{http://www.w3.org/2000/svg}script"))
    assert sum(t == "3" for t in texts) == 6  # the diagonal counts
    per_class = [{"label": lab, "precision": 0.5, "recall": 0.5, "f1": None, "support": 3} for lab in odd]
    uri = plots.per_class_accuracy(per_class, 0.5)
    assert uri.startswith("data:image/svg+xml;base64,")
    svg = ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))
    bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill-opacity")]
    assert len(bars) == len(odd) and "mean per class 50.0%" in [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]


def test_import_is_light():
    code = ("import sys, time; t = time.perf_counter(); import featurebench.report; dt = time.perf_counter() - t; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib', 'pandas', 'jinja2')]; "
            "print(heavy, dt); assert not heavy, heavy; assert dt < 1.0, dt")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_finetune_run_with_nulls_renders(tmp_path):
    record = make_metrics("ft", dataset="flowers", extractor="vgg16", classifier="finetune", kind="finetune",
                          cv=None, best_params=None, grid=None, accuracy_ci95=None, extract_images_per_second=None,
                          feature_file=None, feature_file_bytes=None, provenance={}, versions={}, per_class=None)
    write_run(tmp_path / "res", record)
    write_run(tmp_path / "res", make_metrics("lr", dataset="flowers", extractor="vgg16", accuracy=0.5))
    summary = build_report(tmp_path / "res", tmp_path / "r.html", md_path=tmp_path / "r.md")
    assert [r.name for r in summary.runs] == ["ft", "lr"]
    html = (tmp_path / "r.html").read_text()
    assert html.count("<img") == 1 + 3  # fine-tune: confusion only; logreg: three plots
    assert ">finetune</span>" in html
    md_rows = _md_table((tmp_path / "r.md").read_text(), "Leaderboard")
    assert md_rows[0][3] == "finetune" and md_rows[0][10] == "—"


def test_variants_are_told_apart_and_no_run_is_dropped(tmp_path):
    from fixtures_report import variant_results

    runs = collect_runs(variant_results(tmp_path / "res")).runs
    rows = {row["run"]: row for _, row in tables.leaderboard_rows(runs)}
    # stated against the first run of each extractor × classifier (same created time: the name decides)
    assert rows["pets__resnet50__svm"]["variant"] == ""
    assert rows["pets__resnet50__svm__standard"]["variant"] == "scale standard"
    assert rows["pets__mobilenetv2__finetune-a"]["variant"] == ""
    assert rows["pets__mobilenetv2__finetune-b"]["variant"] == "lr 0.0001"
    assert rows["pets__resnet50__logreg"]["variant"] == "" and rows["pets__resnet50-random__logreg"]["variant"] == ""
    assert rows["pets__resnet50-random__logreg"]["baseline"] == "random init"
    build_report(tmp_path / "res", tmp_path / "r.html", md_path=tmp_path / "r.md", plots=False)
    html = (tmp_path / "r.html").read_text()
    matrix = html.split('class="matrix"', 1)[1].split("</table>", 1)[0]
    assert matrix.count("<tr>") == 1 + 6  # header + one row per run: none kept only as "the best of"
    assert "svm · scale standard" in matrix and "finetune · lr 0.0001" in matrix
    assert "baseline 62.00% (random-init resnet50 + logreg); best is +36.8 points" in html
    md = (tmp_path / "r.md").read_text()
    assert "6 runs on 1 dataset." in md and "| pets | resnet50 | svm | 98.40" in md
    assert "62.00 (random-init resnet50 + logreg)" in md
    assert "| pets | resnet50 | svm · scale standard | 98.80" in md


def test_report_header_counts_are_singular_for_one(tmp_path):
    write_run(tmp_path / "res", make_metrics("only", dataset="d"))
    build_report(tmp_path / "res", tmp_path / "r.html", plots=False)
    stats = (tmp_path / "r.html").read_text().split('class="stats"', 1)[1].split("</div>\n  </div>", 1)[0]
    assert "<span>dataset</span>" in stats and "<span>run</span>" in stats and "datasets" not in stats


def test_bar_axis_is_zoomed_to_the_data_and_its_ci():
    rows = [{"accuracy": 0.984, "accuracy_ci_low": 0.968, "accuracy_ci_high": 0.996},
            {"accuracy": 0.988, "accuracy_ci_low": 0.972, "accuracy_ci_high": 1.0}]
    low, high = plots.bar_axis(rows)
    assert 90 <= low <= 96.8 and high == 100
    baseline = {"accuracy": 0.62, "accuracy_ci_low": None, "accuracy_ci_high": None, "baseline": "random init"}
    assert plots.bar_axis([*rows, baseline]) == (low, high)  # a far-off baseline does not undo the zoom
    assert plots.bar_axis([baseline])[0] <= 62
    assert plots.bar_axis([{"accuracy": 0.02, "accuracy_ci_low": 0.0, "accuracy_ci_high": 0.05}])[0] == 0


def test_cv_plot_with_several_settings_draws_lines_not_bands():
    import itertools

    results = [{"params": {"max_depth": d, "n_estimators": n, "learning_rate": lr}, "mean_test_score": 0.9 + d / 100,
                "std_test_score": 0.01} for d, n, lr in itertools.product([3, 6], [100, 300], [0.03, 0.1, 0.3])]
    import base64
    import xml.etree.ElementTree as ET

    def svg(uri):
        assert uri.startswith("data:image/svg+xml;base64,")
        return ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))

    ns = "{http://www.w3.org/2000/svg}"
    several = svg(plots.cv_curve({"param": "learning_rate", "results": results},
                                 {"max_depth": 6, "n_estimators": 300, "learning_rate": 0.1}))
    assert not list(several.iter(ns + "polygon")) and len(list(several.iter(ns + "polyline"))) == 4
    assert [t.text for t in several.iter(ns + "text")].count("★") == 1  # the chosen point
    one = svg(plots.cv_curve({"param": "C", "results": [{"params": {"C": c}, "mean_test_score": 0.9,
                                                         "std_test_score": 0.01} for c in (0.1, 1, 10)]}))
    assert len(list(one.iter(ns + "polygon"))) == 1  # one setting: its band is still drawn


def test_raw_pixel_runs_are_labelled_baselines_and_shown_next_to_the_best(tmp_path):
    write_run(tmp_path / "res", make_metrics("d__lite0__logreg", dataset="d", extractor="efficientnet_lite0",
                                             accuracy=0.93))
    write_run(tmp_path / "res", make_metrics("d__raw__logreg", dataset="d", extractor="raw-pixels", accuracy=0.27))
    build_report(tmp_path / "res", tmp_path / "r.html", md_path=tmp_path / "r.md", plots=False)
    html = (tmp_path / "r.html").read_text()
    assert '<span class="badge baseline">raw pixels baseline</span>' in html
    assert "baseline 26.67% (raw-pixels + logreg); best is +66.7 points" in html
    assert "raw-pixels (raw pixels baseline)" in (tmp_path / "r.md").read_text()


def test_runs_with_the_same_settings_get_short_labels_not_their_run_names(tmp_path):
    """Same dataset, extractor, classifier and settings (a repeated run, seeds in the name): the label
    is what differs in the names, not a 90-character run name."""
    from fixtures_report import make_metrics, write_run

    base = "flowers17__efficientnet_lite0__logreg__probe__standard__stratified"
    for k, name in enumerate([base, f"{base}__seed1", f"{base}__seed2"]):
        write_run(tmp_path / "res", make_metrics(name, dataset="flowers17", extractor="efficientnet_lite0", seed=k))
    rows = {row["run"]: row for _, row in tables.leaderboard_rows(collect_runs(tmp_path / "res").runs)}
    assert [rows[n]["variant"] for n in (base, f"{base}__seed1", f"{base}__seed2")] == ["", "seed1", "seed2"]
    assert tables._name_difference("a__x__seed1", "a__x") == "seed1"


def test_sweep_labels_are_short_unique_and_stable_when_a_run_is_added(tmp_path):
    """20 runs of a sweep: every label "classifier · variant" is at most LABEL_LIMIT characters and unique among
    the runs of its dataset, test rows and extractor; adding a newer run changes none of them (before, labels
    listed every setting that differed anywhere in the group, or fell back to whole run names)."""
    from fixtures_report import SWEEP_EXTRA_RUN, sweep_results

    def labels(folder):
        return {row["run"]: row for _, row in tables.leaderboard_rows(collect_runs(folder).runs)}

    before = labels(sweep_results(tmp_path / "a"))
    after = labels(sweep_results(tmp_path / "b", with_extra=True))
    assert len(before) == 20 and len(after) == 21
    for rows in (before, after):
        seen = {}
        for row in rows.values():
            assert len(tables.setting_label(row)) <= tables.LABEL_LIMIT, tables.setting_label(row)
            key = (row["dataset"], row["group"], row["extractor"], row["random_init"], row["classifier"], row["variant"])
            assert key not in seen, (row["run"], seen.get(key))
            seen[key] = row["run"]
    assert {name: row["variant"] for name, row in after.items() if name in before} == \
        {name: row["variant"] for name, row in before.items()}
    assert after[SWEEP_EXTRA_RUN[0]]["variant"] == "head fc"
    assert before["caltech101__resnet50__svm__calibrated"]["variant"] == "calibration sigmoid"
    assert before["flowers17__efficientnet_lite0__svm__wide-C-grid"]["variant"] == "grid C 0.01…1000 (6)"


def test_accuracy_chart_labels_each_bar_in_text_and_colours_it_by_classifier():
    """20 settings of one classifier in one panel: 20 bars, each with its own text label (the legend of
    colours repeated from the 9th setting on before); the colour says the classifier only."""
    rows = [{"run": f"r{k}", "dataset": "d", "extractor": "lite0", "random_init": False, "classifier": "svm" if k else "logreg",
             "variant": f"C {k}" if k else "", "variant_title": f"C {k}" if k else "", "accuracy": 0.9 + k / 1000,
             "score": 0.9 + k / 1000, "score_ci_low": 0.88, "score_ci_high": 0.93, "best_in_dataset": k == 19,
             "baseline": ""} for k in range(20)]
    (panel,) = plots.accuracy_chart(rows, [f"run-{k}" for k in range(20)])
    bars = [bar for group in panel["groups"] for bar in group["bars"]]
    assert len(bars) == 20 and len({bar["label"] for bar in bars}) == 20
    assert bars[0]["label"] == "svm · C 19" and bars[0]["best"] and bars[0]["id"] == "run-19"  # best first
    assert {bar["colour"] for bar in bars if bar["label"].startswith("svm")} == {plots.classifier_colours(rows)["svm"]}
    assert all(0 <= bar["width"] <= 100 for bar in bars) and panel["zoomed"]
