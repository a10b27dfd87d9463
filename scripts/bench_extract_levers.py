"""Extraction levers: decode cost, every ``extract`` lever (decode threads, look-ahead, prefetch, batch
size, LiteRT threads, engines), throughput vs image size, and the HDF5 layout (chunk rows, compression).

    python scripts/bench_extract_levers.py [--skip-sizes] [--repeat R]   # -> results/bench_extract_levers_<class>.md
    python scripts/bench_extract.py --levers                            # the same (the recorded command)

Each row runs in its own subprocess; img/s in-process (build and tracing excluded) and CPU ms per image.
Images, machine header and the shared options: scripts/bench_extract_common.py.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np

from bench_extract_common import (CORAL, best_of, decode_cost_rows, header, image_paths, loadavg, make_images,
                                 mib, run_script, spawn, subset)

#: This benchmark's own options (argparse flag -> keyword arguments).
OPTIONS = {"--skip-sizes": {"action": "store_true", "help": "--levers without the image-size scaling runs"}}
#: results/<STEM>_<CPU class>.md
STEM = "bench_extract_levers"


def _lever_rows(model: str, data: Path, work: Path, repeat: int) -> list[tuple[str, dict]]:
    base = {"model": model, "data": str(data), "out": str(work / f"lever-{model}.h5")}
    if model == "coral":
        default_bs = 32
    else:
        from featurebench.extractors import get_spec

        default_bs = get_spec(model).batch_size
    ext = [("extract default", {}), ("fast_decode", {"opts": {"fast_decode": True}}),
           ("workers=1", {"opts": {"workers": 1}}), ("workers=3", {"opts": {"workers": 3}}),
           ("lookahead=16", {"lookahead": 16}), ("lookahead=128", {"lookahead": 128}),
           ("decode threads nice +10", {"decode_nice": 10}), ("no batch prefetch thread", {"prefetch": 0}),
           ("prefetch 2 batches", {"prefetch": 2})]
    ext += [(f"batch={bs}", {"opts": {"batch_size": bs}}) for bs in (8, 16, 32, 64) if bs != default_bs]
    models = [("model-only (default engine)", {"kind": "model"})]
    tensorflow = {"engine": "tensorflow"}
    if model == "coral":
        ext += [(f"LiteRT threads={t}", {"tflite_threads": t}) for t in (1, 2)]
        models += [(f"model-only LiteRT threads={t}", {"kind": "model", "tflite_threads": t}) for t in (1, 2)]
    else:
        ext += [("engine tensorflow", {"opts": tensorflow}),
                ("precision bf16", {"opts": {"precision": "bf16"}}),
                ("bf16 + fast_decode", {"opts": {"precision": "bf16", "fast_decode": True}}),
                ("precision bf16, engine tensorflow", {"opts": {"precision": "bf16", **tensorflow}})]
        models += [("model-only TensorFlow tf.function", {"kind": "model", **tensorflow}),
                   ("model-only TensorFlow model.predict", {"kind": "model", "call": "predict",
                                                            "sweep": [default_bs], **tensorflow}),
                   ("model-only bf16", {"kind": "model", "precision": "bf16"}),
                   ("model-only bf16 TensorFlow", {"kind": "model", "precision": "bf16", **tensorflow})]
    if model == "vgg16":  # slow: only the forward passes and the extract default
        few = {"sweep": [16], "min_images": 32}
        ext = [("extract default", {})]
        models = [("model-only (default engine)", {"kind": "model", **few}),
                  ("model-only TensorFlow tf.function", {"kind": "model", **tensorflow, **few}),
                  ("model-only bf16", {"kind": "model", "precision": "bf16", **few}),
                  ("model-only bf16 TensorFlow", {"kind": "model", "precision": "bf16", **tensorflow, **few})]
    plan = [(label, {**base, "kind": "extract", **extra}) for label, extra in ext]
    plan += [(label, {**base, **extra}) for label, extra in models]
    results: dict[str, list[dict]] = {label: [] for label, _ in plan}
    for _ in range(repeat):
        for label, spec in plan:
            try:
                results[label].append(spawn(spec))
            except RuntimeError as exc:
                print(f"  {label}: FAILED {str(exc)[-300:]}", flush=True)
                continue
            print(f"  {model} {label}: {results[label][-1]['img_s']:.1f} img/s", flush=True)
    return [(label, best_of(runs)) for label, runs in results.items() if runs]


def _hdf5_costs(work: Path) -> list[str]:
    """Write/read time and size of a features dataset: chunk size and compression."""
    import h5py

    from featurebench.store.writer import chunk_rows

    lines = ["| features | chunk rows | compression | write s | read s | file size |", "|---|---|---|---|---|---|"]
    sources = []
    for path in sorted(work.glob("lever-*.h5")):
        with h5py.File(path) as h5:
            feats = h5["features"][()]
        sources.append((f"{path.stem[6:]} {feats.shape[1]}-d", feats))
    if not sources:
        sources = [("random 2048-d", np.random.default_rng(0).random((300, 2048), dtype=np.float32))]
    for name, feats in sources:
        feats = np.concatenate([feats] * max(1, 4000 // len(feats)))  # a few thousand rows, like a real data set
        default_rows = chunk_rows(feats.shape[1], 4, len(feats))
        for rows, comp in [(None, None), (default_rows, None), (64, None), (default_rows, "lzf"), (default_rows, "gzip")]:
            path = work / "chunk-test.h5"
            started = time.perf_counter()
            with h5py.File(path, "w") as h5:
                ds = h5.create_dataset("features", shape=feats.shape, dtype=np.float32, compression=comp,
                                       chunks=(min(rows, len(feats)), feats.shape[1]) if rows else None)
                for start in range(0, len(feats), 1000):
                    ds[start:start + 1000] = feats[start:start + 1000]
            write = time.perf_counter() - started
            started = time.perf_counter()
            with h5py.File(path) as h5:
                h5["features"][()]
            read = time.perf_counter() - started
            lines.append(f"| {name} x{len(feats)} rows | {rows or 'contiguous'} | {comp or 'none'} | {write:.3f} | {read:.3f} | "
                         f"{mib(path.stat().st_size)} |")
    return lines


def _decode_costs(data: Path) -> list[str]:
    rows = decode_cost_rows(image_paths(data))
    return ["| decode path | CPU ms/img |", "|---|---|"] + [f"| {name} | {ms:.2f} |" for name, ms in rows]


def _size_scaling(work: Path, repeat: int) -> list[str]:
    lines = ["| long side px | mobilenet img/s | mobilenet CPU ms/img | coral img/s | coral CPU ms/img "
             "| coral fast_decode img/s | coral fast_decode CPU ms/img |", "|---|---|---|---|---|---|---|"]
    for low, high in [(300, 360), (600, 700), (1100, 1200)]:
        data = work / f"size-{low}"
        if not data.exists():
            make_images(data, 96, seed=low, sizes=(low, high))
            shutil.rmtree(data / "samples", ignore_errors=True)
        cells = []
        for model, extra in [("mobilenet", {}), ("coral", {}), ("coral", {"opts": {"fast_decode": True}})]:
            if model == "coral" and not CORAL.exists():
                cells.append({"img_s": float("nan"), "cpu_ms": float("nan")})
                continue
            spec = {"model": model, "data": str(data), "out": str(work / "size.h5"), "kind": "extract", **extra}
            cells.append(best_of([spawn(spec) for _ in range(repeat)]))
        lines.append(f"| {low}-{high} | " + " | ".join(f"{c['img_s']:.1f} | {c['cpu_ms']:.1f}" for c in cells) + " |")
    return lines


def report(args, work: Path) -> list[str]:
    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    models = [m for m in args.models if m != "coral" or CORAL.exists()]
    extra = [f"- Images: {len(image_paths(data))} generated JPEGs + samples (resnet50, vgg16: the first 128)",
             f"- Load average at the start: {loadavg()}; repeat {args.repeat} (best kept)",
             "- Each row: its own subprocess; img/s in-process (build and tracing excluded); CPU ms/img = the "
             "process's CPU time per image (all threads), less sensitive to other jobs on the machine than img/s", ""]
    lines = header("Extraction levers", sys.argv[1:], extra)
    lines += [f"## Decode + resize to 224x224, one thread ({len(image_paths(data))} images above; read, digest, "
              "decode, EXIF, resize)", ""] + _decode_costs(data) + [""]
    for model in models:
        print(f"[{time.strftime('%H:%M:%S')}] levers {model} (load {loadavg()})", flush=True)
        model_data = subset(data, work, "subset-128", 128) if model in ("resnet50", "vgg16") else data
        load = loadavg()
        rows = _lever_rows(model, model_data, work, args.repeat)
        reference = dict(rows)["extract default"]["img_s"]
        lines += [f"## {model} (load before: {load})", "", "| variant | img/s | vs extract default | CPU ms/img | note |",
                  "|---|---|---|---|---|"]
        for label, r in rows:
            note = f"best batch {r['batch']}; sweep {r['sweep']}" if "sweep" in r else ""
            lines.append(f"| {label} | {r['img_s']:.1f} | {r['img_s'] / reference:.2f} | {r.get('cpu_ms', 0):.1f} | {note} |")
        lines.append("")
    if not args.skip_sizes:
        print(f"[{time.strftime('%H:%M:%S')}] image size scaling (load {loadavg()})", flush=True)
        lines += ["## Throughput vs image size (96 JPEGs per size, defaults)", ""] + _size_scaling(work, args.repeat)
    lines += ["", "## HDF5 writing: chunk rows and compression (features from the runs above, tiled)", ""]
    lines += _hdf5_costs(work)
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


if __name__ == "__main__":
    run_script(__doc__, report, STEM, OPTIONS)
