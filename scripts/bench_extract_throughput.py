"""Extraction throughput: the classic script vs ``featurebench extract`` vs the network alone.

    python scripts/bench_extract_throughput.py [--repeat R] [--models ...]   # -> results/bench_extract_<class>.md
    python scripts/bench_extract.py [--repeat R]                             # the same (the recorded command)

For each model (mobilenet, resnet50, vgg16 with ``weights=none``, and the Coral TFLite
MobileNet), each variant runs in its own subprocess (clean peak RSS), in-process timing:
TensorFlow import, model build and the first (tracing) call are excluded from every variant
alike; "e2e s" is the subprocess's whole wall time including them.

1. classic: per batch of 32 paths, ``cv2.imread`` + ``cv2.resize`` + ``img_to_array`` +
   ``preprocess_input`` in Python, ``model.predict(batch)``, rows buffered and written to an
   h5py dataset (float64 as the book's HDF5DatasetWriter; and float32);
2. ``featurebench extract`` with default settings, in-process via ``run_extract``
   (journal, fsyncs and HDF5 assembly included);
3. model-only: the forward pass alone (``model(x, training=False)`` in a ``tf.function``;
   LiteRT ``invoke``) on preloaded, preprocessed tensors, best of a batch-size sweep.

Images, machine header and the shared options: scripts/bench_extract_common.py.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench_extract_common import (CORAL, header, image_paths, loadavg, make_images, mib, run_plan,
                                 run_script)

#: results/<STEM>_<CPU class>.md
STEM = "bench_extract"


def _main_variants(model: str, base: dict, work: Path) -> dict[str, dict]:
    """The subprocess specs of one model's row: classic, extract (default and alternatives), model-only."""
    variants = {
        "classic64": {**base, "kind": "classic", "dtype": "float64", "out": str(work / f"{model}-classic64.h5")},
        "extract": {**base, "kind": "extract", "out": str(work / f"{model}-fb.h5"), "float16_copy": True},
        "model": {**base, "kind": "model"},
        "classic32": {**base, "kind": "classic", "dtype": "float32", "out": str(work / f"{model}-classic32.h5")},
    }
    if model != "coral":  # the engine and precision choices are for Keras models
        variants.update({
            "extract_tf": {**base, "kind": "extract", "out": str(work / f"{model}-tf.h5"),
                           "opts": {"engine": "tensorflow"}},
            "extract_bf16": {**base, "kind": "extract", "out": str(work / f"{model}-bf16.h5"),
                             "opts": {"precision": "bf16"}},
            "model_tf": {**base, "kind": "model", "engine": "tensorflow"},
        })
    return variants


def main_benchmark(args, data: Path, work: Path) -> list[str]:
    n_all = len(image_paths(data))
    lines_per_model = []
    loads = []
    for model in args.models:
        if model == "coral" and not CORAL.exists():
            continue
        model_data = data
        if model == "vgg16" and args.vgg_images < n_all:
            model_data = work / "vgg-subset"
            if not model_data.exists():
                for path in image_paths(data)[:args.vgg_images]:
                    target = model_data / path.relative_to(data)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)
        loads.append(f"{model}: {loadavg()}")
        print(f"[{time.strftime('%H:%M:%S')}] {model} (load {loadavg()})", flush=True)
        variants = _main_variants(model, {"model": model, "data": str(model_data)}, work)
        r = run_plan(variants, args.repeat, model)
        lines_per_model.append((model, r["classic64"]["n"], r))

    def rate(r: dict, key: str) -> str:
        return f"{r[key]['img_s']:.1f}" if key in r else "-"

    def ratio(r: dict, key: str, over: str, unit: str = "") -> str:
        return f"{r[key]['img_s'] / r[over]['img_s']:.2f}{unit}" if key in r and over in r else "-"

    out = [
        "(2) is `featurebench extract` with its defaults (OpenVINO fp32 for Keras models, LiteRT for the .tflite); "
        "(3) the issue's model-only limit, TensorFlow's compiled forward pass; (3') the same for the engine "
        "`extract` uses (OpenVINO; LiteRT for coral). bf16 is the opt-in `--precision bf16`.", "",
        "| model | images | (1) classic f64 img/s | classic f32 img/s | (2) extract img/s | extract --engine tensorflow "
        "| extract --precision bf16 | (3) model-only TF img/s (batch) | (3') model-only engine img/s (batch) "
        "| (2)/(1) | (2)/(3) | (2)/(3') | bf16/(1) | e2e s incl. start-up (1) / (2) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, n, r in lines_per_model:
        c, e, m = r["classic64"], r["extract"], r["model"]
        tf_model = r.get("model_tf", m)  # coral: LiteRT is both
        out.append(f"| {model} | {n} | {c['img_s']:.1f} | {rate(r, 'classic32')} | {e['img_s']:.1f} | "
                   f"{rate(r, 'extract_tf')} | {rate(r, 'extract_bf16')} | {tf_model['img_s']:.1f} "
                   f"({tf_model['batch']}) | {m['img_s']:.1f} ({m['batch']}) | {ratio(r, 'extract', 'classic64', 'x')} | "
                   f"{e['img_s'] / tf_model['img_s']:.2f} | {ratio(r, 'extract', 'model')} | "
                   f"{ratio(r, 'extract_bf16', 'classic64', 'x')} | {c['e2e_s']:.1f} / {e['e2e_s']:.1f} |")
    out += ["", "| model | peak RSS (1) classic | peak RSS (2) extract | peak RSS (3') model-only "
            "| file (1) float64 | file (1) float32 | file (2) float32 | file (2) float16 | (2) f32 / (1) f64 file "
            "(features only) | (2) f16 / (1) f64 file (features only) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for model, n, r in lines_per_model:
        c, e, m, c32 = r["classic64"], r["extract"], r["model"], r["classic32"]
        out.append(f"| {model} | {c['rss_mib']:.0f} MiB | {e['rss_mib']:.0f} MiB | {m['rss_mib']:.0f} MiB | "
                   f"{mib(c['bytes'])} | {mib(c32['bytes'])} | {mib(e['bytes'])} | {mib(e['bytes_f16'])} | "
                   f"{e['bytes'] / c['bytes']:.3f} ({e['feature_bytes'] / c['feature_bytes']:.3f}) | "
                   f"{e['bytes_f16'] / c['bytes']:.3f} ({e['feature_bytes_f16'] / c['feature_bytes']:.3f}) |")
    out += ["", "CPU ms per image (all threads; img/s on 2 cores can never beat 2000 / CPU ms): " + "; ".join(
        f"{model} " + ", ".join(f"{k} {v['cpu_ms']:.1f}" for k, v in r.items() if "cpu_ms" in v)
        for model, _, r in lines_per_model)]
    out += ["", "Engine and precision that ran (read back from each feature file): " + "; ".join(
        f"{model} " + ", ".join(f"{k} {v['ran']}" for k, v in r.items() if "ran" in v)
        for model, _, r in lines_per_model)]
    out += ["", "Model-only batch sweep (img/s): " + "; ".join(
        f"{model} engine {r['model']['sweep']}" + (f", TF {r['model_tf']['sweep']}" if "model_tf" in r else "")
        for model, _, r in lines_per_model), "",
        "Load average (1/5/15 min) before each model: " + "; ".join(loads) + f"; at the end: {loadavg()}."]
    return out


def report(args, work: Path) -> list[str]:
    """The throughput table: generated images, then every model's classic / extract / model-only rows."""
    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    extra = [f"- Images: {len(image_paths(data))} ({args.images} generated JPEGs, long side 300-1200 px, "
             f"+ ../shared/images/samples); vgg16 uses the first {args.vgg_images}",
             f"- Load average at the start: {loadavg()}; repeat {args.repeat} (best kept)",
             "- Timing: in-process, TF import + model build + first (tracing) call excluded from all three; "
             "each variant in its own subprocess (peak RSS = ru_maxrss of that process)", ""]
    lines = header("Extraction throughput: classic script vs featurebench extract vs model-only", sys.argv[1:], extra)
    return lines + main_benchmark(args, data, work)


if __name__ == "__main__":
    run_script(__doc__, report, STEM)
