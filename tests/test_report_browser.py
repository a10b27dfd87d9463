"""The HTML report in a real browser: headless Chromium loads it offline without console errors,
shows the leaderboard, and its inline script sorts the table.

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
    assert sorted(variants) == ["lr 0.0001", "lr 0.001", "scale none", "scale standard"]
    assert len(_rows(dom)) == 6
    assert "do not start at 0" in dom and "dashed line is the dataset's best baseline" in dom
    assert "baseline 62.00% (random-init resnet50 + logreg)" in dom
    stats = dom.split('class="stats"', 1)[1].split("</header>", 1)[0]
    assert "<span>dataset</span>" in stats and "datasets" not in stats
