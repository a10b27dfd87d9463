"""Real size on one machine: extract / fit / audit / report as the number of images or rows grows.

    nice -n 5 python scripts/bench_scale_size.py make 10000 /tmp/synth10k      # N synthetic JPEGs
    nice -n 5 python scripts/bench_scale_size.py extract /tmp/synth10k          # peak RSS, img/s first/last 10%
    nice -n 5 python scripts/bench_scale_size.py resume /tmp/synth10k           # kill -9 at 50%, resume, compare
    nice -n 5 python scripts/bench_scale_size.py fit 100000 1280 100 --clf sgd  # synthetic features
    nice -n 5 python scripts/bench_scale_size.py audit 100000 1280 100
    nice -n 5 python scripts/bench_scale_size.py report 1000
    python scripts/bench_scale_size.py table                                    # -> results/bench_scale.md

Each measurement runs in a fresh child process (its peak RSS is ``ru_maxrss`` of that child
alone) and appends one JSON line to results/bench_scale_size.jsonl with the machine's CPU
class and 1-minute load average; ``table`` renders them into results/bench_scale.md (between
its markers, the rest of that file is scripts/bench_scale.py's). Images: ``make`` writes
``N`` JPEGs of 96x96 (quality 90, smooth random blobs, 100 class folders) in 1-2 s per 1,000.
Extraction uses the Coral MobileNet v1 embedding extractor (TFLite, 1,024-d) from
../shared/models/coral/, the fastest real pretrained model here, so that 10^4 images fit in
minutes on 2 shared cores; its memory profile is the data path's, which is what grows with N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
#: ../shared beside the repository (or beside the folder of worktrees that holds it).
SHARED = next((p / "shared" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()), REPO.parent / "shared")
MODEL = SHARED / "models" / "coral" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
LOG = REPO / "results" / "bench_scale_size.jsonl"
MARK_BEGIN, MARK_END = "<!-- bench_scale_size: begin -->", "<!-- bench_scale_size: end -->"


def machine() -> dict:
    from featurebench.extractors.cpu import cpu_class, isa_summary

    return {"cpu_class": cpu_class(), "isa": isa_summary(), "cpus": os.cpu_count(),
            "load1": round(os.getloadavg()[0], 1)}


def record(kind: str, **values) -> None:
    entry = {"kind": kind, **machine(), "command": " ".join(sys.argv), **values}
    LOG.parent.mkdir(exist_ok=True)
    with open(LOG, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    print(json.dumps(entry))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make(n: int, folder: Path, classes: int = 100, seed: int = 0) -> None:
    """``n`` JPEGs in ``classes`` class folders (class k: a blob hue of its own, plus noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96]
    for i in range(n):
        k = i % classes
        cy, cx = rng.integers(16, 80, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 18.0 ** 2))
        hue = np.array([(k * 37) % 256, (k * 91) % 256, (k * 53) % 256], np.float32)
        img = blob[..., None] * hue + rng.normal(60, 20, (96, 96, 3))
        path = folder / f"c{k:03d}" / f"img{i:07d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def child_extract(source: str, output: str, timeline: str) -> None:
    """In a child: one extract; writes (seconds, done) after every batch and the peak RSS."""
    from featurebench.extract import ExtractOptions, run_extract

    marks: list[tuple[float, int]] = []
    started = time.perf_counter()
    summary = run_extract(ExtractOptions(source, output, str(MODEL), force=False, workers=2, precision="fp32"),
                          progress=lambda done, total: marks.append((time.perf_counter() - started, done)))
    Path(timeline).write_text(json.dumps({"marks": marks, "rows": summary.n_rows, "rss_mb": peak_rss_mb(),
                                          "resumed_from": summary.resumed_from, "seconds": summary.seconds}))


def _rate(marks: list, lo: float, hi: float, total: int) -> float:
    """img/s over the candidates from ``lo`` to ``hi`` (fractions of ``total``)."""
    inside = [(t, d) for t, d in marks if lo * total <= d <= hi * total]
    (t0, d0), (t1, d1) = inside[0], inside[-1]
    return (d1 - d0) / (t1 - t0) if t1 > t0 else float("nan")


def extract(source: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    output, timeline = work / f"{source.name}.h5", work / f"{source.name}.json"
    output.unlink(missing_ok=True)
    subprocess.run([sys.executable, __file__, "_child_extract", str(source), str(output), str(timeline)], check=True)
    got = json.loads(timeline.read_text())
    total = got["marks"][-1][1]
    record("extract", images=total, rows=got["rows"], peak_rss_mb=round(got["rss_mb"]),
           seconds=round(got["seconds"], 1), img_s=round(total / got["seconds"], 1),
           img_s_first10=round(_rate(got["marks"], 0.0, 0.1, total), 1),
           img_s_last10=round(_rate(got["marks"], 0.9, 1.0, total), 1), model=MODEL.name)


def resume(source: Path, work: Path) -> None:
    """kill -9 the extract at 50% of the candidates, resume it, compare with an uninterrupted file."""
    import h5py

    work.mkdir(parents=True, exist_ok=True)
    reference = work / f"{source.name}.h5"
    if not reference.exists():
        raise SystemExit(f"run `extract {source}` first (the uninterrupted reference {reference})")
    output, timeline = work / f"{source.name}-resumed.h5", work / f"{source.name}-resumed.json"
    for stale in (output, Path(str(output) + ".partial")):
        subprocess.run(["rm", "-rf", str(stale)], check=True)
    with h5py.File(reference, "r") as ref:
        total = int(ref.attrs["n_candidates"])
    child = subprocess.Popen([sys.executable, __file__, "_child_extract", str(source), str(output), str(timeline)])
    partial = Path(str(output) + ".partial")
    while child.poll() is None:
        shards = sorted(partial.glob("rows-*.npz")) if partial.is_dir() else []
        done = sum(int(s.stem.split("-")[-1]) - int(s.stem.split("-")[1]) for s in shards) if shards else 0
        if done >= total // 2:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    child.wait()
    killed = child.returncode == -signal.SIGKILL
    subprocess.run([sys.executable, __file__, "_child_extract", str(source), str(output), str(timeline)], check=True)
    got = json.loads(timeline.read_text())
    with h5py.File(output, "r") as a, h5py.File(reference, "r") as b:
        same = all(np.array_equal(a[name][()], b[name][()]) for name in ("paths", "labels", "features",
                                                                         "skipped/path"))
    record("resume", images=total, killed_at_signal=killed, resumed_from=got["resumed_from"], identical=bool(same))


def timed(cmd: list[str]) -> dict:
    """Run a featurebench command in a child: wall seconds, its peak RSS (MB), return code, error line."""
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "featurebench", *cmd],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = run.stderr.strip().splitlines()
    return {"wall_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(int(lines[-1]) / 1024) if run.returncode == 0 else None,
            "returncode": run.returncode, "error": (lines[-2] if len(lines) > 1 else "")[:300] if run.returncode else ""}


def synthetic_features(path: Path, n: int, dim: int, classes: int, seed: int = 0) -> Path:
    """A feature file of ``n`` x ``dim`` float32 rows of ``classes`` Gaussian blobs, written in chunks."""
    import h5py

    if path.exists():
        return path
    sys.path.insert(0, str(REPO / "tests"))
    from test_fit import write  # the test suite's writer of a valid feature file

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, dim)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    features = np.empty((n, dim), np.float32)
    for a in range(0, n, 10_000):
        b = min(n, a + 10_000)
        features[a:b] = centres[labels[a:b]] + rng.normal(0, 4.0, (b - a, dim)).astype(np.float32)
    write(path, features, labels, dataset=f"synth{n}", model=f"synth{dim}")
    del features
    with h5py.File(path, "r") as handle:
        assert handle["features"].shape == (n, dim)
    return path


def fit(n: int, dim: int, classes: int, clf: str, grid: str | None, max_memory: str | None, work: Path) -> None:
    features = synthetic_features(work / f"feat_{n}x{dim}x{classes}.h5", n, dim, classes)
    out = work / f"fit_{n}_{dim}_{clf}"
    cmd = ["fit", str(features), "--clf", clf, "--out", str(out), "--force", "--n-jobs", "2",
           *(["--grid", grid] if grid else []), *(["--max-memory", max_memory] if max_memory else [])]
    result = timed(cmd)
    metrics = next(out.glob("*/metrics.json"), None)
    values = json.loads(metrics.read_text()) if metrics and result["returncode"] == 0 else {}
    record("fit", rows=n, dim=dim, classes=classes, clf=clf, grid=grid or "default", max_memory=max_memory or "",
           array_mb=round(n * dim * 4 / 2**20), accuracy=values.get("accuracy"), best_params=values.get("best_params"),
           **result)


def audit(n: int, dim: int, classes: int, labels: bool, work: Path) -> None:
    features = synthetic_features(work / f"feat_{n}x{dim}x{classes}.h5", n, dim, classes)
    result = timed(["audit", str(features), "--out", str(work / f"audit_{n}"), "--labels" if labels else "--no-labels"])
    record("audit", rows=n, dim=dim, classes=classes, labels=labels, array_mb=round(n * dim * 4 / 2**20), **result)


def report(runs: int, work: Path) -> None:
    """``featurebench report`` over ``runs`` run folders (the report tests' consistent synthetic records)."""
    sys.path.insert(0, str(REPO / "tests"))
    from fixtures_report import make_metrics, write_run

    results = work / f"report_{runs}"
    if not results.exists():
        extractors = ["resnet50", "vgg16", "mobilenet_v2", "efficientnet_lite0"]
        for i in range(runs):
            extractor, clf = extractors[i % 4], ["logreg", "svm", "xgb", "knn", "sgd"][(i // 4) % 5]
            write_run(results, make_metrics(f"run{i:04d}", dataset=f"set{i // 20}", extractor=extractor,
                                            classifier=clf, accuracy=0.5 + 0.45 * ((i * 7919) % 1000) / 1000))
    record("report", runs=runs, **timed(["report", str(results), "-o", str(work / "report.html"),
                                         "--md", str(work / "report.md"), "--csv", str(work / "runs.csv")]))


def _outcome(e: dict) -> str:
    return "ok" if e["returncode"] == 0 else f"failed: {e['error']}"


def _cells(e: dict) -> tuple:
    """(what, size, wall s, rate, peak RSS MB, result) of one JSON line."""
    if e["kind"] == "extract":
        return (f"extract ({e['model'].split('_quant')[0]})", f"{e['images']:,} JPEGs", e["seconds"],
                f"{e['img_s']} img/s (first 10%: {e['img_s_first10']}, last 10%: {e['img_s_last10']})",
                e["peak_rss_mb"], f"{e['rows']:,} rows")
    if e["kind"] == "resume":
        return ("extract, kill -9 at 50% + resume", f"{e['images']:,} JPEGs", "",
                f"resumed from row {e['resumed_from']:,}", "",
                f"killed: {e['killed_at_signal']}; identical to uninterrupted: {e['identical']}")
    size = f"{e.get('rows', 0):,} x {e.get('dim', 0):,} ({e.get('array_mb', 0):,} MB)"
    if e["kind"] == "fit":
        flags = f"--clf {e['clf']} --grid {e['grid']}" + (f" --max-memory {e['max_memory']}" if e["max_memory"] else "")
        result = (f"accuracy {e['accuracy']:.4f}, {e['best_params']}" if e.get("accuracy") is not None
                  else _outcome(e))
        return f"fit {flags}", f"{size}, {e['classes']} classes", e["wall_s"], "", e["peak_rss_mb"], result
    if e["kind"] == "audit":
        return (f"audit {'--labels' if e['labels'] else '--no-labels'}", size, e["wall_s"], "", e["peak_rss_mb"],
                _outcome(e))
    return "report", f"{e['runs']:,} runs", e["wall_s"], "", e["peak_rss_mb"], _outcome(e)


def _findings(entries: list[dict]) -> list[str]:
    """Ratios the issue asks about, computed from the entries (none where a run is missing)."""
    out = []
    extracts = sorted((e for e in entries if e["kind"] == "extract"), key=lambda e: e["images"])
    if len(extracts) >= 2:
        small, large = extracts[0], extracts[-1]
        out.append(f"- Peak RSS of extract, {large['images']:,} vs {small['images']:,} images: "
                   f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x (the goal: <= 1.1x).")
    for e in extracts:
        out.append(f"- img/s over the last vs the first 10% of the {e['images']:,}-image run: "
                   f"{e['img_s_last10'] / e['img_s_first10']:.2f}x (load {e['load1']} when it started: "
                   "other jobs on the 2 cores move it).")
    return out


def table() -> None:
    """Render every JSON line into results/bench_scale.md (between the markers)."""
    entries = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    lines = [MARK_BEGIN, "", "## Real size on one machine (scripts/bench_scale_size.py)", "",
             "Every row: one command, in a fresh process, on the shared 2-core machine; `load` is the 1-minute "
             "load average when it started. Commands: see the script's docstring.", "",
             "| what | size | wall s | img/s or rows | peak RSS MB | result | CPU class | load |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        lines.append("| " + " | ".join(str(cell) for cell in (*_cells(e), e["cpu_class"], e["load1"])) + " |")
    lines += ["", *_findings(entries), "", MARK_END]
    target = REPO / "results" / "bench_scale.md"
    text = target.read_text()
    if MARK_BEGIN in text:
        text = text[:text.index(MARK_BEGIN)] + text[text.index(MARK_END) + len(MARK_END):].lstrip("\n")
    target.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child_extract":
        child_extract(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["make", "extract", "resume", "fit", "audit", "report", "table"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fb-bench-scale"))
    parser.add_argument("--clf", default="logreg")
    parser.add_argument("--grid", default=None)
    parser.add_argument("--max-memory", default=None)
    parser.add_argument("--labels", action="store_true")
    opts = parser.parse_args()
    if opts.what == "make":
        make(int(opts.args[0]), Path(opts.args[1]))
    elif opts.what in ("extract", "resume"):
        (extract if opts.what == "extract" else resume)(Path(opts.args[0]), opts.work)
    elif opts.what == "fit":
        fit(*map(int, opts.args[:3]), opts.clf, opts.grid, opts.max_memory, opts.work)
    elif opts.what == "audit":
        audit(*map(int, opts.args[:3]), opts.labels, opts.work)
    elif opts.what == "report":
        report(int(opts.args[0]), opts.work)
    else:
        table()


if __name__ == "__main__":
    main()
