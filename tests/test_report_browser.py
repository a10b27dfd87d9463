"""The HTML report in a real browser: headless Chromium loads it offline without console errors,
shows the leaderboard, and its inline script sorts the table; at 20 runs and 1400 / 1000 px wide no
element sticks out of its card and every label is short, unique and stable.

Needs the Debian package `chromium` (or any Chrome/Chromium on PATH, or $FEATUREBENCH_CHROMIUM);
skipped with that reason when none is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_report import HOSTILE_CLASS, HOSTILE_RUNS, chromium, chromium_binary, console_lines, hostile_results  # noqa: E402

from featurebench.report import build_report  # noqa: E402

BROWSER = chromium_binary()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="headless Chromium not found on PATH (install the Debian package `chromium`, or set FEATUREBENCH_CHROMIUM)",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    build_report(hostile_results(base / "results"), base / "report.html")
    return base


def _rows(dom: str) -> list[str]:
    table = dom.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr [^>]*data-run="([^"]+)"', table)


def test_page_loads_without_console_errors_and_shows_the_leaderboard(report):
    done = chromium(BROWSER, report / "profile", "--dump-dom", (report / "report.html").as_uri())
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_lines(done.stderr) == [], console_lines(done.stderr)
    assert 'data-sortable="ready"' in dom, "the inline script did not run to the end"
    assert sorted(_rows(dom)) == sorted(r[0] for r in HOSTILE_RUNS)
    assert "Leaderboard" in dom and "random-init baseline" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and HOSTILE_CLASS not in dom
    assert "Unreadable runs" in dom and "broken-run" in dom


def test_inline_script_sorts_the_leaderboard(report):
    fits = {r[0]: None for r in HOSTILE_RUNS}
    import json

    for name in fits:
        fits[name] = json.loads((report / "results" / name / "metrics.json").read_text())["fit_seconds"]
    done = chromium(BROWSER, report / "profile", "--dump-dom", (report / "report.html").as_uri() + "#sort=fit_seconds")
    assert console_lines(done.stderr) == []
    assert _rows(done.stdout) == sorted(fits, key=fits.get)
    assert 'aria-sort="ascending"' in done.stdout and 'class="leaderboard"' in done.stdout  # grouping off


def test_screenshot_renders(report):
    from PIL import Image, ImageStat

    shot = report / "shot.png"
    chromium(BROWSER, report / "profile", "--window-size=1280,1400", f"--screenshot={shot}", (report / "report.html").as_uri())
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 1400)
    assert ImageStat.Stat(image).stddev[0] > 20, "the screenshot is blank"


def test_variants_zoom_and_baseline_are_visible_in_the_browser(tmp_path):
    from fixtures_report import variant_results

    build_report(variant_results(tmp_path / "results"), tmp_path / "report.html")
    done = chromium(BROWSER, tmp_path / "profile", "--dump-dom", (tmp_path / "report.html").as_uri())
    dom = done.stdout
    assert done.returncode == 0 and console_lines(done.stderr) == [], done.stderr[-2000:]
    leaderboard = dom.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    variants = re.findall(r'<span class="variant"[^>]*>([^<]+)</span>', leaderboard)
    assert sorted(variants) == ["lr 0.0001", "scale standard"]
    assert len(_rows(dom)) == 6
    assert "do not start at 0" in dom and "dashed line is the dataset's best baseline" in dom
    assert "baseline 62.00% (random-init resnet50 + logreg)" in dom
    stats = dom.split('class="stats"', 1)[1].split("</header>", 1)[0]
    assert "<span>dataset</span>" in stats and "datasets" not in stats


# --- layout at real sizes: 20 runs, 1400 and 1000 px wide -------------------------------------------

#: Appended to a copy of the report (the page itself carries no hook): after the page has loaded, lists
#: every element that sticks out of its card or scrolls/clips sideways, the chart's bar labels and the
#: leaderboard's variant labels, as JSON in <pre id="layout-check">.
LAYOUT_CHECK = """
window.addEventListener("load", function () {
  function name(el) {
    var cls = typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : "";
    return el.tagName.toLowerCase() + cls + " '" + (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 50) + "'";
  }
  var problems = [];
  document.querySelectorAll("section.card").forEach(function (card) {
    var box = card.getBoundingClientRect();
    card.querySelectorAll("*").forEach(function (el) {
      var r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) { return; }
      if (r.right > box.right + 1 || r.left < box.left - 1) {
        problems.push("outside its card (" + Math.round(r.left - box.left) + ".." + Math.round(r.right - box.left) +
                      " px of " + Math.round(box.width) + "): " + name(el));
      }
      if (/auto|scroll|hidden/.test(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1) {
        problems.push("scrolls or clips sideways (" + el.scrollWidth + " > " + el.clientWidth + " px): " + name(el));
      }
    });
  });
  var bars = Array.prototype.map.call(document.querySelectorAll(".chart .panel"), function (panel) {
    var group = "", out = [];
    Array.prototype.forEach.call(panel.querySelectorAll(".bars > .ext, .bars > .bar-label"), function (el) {
      if (el.classList.contains("ext")) { group = el.textContent.trim(); }
      else { out.push([group, el.textContent.trim(), el.getAttribute("data-run")]); }
    });
    return out;
  });
  var variants = Array.prototype.map.call(document.querySelectorAll("#leaderboard tbody tr"), function (tr) {
    var v = tr.querySelector("span.variant:not(.group-label)");
    return [tr.getAttribute("data-run"), v ? v.textContent.trim() : ""];
  });
  var wrap = document.getElementById("leaderboard").parentNode;
  var pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify({width: window.innerWidth, problems: problems, bars: bars, variants: variants,
                                    leaderboard: [wrap.scrollWidth, wrap.clientWidth]});
  document.body.appendChild(pre);
});
"""


def _layout(html: Path, width: int, profile: Path) -> dict:
    import html as entities
    import json

    page = html.with_name(html.stem + "-check.html")
    page.write_text(html.read_text(encoding="utf-8").replace("</body>", f"<script>{LAYOUT_CHECK}</script></body>"),
                    encoding="utf-8")
    done = chromium(BROWSER, profile, f"--window-size={width},1200", "--virtual-time-budget=10000", "--dump-dom",
                    page.as_uri())
    assert console_lines(done.stderr) == [], console_lines(done.stderr)
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the layout check did not run:\n{done.stderr[-2000:]}"
    result = json.loads(entities.unescape(found.group(1)))
    assert result["width"] == width
    return result


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The report of 20 sweep runs, and of the same runs plus one newer."""
    from fixtures_report import sweep_results

    base = tmp_path_factory.mktemp("sweep")
    build_report(sweep_results(base / "results"), base / "report.html")
    build_report(sweep_results(base / "results-more", with_extra=True), base / "report-more.html")
    return base


@pytest.mark.parametrize("width", [1400, 1000])
def test_nothing_overflows_its_card_at_20_runs(sweep, width):
    """At 1400 and 1000 px: no element sticks out of its card or needs sideways scrolling (the leaderboard
    scrolled at 1400 px, the accuracy matrix was wider than its card at 1000 px, the chart was one PNG
    whose legend was cut)."""
    result = _layout(sweep / "report.html", width, sweep / "profile")
    assert result["problems"] == []
    scroll_width, client_width = result["leaderboard"]
    assert scroll_width <= client_width  # the leaderboard needs no horizontal scroll
    assert sum(len(panel) for panel in result["bars"]) == 20  # one labelled bar per run


def test_chart_and_leaderboard_labels_are_short_unique_and_stable(sweep):
    """Every bar's text label is at most 40 characters and unique within its panel and extractor; every
    leaderboard variant too (within dataset, extractor and classifier); adding a newer run changes no label
    already shown (labels were whole run names, 200-character settings dumps, and changed as runs came)."""
    from fixtures_report import SWEEP_EXTRA_RUN

    before = _layout(sweep / "report.html", 1400, sweep / "profile")
    after = _layout(sweep / "report-more.html", 1400, sweep / "profile")
    for result in (before, after):
        assert all(len(text) <= 40 for _, text in result["variants"]), [t for _, t in result["variants"] if len(t) > 40]
    assert {run: text for run, text in after["variants"] if run != SWEEP_EXTRA_RUN[0]} == dict(before["variants"])
    for result in (before, after):
        for panel in result["bars"]:
            labels = [(group, label) for group, label, _ in panel]
            assert len(set(labels)) == len(labels), labels
            assert all(0 < len(label) <= 40 for _, label in labels), labels
    bar_before = {run: label for panel in before["bars"] for _, label, run in panel}
    bar_after = {run: label for panel in after["bars"] for _, label, run in panel}
    assert len(bar_before) == 20 and len(bar_after) == 21
    assert {run: bar_after[run] for run in bar_before} == bar_before
