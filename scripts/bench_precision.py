"""Speed at each precision, fixed costs, int8 calibration and reduced-size decoding, per CPU class.

One command per table, each written under ``results/`` with its exact command, the machine's
ISA flags and CPU class and the load average (the machine is shared: read the ratios
measured side by side in one run, not the absolute speeds)::

    python scripts/bench_precision.py --fixed-costs   # -> results/bench_fixed_costs_<class>.md
    python scripts/bench_precision.py --first-int8    # -> results/bench_first_int8_run_<class>.md
    python scripts/bench_precision.py --calibration-settings  # -> results/bench_calibration_settings_<class>.md
    python scripts/bench_precision.py --accuracy      # -> results/bench_accuracy_<class>.md
    python scripts/bench_precision.py --large-jpegs   # -> results/bench_large_jpegs_<class>.md
    python scripts/bench_precision.py                 # -> results/bench_extract_<class>.md

Each variant runs in its own process (``featurebench extract`` through the CLI, whole wall
time, start-up included, or ``scripts/bench_extract.py``'s workers for the in-process
timings), and the compared variants are interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the repository; FEATUREBENCH_SHARED for a checkout elsewhere (e.g. a git worktree).
SHARED = Path(os.environ.get("FEATUREBENCH_SHARED") or REPO.parent / "shared")
FLOWERS = SHARED / "datasets" / "flowers17"
DOGS = SHARED / "datasets" / "dogs-vs-cats" / "train"
DOGS_PATTERN = r"^(cat|dog)\."
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bench_extract_common as common  # noqa: E402 - the image generator, workers and table helpers

common.SHARED, common.CORAL = SHARED, SHARED / common.CORAL.relative_to(common.SHARED)

#: Runs ``featurebench extract`` like the console script, then says on stderr whether TensorFlow was imported.
CLI = """
import sys, time
from featurebench.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("BENCH " + ("tensorflow" if "tensorflow" in sys.modules else "no-tensorflow"), file=sys.stderr)
sys.exit(code)
"""


def cli_extract(source: Path, out: Path, *flags: str, env: dict | None = None) -> dict:
    """``featurebench extract`` in a fresh process: whole wall time, the in-loop seconds, CPU time."""
    started = time.perf_counter()
    before = os.times()
    proc = subprocess.run([sys.executable, "-c", CLI, "extract", str(source), "-o", str(out), "--force", *flags],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    after = os.times()
    if proc.returncode:
        raise RuntimeError(f"extract {source} {flags} failed:\n{proc.stderr[-3000:]}")
    import h5py

    with h5py.File(out) as h5:
        attrs = dict(h5.attrs)
        rows = len(h5["features"])
    return {"wall_s": wall, "loop_s": float(attrs["extract_seconds"]), "rows": rows,
            "cpu_s": (after.children_user + after.children_system) - (before.children_user + before.children_system),
            "tensorflow": "BENCH tensorflow" in proc.stderr, "attrs": attrs, "stderr": proc.stderr}


def reuse_or_extract(source: Path, out: Path, *flags: str, env: dict | None = None) -> dict:
    """:func:`cli_extract`, or the record of the same run made earlier in this work folder (``--keep``)."""
    record = out.with_suffix(".json")
    if out.exists() and record.exists() and json.loads(record.read_text())["flags"] == list(flags):
        print(f"  reusing {out.name} (made {time.ctime(record.stat().st_mtime)})", flush=True)
        r = json.loads(record.read_text())
        r["attrs"]["fast_decode"] = r["attrs"]["fast_decode"] in (True, "True")
        return r
    r = cli_extract(source, out, *flags, env=env)
    r["attrs"] = {"precision": str(r["attrs"]["precision"]), "fast_decode": bool(r["attrs"]["fast_decode"])}
    record.write_text(json.dumps({**r, "flags": list(flags)}, default=str))
    return r


def subset(source: Path, work: Path, per_class: int) -> Path:
    """The first ``per_class`` photos of every class folder of ``source``, as symlinks."""
    target = work / f"{source.name}-{per_class}"
    if target.exists():
        return target
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:per_class]:
            (target / folder.name / photo.name).symlink_to(photo)
    return target


def header(title: str, extra: list[str]) -> list[str]:
    from featurebench.extractors.cpu import cpu_class, isa_summary

    return [f"# {title}", "", f"Command: `python scripts/bench_precision.py {' '.join(sys.argv[1:])}`", "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- Machine: {isa_summary()}; CPU class {cpu_class()}; {os.cpu_count()} cores",
            f"- Versions: {common.versions()}",
            f"- Load average at the start: {common.loadavg()}", *extra, ""]


# --------------------------------------------------------------------------- fixed costs
def fixed_costs(args, work: Path) -> list[str]:
    """First run (empty model cache) vs later runs: wall time above the per-image loop."""
    data = subset(FLOWERS, work, 16)  # 16 x 17 = 272 real photos
    n = sum(1 for _ in data.rglob("*.jpg"))
    lines = header("Fixed costs of `featurebench extract`: first run vs cached model",
                   [f"- Data: {n} Flowers-17 photos (the first 16 of each class, ~500 px); model cache emptied "
                    "(`FEATUREBENCH_CACHE` a new folder) before each model's first run"])
    small = subset(FLOWERS, work, 1)  # 17 photos: the same fixed costs, almost no per-image work
    lines += ["`fixed s` = whole process wall time (Python start, imports, model build or cache read, "
              "compile, HDF5 assembly) minus the file's `extract_seconds` (the decode + forward loop over the "
              f"images). `fixed CPU s` (the number a loaded machine disturbs least) = the process CPU time of a "
              f"run over {sum(1 for _ in small.rglob('*.jpg'))} photos minus their share of the per-image CPU "
              "(from the difference to the 272-photo run). `--reuse-cache` keeps a model cache made by an "
              "earlier run in the same `--keep` folder (no first run then).", "",
              "| model | run | TensorFlow imported | wall s | per-image loop s | fixed s | process CPU s | note |",
              "|---|---|---|---|---|---|---|---|"]
    for model in args.models if "--models" in sys.argv else ["resnet50", "efficientnet_lite0"]:
        weights = SPEED_MODELS.get(model, "none")
        cache = work / f"cache-{model}"  # empty: the first run builds (Lite0: converts its checkpoint too)
        reuse = args.reuse_cache and (cache / "openvino").is_dir()
        if not reuse:
            shutil.rmtree(cache, ignore_errors=True)
        env = {"FEATUREBENCH_CACHE": str(cache)}
        cpu = {}
        for run in range(int(reuse), args.repeat + 1):
            for source, label in ((data, "272"), (small, "17")):
                if label == "17" and run == 0:
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] fixed costs {model} run {run + 1}, {label} photos "
                      f"(load {common.loadavg()})", flush=True)
                r = cli_extract(source, work / f"fixed-{model}.h5", "--model", model, "--weights", weights, env=env)
                hit = r["attrs"].get("openvino_cache_hit")
                note = f"{label} photos; " + ("cached model read" if hit else "built, converted, stored")
                cpu[label] = r["cpu_s"]
                lines.append(f"| {model} ({weights}) | {run + 1} | {'yes' if r['tensorflow'] else 'no'} | "
                             f"{r['wall_s']:.1f} | {r['loop_s']:.1f} | {r['wall_s'] - r['loop_s']:.1f} | "
                             f"{r['cpu_s']:.1f} | {note} |")
            if run > 0:
                per_image = (cpu["272"] - cpu["17"]) / 255
                lines.append(f"| {model} ({weights}) | {run + 1} | | | | | **fixed CPU s: "
                             f"{cpu['17'] - 17 * per_image:.2f}** | per-image CPU {1e3 * per_image:.1f} ms |")
    lines += ["", f"Load average at the end: {common.loadavg()}."]
    return lines


# --------------------------------------------------------------------------- accuracy
#: ``--variants`` names -> extract flags.
VARIANTS = {"fp32": ["--precision", "fp32"], "fp32+fast-decode": ["--precision", "fp32", "--fast-decode"],
            "bf16": ["--precision", "bf16"], "int8": ["--precision", "int8"],
            "int8+fast-decode": ["--precision", "int8", "--fast-decode"], "auto": ["--precision", "auto"]}
DATASETS = {"flowers17": (FLOWERS, []), "dogs-vs-cats": (DOGS, ["--label-pattern", DOGS_PATTERN])}


#: The logreg grid (standardised features, the scaler fitted on the train rows only), searched on
#: each dataset's first variant; every other variant is fitted with the C found there (one fit,
#: not a grid: a grid search took ~40 s of CPU per variant on the loaded 2-core machine). The
#: same classifier, split and test rows for every variant of a dataset.
C_GRID = [0.01, 0.1, 1.0]


def logreg_accuracy(path: Path, c: float | None = None) -> tuple[float, np.ndarray, float]:
    """Test accuracy, predictions and C of StandardScaler + LogisticRegression on the stored split:
    C searched over :data:`C_GRID` (cv=3) when ``c`` is None, else ``c``."""
    import h5py
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with h5py.File(path) as h5:
        x, y, split = h5["features"][()], h5["labels"][()], int(h5.attrs["split_index"])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=c or 1.0))
    if c is None:
        model = GridSearchCV(model, {"logisticregression__C": C_GRID}, cv=3, n_jobs=1)
    model.fit(x[:split], y[:split])
    predictions = model.predict(x[split:])
    if c is None:
        c = model.best_params_["logisticregression__C"]
    return float((predictions == y[split:]).mean()), predictions, c


def accuracy(args, work: Path) -> list[str]:
    """Each variant's test accuracy (logreg, stored split) on both real datasets, against fp32."""
    cache = work / "cache"  # calibrations made (and timed) from scratch
    env = {"FEATUREBENCH_CACHE": str(cache)}
    lines = header("Accuracy of each precision and of the reduced-size decode, on the real datasets",
                   ["- StandardScaler + LogisticRegression(max_iter=1000), C from GridSearchCV(C in {0.01, 0.1, 1}, cv=3) "
                    "on the first variant of each dataset and kept for the others; stored 75/25 "
                    "split (seed 42; one split: the same test rows for every variant of a dataset)",
                    f"- Models: {', '.join(args.models)} (real ImageNet weights); int8 calibrated on each "
                    "dataset's own train slice"])
    lines += ["| model | dataset | variant | ran as | wall s (whole run) | cosine to the first variant: min / 1st "
              "pct / mean | test accuracy (C) | change (points) | test predictions changed |",
              "|---|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        model_arg = str(common.CORAL) if model == "coral" else model
        for name in args.datasets:
            root, flags = DATASETS[name]
            reference = None
            for variant in args.variants:
                print(f"[{time.strftime('%H:%M:%S')}] accuracy {model} {name} {variant} (load {common.loadavg()})",
                      flush=True)
                out = work / f"acc-{model}-{name}-{variant}.h5"
                r = reuse_or_extract(root, out, "--model", model_arg, *flags, *VARIANTS[variant], env=env)
                import h5py

                with h5py.File(out) as h5:
                    feats = h5["features"][()]
                acc, predictions, c = logreg_accuracy(out, reference[3] if reference else None)
                ran = f"{r['attrs'].get('precision')}{' fast-decode' if r['attrs'].get('fast_decode') else ''}"
                if reference is None:
                    reference = (feats, acc, predictions, c)
                    cos = delta = changed = "-"
                else:
                    cosines = common.cosines(reference[0], feats)
                    cos = f"{cosines.min():.4f} / {np.percentile(cosines, 1):.4f} / {cosines.mean():.4f}"
                    delta = f"{100 * (acc - reference[1]):+.2f}"
                    changed = f"{int((predictions != reference[2]).sum())} of {len(predictions)}"
                lines.append(f"| {model} | {name} | {variant} | {ran} | {r['wall_s']:.1f} | {cos} | {acc:.4f} ({c:g}) "
                             f"| {delta} | {changed} |")
    lines += ["", f"Load average at the end: {common.loadavg()}."]
    return lines


# --------------------------------------------------------------------------- first int8 run
def first_int8_run(args, work: Path) -> list[str]:
    """A first int8 run (calibration included) vs the fp32 run, on the 1,000-image Dogs vs Cats set."""
    from featurebench.extractors.int8 import CALIBRATION_IMAGES, HOLDOUT_IMAGES

    models = args.models if "--models" in sys.argv else ["resnet50"]
    lines = header("The first int8 run on a source (calibration included) vs the fp32 run",
                   ["- Data: Dogs vs Cats, 1,000 photos; whole `featurebench extract` processes; each run with an "
                    "empty cache (`FEATUREBENCH_CACHE` a new folder): both pay TensorFlow, the build and the "
                    f"conversion, int8 also the calibration ({CALIBRATION_IMAGES} train images) and its "
                    f"{HOLDOUT_IMAGES}-image check"])
    lines += ["| model | precision | whole wall s | per-image loop s | process CPU s | wall / fp32 | CPU / fp32 "
              "| classic script / this (wall) |", "|---|---|---|---|---|---|---|---|"]
    for model in models:
        weights = SPEED_MODELS.get(model, "none")
        classic = None
        if model in common.KERAS_MODULES:  # the classic script's Keras applications
            print(f"[{time.strftime('%H:%M:%S')}] classic script {model} (load {common.loadavg()})", flush=True)
            classic = common.spawn({"kind": "classic", "model": model, "data": str(DOGS), "dtype": "float64",
                                    "weights": weights, "out": str(work / f"first-{model}-classic.h5")})["e2e_s"]
            lines.append(f"| {model} ({weights}) | classic script (TensorFlow fp32) | {classic:.1f} | | | | | 1.00 |")
        runs = {}
        for precision in ("fp32", "int8"):
            cache = work / f"first-{model}-{precision}"
            shutil.rmtree(cache, ignore_errors=True)
            print(f"[{time.strftime('%H:%M:%S')}] first run {model} {precision} (load {common.loadavg()})", flush=True)
            runs[precision] = cli_extract(DOGS, work / f"first-{model}-{precision}.h5", "--model", model, "--weights",
                                          weights, "--label-pattern", DOGS_PATTERN, "--precision", precision,
                                          env={"FEATUREBENCH_CACHE": str(cache)})
        for precision, r in runs.items():
            versus_classic = f"{classic / r['wall_s']:.2f}" if classic else "-"
            lines.append(f"| {model} ({weights}) | {r['attrs'].get('precision')} | {r['wall_s']:.1f} | "
                         f"{r['loop_s']:.1f} | {r['cpu_s']:.1f} | {r['wall_s'] / runs['fp32']['wall_s']:.2f} | "
                         f"{r['cpu_s'] / runs['fp32']['cpu_s']:.2f} | {versus_classic} |")
    lines += ["", f"Load average at the end: {common.loadavg()}."]
    return lines


# --------------------------------------------------------------------------- calibration settings
def calibration_settings(args, work: Path) -> list[str]:
    """NNCF settings (images, batch, bias correction): calibration CPU time and int8-vs-fp32 cosine
    on 200 held-out test photos, EfficientNet-Lite0 (real weights) on Flowers-17, in this process."""
    import nncf

    from featurebench.extract import ExtractOptions, shuffled
    from featurebench.extractors import int8, load_extractor

    os.environ["FEATUREBENCH_CACHE"] = str(work / "cache")
    opts = ExtractOptions(source=str(FLOWERS), output="unused.h5", model="efficientnet_lite0")
    listing = opts.list_images(opts.source)
    candidates = shuffled(listing, 42)
    extractor = load_extractor("efficientnet_lite0", precision="int8", engine="openvino")
    decode = opts.decode_options(extractor.input_size, "stretch", False)
    usable = [c[0] for c in candidates if not c[2]]
    train, test = usable[:int(len(usable) * 0.75)], usable[int(len(usable) * 0.75):][:200]
    calibration = int8._decode_all(listing.root, train[:300], decode, 2)  # noqa: SLF001
    held_out = int8._decode_all(listing.root, test, decode, 2)  # noqa: SLF001

    def features(run) -> np.ndarray:
        return np.concatenate([run(extractor.prepare(np.stack(held_out[i:i + 16]))) for i in range(0, 200, 16)])

    reference = features(extractor.openvino.compile(extractor.openvino.fp32_model, "fp32")[0])
    lines = header("int8 calibration settings: CPU time and closeness to fp32",
                   ["- EfficientNet-Lite0 (real weights), Flowers-17: calibration on the front of the train slice, "
                    "cosine to fp32 on the first 200 test-slice photos; one process, settings one after another"])
    lines += ["| images | batch | bias correction | calibration wall s | calibration CPU s | cosine mean / 1st pct / "
              "min |", "|---|---|---|---|---|---|"]
    for setting in args.settings:
        count, batch, correction = setting.split(":")
        count, batch = int(count), int(batch)
        items = [np.stack(calibration[i:i + batch]) for i in range(0, count, batch)]
        advanced = nncf.AdvancedQuantizationParameters(batchwise_statistics=batch > 1,
                                                        disable_bias_correction=correction == "none")
        print(f"[{time.strftime('%H:%M:%S')}] calibration {setting} (load {common.loadavg()})", flush=True)
        started, cpu = time.perf_counter(), time.process_time()
        with int8._diagnostics_to_stderr():  # noqa: SLF001
            quantized = nncf.quantize(extractor.openvino.fp32_model, nncf.Dataset(items, extractor.prepare),
                                      subset_size=len(items), fast_bias_correction=correction == "fast",
                                      advanced_parameters=advanced)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        c = common.cosines(reference, features(extractor.openvino.compile(quantized, "int8")[0]))
        lines.append(f"| {count} | {batch} | {correction} | {wall:.1f} | {cpu:.1f} | {c.mean():.4f} / "
                     f"{np.percentile(c, 1):.4f} / {c.min():.4f} |")
    lines += ["", f"Load average at the end: {common.loadavg()}."]
    return lines


# --------------------------------------------------------------------------- speed per precision
SPEED_MODELS = {"resnet50": "none", "mobilenet": "none", "efficientnet_lite0": "imagenet"}
PRECISIONS = ("fp32", "bf16", "int8")


def speed(args, work: Path) -> list[str]:
    """fp32 / bf16 / int8 per model: ``extract`` and the forward pass alone; then auto vs the classic script."""
    os.environ["FEATUREBENCH_CACHE"] = str(work / "cache")  # the workers share the calibrations
    data = work / "images"
    if not data.exists():
        common.make_images(data, args.images)
    n = len(common.image_paths(data))
    lines = header("Every precision on this CPU class: `extract` vs the engine's forward pass",
                   [f"- Images: {n} generated JPEGs (long side 300-1200 px, cut from the real photos) + the sample "
                    f"photos; repeat {args.repeat}, interleaved, best kept",
                    "- `extract` img/s and CPU ms exclude the model build (or cache read), int8 calibration and the "
                    "first call, as the forward pass does; each variant in its own process",
                    "- ResNet50 and MobileNet with random-init weights (speed does not depend on the values), "
                    "EfficientNet-Lite0 with its real ImageNet weights"])
    lines += ["| model | precision | ran as | `extract` img/s | `extract` CPU ms/img | forward pass img/s (batch) "
              "| forward CPU ms/img | `extract` / forward pass | img/s vs fp32 `extract` | CPU vs fp32 `extract` |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        base = {"model": model, "data": str(data), "weights": SPEED_MODELS.get(model, "none")}
        print(f"[{time.strftime('%H:%M:%S')}] speed {model}: calibrating int8 once (load {common.loadavg()})",
              flush=True)
        common.spawn({**base, "kind": "extract", "out": str(work / f"speed-{model}-warm.h5"),
                      "opts": {"precision": "int8"}})
        plan = {}
        for precision in PRECISIONS:
            plan[f"extract {precision}"] = {**base, "kind": "extract", "out": str(work / f"speed-{model}.h5"),
                                            "opts": {"precision": precision}}
            plan[f"model {precision}"] = {**base, "kind": "model", "precision": precision, "sweep": [16]}
        best = common.run_plan(plan, args.repeat, model)
        fp32 = best["extract fp32"]
        for precision in PRECISIONS:
            e, m = best[f"extract {precision}"], best[f"model {precision}"]
            lines.append(f"| {model} | {precision} | {e['ran']} | {e['img_s']:.1f} | {e['cpu_ms']:.1f} | "
                         f"{m['img_s']:.1f} ({m['batch']}) | {m['cpu_ms']:.1f} | {e['img_s'] / m['img_s']:.2f} | "
                         f"{e['img_s'] / fp32['img_s']:.2f}x | {fp32['cpu_ms'] / e['cpu_ms']:.2f}x |")
    lines += ["", f"Load average after the precision runs: {common.loadavg()}.", ""]
    lines += auto_vs_classic(args, data, work)
    lines += ["", f"Load average at the end: {common.loadavg()}."]
    return lines


#: ``--large-jpegs`` variants: name -> ``ExtractOptions`` overrides (auto's choice on avx512-vnni is the last).
LARGE_VARIANTS = {"fp32": {"precision": "fp32"}, "fp32 + reduced decode": {"precision": "fp32", "fast_decode": True},
                  "int8": {"precision": "int8"}, "int8 + reduced decode": {"precision": "int8", "fast_decode": True}}


def large_jpegs(args, work: Path) -> list[str]:
    """EfficientNet-Lite0 (real weights) over 1-5 MP JPEGs: each precision with and without the reduced decode."""
    os.environ["FEATUREBENCH_CACHE"] = str(work / "cache")  # the int8 runs share one calibration
    data = work / "large-images"
    if not data.exists():
        common.make_images(data, args.images, seed=5, sizes=(1300, 2300))
    paths = common.image_paths(data)
    from PIL import Image

    megapixels = [Image.open(p).size[0] * Image.open(p).size[1] / 1e6 for p in paths if "samples" not in p.parts]
    lines = header("EfficientNet-Lite0 over large JPEGs: precision x reduced-size decode",
                   [f"- Images: {len(paths)} JPEGs: {len(megapixels)} generated from the real photos at "
                    f"{min(megapixels):.1f}-{max(megapixels):.1f} MP (median {np.median(megapixels):.1f} MP) + the "
                    f"sample photos; repeat {args.repeat}, interleaved, best kept; each variant in its own process",
                    "- `extract` img/s and CPU ms exclude the model build (or cache read), int8 calibration and the "
                    "first call; decode threads: the default"])
    lines += ["| variant | ran as | `extract` img/s | `extract` CPU ms/img | img/s vs fp32 | CPU vs fp32 |",
              "|---|---|---|---|---|---|"]
    base = {"model": "efficientnet_lite0", "data": str(data), "weights": "imagenet", "kind": "extract"}
    common.spawn({**base, "out": str(work / "large-warm.h5"), "opts": {"precision": "int8"}})  # calibrate once
    plan = {name: {**base, "out": str(work / "large.h5"), "opts": opts} for name, opts in LARGE_VARIANTS.items()}
    best = common.run_plan(plan, args.repeat, "efficientnet_lite0")
    fp32 = best["fp32"]
    for name, r in best.items():
        lines.append(f"| {name} | {r['ran']} | {r['img_s']:.1f} | {r['cpu_ms']:.1f} | {r['img_s'] / fp32['img_s']:.2f}x "
                     f"| {fp32['cpu_ms'] / r['cpu_ms']:.2f}x |")
    lines += ["", f"Load average at the end: {common.loadavg()}."]
    return lines


def auto_vs_classic(args, data: Path, work: Path) -> list[str]:
    """ResNet50, start-up included: the classic script's whole process vs `extract --precision auto`'s."""
    n = len(common.image_paths(data))
    lines = ["## ResNet50, start-up included: the classic script vs `featurebench extract --precision auto`", "",
             f"{n} images; whole process wall time (Python start, imports, model build or cache read, calibration "
             "where it runs, every image, the file). Classic: the book-style loop of `scripts/bench_extract.py` "
             "(TensorFlow `model.predict` per batch of 32, float64 h5py). `auto` with empty caches (its first "
             "run on a source: build, conversion, int8 calibration) and with the caches filled (every later run). "
             "Interleaved, best of the repeats.", "",
             "| variant | ran as | whole wall s | classic / variant |", "|---|---|---|---|"]
    runs: dict[str, list[float]] = {"classic": [], "auto, first run": [], "auto, cached": [], "fp32, first run": []}
    ran: dict[str, str] = {}
    for repeat in range(args.repeat):
        cold = {"FEATUREBENCH_CACHE": str(work / f"cold-{repeat}")}
        print(f"[{time.strftime('%H:%M:%S')}] auto vs classic, round {repeat + 1} (load {common.loadavg()})",
              flush=True)
        classic = common.spawn({"kind": "classic", "model": "resnet50", "data": str(data), "dtype": "float64",
                                "out": str(work / "classic.h5")})
        runs["classic"].append(classic["e2e_s"])
        ran["classic"] = "tensorflow fp32"
        for name, flags, env in (("auto, first run", ["--precision", "auto"], cold),
                                 ("auto, cached", ["--precision", "auto"], cold),
                                 ("fp32, first run", ["--precision", "fp32"], cold)):  # only int8's graph cached
            r = cli_extract(data, work / "auto.h5", "--model", "resnet50", "--weights", "none", *flags, env=env)
            runs[name].append(r["wall_s"])
            ran[name] = f"{r['attrs'].get('engine')} {r['attrs'].get('precision')}" + (
                ", no TensorFlow imported" if not r["tensorflow"] else "")
    classic_best = min(runs["classic"])
    for name, walls in runs.items():
        lines.append(f"| {name} | {ran[name]} | {min(walls):.1f} | {classic_best / min(walls):.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixed-costs", action="store_true", help="first run vs cached model: start-up costs")
    parser.add_argument("--reuse-cache", action="store_true", help="--fixed-costs: keep the --keep folder's cache")
    parser.add_argument("--accuracy", action="store_true", help="accuracy of each variant on the real datasets")
    parser.add_argument("--models", default="efficientnet_lite0", help="comma-separated models (coral: the TFLite one)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ",".join(DATASETS))
    parser.add_argument("--variants", default="fp32,fp32+fast-decode,bf16,int8",
                        help="comma-separated: " + ",".join(VARIANTS))
    parser.add_argument("--first-int8", action="store_true", help="first int8 run vs fp32 run, 1,000 photos")
    parser.add_argument("--large-jpegs", action="store_true", help="Lite0 on 1-5 MP JPEGs: precision x reduced decode")
    parser.add_argument("--calibration-settings", action="store_true", help="NNCF settings: CPU time, cosine")
    parser.add_argument("--settings", default="300:1:full,300:1:fast,300:16:fast,128:16:fast",
                        help="comma-separated images:batch:full|fast|none (bias correction)")
    parser.add_argument("--images", type=int, default=160, help="generated JPEGs for the speed runs")
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant")
    parser.add_argument("--out", help="Markdown file to write (default: results/<table>_<CPU class>.md)")
    parser.add_argument("--keep", help="keep the generated images and files in this folder")
    args = parser.parse_args()
    args.models, args.datasets, args.variants, args.settings = (
        value.split(",") for value in (args.models, args.datasets, args.variants, args.settings))
    from featurebench.extractors.cpu import cpu_class

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_precision-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.fixed_costs:
        lines, name = fixed_costs(args, work), "bench_fixed_costs"
    elif args.first_int8:
        lines, name = first_int8_run(args, work), "bench_first_int8_run"
    elif args.calibration_settings:
        lines, name = calibration_settings(args, work), "bench_calibration_settings"
    elif args.accuracy:
        lines, name = accuracy(args, work), "bench_accuracy"
    elif args.large_jpegs:
        lines, name = large_jpegs(args, work), "bench_large_jpegs"
    else:
        if args.models == ["efficientnet_lite0"] and "--models" not in sys.argv:
            args.models = list(SPEED_MODELS)
        lines, name = speed(args, work), "bench_extract"
    out = Path(args.out or REPO / "results" / f"{name}_{cpu_class()}.md")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
