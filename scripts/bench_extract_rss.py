"""Peak memory vs number of images: ``featurebench extract`` at 1,000 vs 10,000 images (Coral TFLite by
default), each size in its own subprocess (peak RSS = ru_maxrss); the target is growth within 10%.

    python scripts/bench_extract_rss.py [--rss-images 1000,10000] [--models M]   # -> results/bench_extract_rss_<class>.md
    python scripts/bench_extract.py --rss-check                                 # the same (the recorded command)

Images, machine header and the shared options: scripts/bench_extract_common.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench_extract_common import header, loadavg, make_small_images, mib, run_script, spawn, subset

#: This benchmark's own options (argparse flag -> keyword arguments).
OPTIONS = {"--rss-images": {"default": "1000,10000"}}
#: results/<STEM>_<CPU class>.md
STEM = "bench_extract_rss"


def report(args, work: Path) -> list[str]:
    sizes = [int(n) for n in args.rss_images.split(",")]
    data = work / "small"
    if not data.exists():
        print(f"generating {max(sizes)} small JPEGs", flush=True)
        make_small_images(data, max(sizes))
    model = args.models[0] if len(args.models) == 1 else "coral"
    extra = [f"- Model: {model}; images: distinct small JPEGs (64-160 px) in 4 class folders",
             f"- Load average at the start: {loadavg()}",
             "- Each size in its own subprocess; peak RSS = ru_maxrss (includes the runtime and the model)", ""]
    lines = header("Peak memory vs number of images (featurebench extract)", sys.argv[1:], extra)
    lines += ["| images | peak RSS | img/s | output file |", "|---|---|---|---|"]
    results = {}
    for n in sizes:
        folder = subset(data, work, f"small-{n}", n) if n < max(sizes) else data
        print(f"[{time.strftime('%H:%M:%S')}] rss {n} (load {loadavg()})", flush=True)
        results[n] = spawn({"model": model, "data": str(folder), "out": str(work / f"rss-{n}.h5"), "kind": "extract"})
        r = results[n]
        lines.append(f"| {n:,} | {r['rss_mib']:.0f} MiB | {r['img_s']:.1f} | {mib(r['bytes'])} |")
    first, last = results[sizes[0]], results[sizes[-1]]
    growth = last["rss_mib"] / first["rss_mib"] - 1
    lines += ["", f"Peak RSS at {sizes[-1]:,} images is {growth:+.1%} relative to {sizes[0]:,} "
              f"(target: within 10%): {'met' if abs(growth) <= 0.10 else 'NOT met'}.", "",
              f"Load average at the end: {loadavg()}."]
    return lines


if __name__ == "__main__":
    run_script(__doc__, report, STEM, OPTIONS)
