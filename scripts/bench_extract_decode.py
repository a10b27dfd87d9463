"""JPEG decoders (speed, bit-exactness) and the decode share of ``extract``'s CPU time.

    python scripts/bench_extract_decode.py [--models M]    # -> results/bench_extract_decode_<class>.md
    python scripts/bench_extract.py --decode               # the same (the recorded command)

Images, machine header and the shared options: scripts/bench_extract_common.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bench_extract_common import (best_of, decode_cost_rows, header, image_paths, loadavg, make_images,
                                 run_script, source_photos, spawn)

#: results/<STEM>_<CPU class>.md
STEM = "bench_extract_decode"


def report(args, work: Path) -> list[str]:
    """``--decode``: JPEG decoders (speed, bit-exactness) and the decode share of extract's CPU time."""
    import cv2

    from featurebench.data import decode as decode_module
    from featurebench.data.decode import _decode_jpeg_simplejpeg  # noqa: SLF001

    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    real = source_photos()
    extra = [f"- Images: {len(image_paths(data))} generated JPEGs (long side 300-1200 px) + samples; "
             f"{len(real)} real photos from ../shared/datasets (Flowers-17, Dogs vs Cats)",
             f"- Load average at the start: {loadavg()}", ""]
    lines = header("JPEG decoding: decoders and the decode share of extract's CPU time", sys.argv[1:], extra)
    if decode_module._simplejpeg() is None:  # noqa: SLF001
        raise SystemExit("--decode compares against simplejpeg: pip install 'featurebench[jpeg]'")
    same = total = 0
    for path in [*image_paths(data), *real]:
        blob = path.read_bytes()
        if path.suffix.lower() != ".jpg":
            continue
        array = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        turbo = _decode_jpeg_simplejpeg(blob, True)
        total += 1
        same += turbo is not None and np.array_equal(turbo, cv2.cvtColor(array, cv2.COLOR_BGR2RGB))
    lines += [f"simplejpeg vs OpenCV, full-size RGB decode: **{same} of {total}** JPEGs bit-identical.", "",
              "## Read + decode + resize to 224x224, one thread (CPU ms per image)", "",
              "| decode path | generated 300-1200 px | real photos (../shared) |", "|---|---|---|"]
    generated, photos = decode_cost_rows(image_paths(data)), dict(decode_cost_rows(real[::4]))
    lines += [f"| {name} | {ms:.2f} | {photos.get(name, float('nan')):.2f} |" for name, ms in generated]
    costs = dict(generated)
    lines += ["", "## Decode share of `extract`'s CPU time (generated images; random-init weights)", "",
              "Share = the one-thread read + decode + resize cost above / `extract`'s CPU ms per image "
              "(all threads), each variant in its own process.", "",
              "| model | precision | decoder | extract img/s | extract CPU ms/img | decode + resize CPU ms/img | decode share |",
              "|---|---|---|---|---|---|---|"]
    opencv_name, turbo_name = "OpenCV for JPEGs (same pixels)", next(n for n in costs if n.startswith("simplejpeg"))
    for model in args.models:
        for precision in ("fp32", "int8"):
            for decoder, name in (("OpenCV", opencv_name), ("simplejpeg", turbo_name)):
                spec = {"model": model, "data": str(data), "kind": "extract", "out": str(work / "decode.h5"),
                        "opts": {"precision": precision}, "no_simplejpeg": decoder == "OpenCV"}
                r = best_of([spawn(spec) for _ in range(args.repeat)])
                print(f"  {model} {precision} {decoder}: {r['img_s']:.1f} img/s", flush=True)
                lines.append(f"| {model} | {r['ran']} | {decoder} | {r['img_s']:.1f} | {r['cpu_ms']:.1f} | "
                             f"{costs[name]:.2f} | {costs[name] / r['cpu_ms']:.0%} |")
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


if __name__ == "__main__":
    run_script(__doc__, report, STEM)
