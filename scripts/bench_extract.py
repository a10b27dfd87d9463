"""The extraction benchmarks under one command line, the one results/ and docs/performance.md record.

Each benchmark is its own script over scripts/bench_extract_common.py; this entry point picks one by flag:

    python scripts/bench_extract.py [--repeat R]   # bench_extract_throughput.py -> results/bench_extract_<class>.md
    python scripts/bench_extract.py --levers       # bench_extract_levers.py     -> results/bench_extract_levers_<class>.md
    python scripts/bench_extract.py --fidelity     # bench_extract_fidelity.py   -> results/bench_extract_fidelity_<class>.md
    python scripts/bench_extract.py --rss-check    # bench_extract_rss.py        -> results/bench_extract_rss_<class>.md
    python scripts/bench_extract.py --decode       # bench_extract_decode.py     -> results/bench_extract_decode_<class>.md
    python scripts/bench_extract.py --int8         # bench_extract_int8.py       -> results/bench_extract_int8_<class>.md

Every option of the chosen benchmark works here too (``--skip-sizes``, ``--rss-images``, ``--skip-fidelity``,
and the shared ``--images``, ``--models``, ``--repeat``, ``--out``, ``--isa``, ``--keep``).
"""

from __future__ import annotations

import bench_extract_decode
import bench_extract_fidelity
import bench_extract_int8
import bench_extract_levers
import bench_extract_rss
import bench_extract_throughput
from bench_extract_common import add_options, make_parser, run_benchmark

#: flag (argparse dest) -> the benchmark it runs; none given: throughput.
BENCHMARKS = {
    "rss_check": (bench_extract_rss, "peak RSS at 1,000 vs 10,000 images (Coral TFLite)"),
    "levers": (bench_extract_levers, "measure the tuning levers instead"),
    "fidelity": (bench_extract_fidelity, "engines, fast decode and bf16: feature and accuracy checks"),
    "decode": (bench_extract_decode, "JPEG decoders and the decode share of CPU time"),
    "int8": (bench_extract_int8, "int8 vs fp32: speed and downstream accuracy"),
}


def main() -> None:
    parser = make_parser(bench_extract_throughput.__doc__.split("\n")[0])
    for dest, (module, help_text) in BENCHMARKS.items():
        parser.add_argument("--" + dest.replace("_", "-"), action="store_true", help=help_text)
        add_options(parser, getattr(module, "OPTIONS", {}))
    args = parser.parse_args()
    module = next((m for dest, (m, _) in BENCHMARKS.items() if getattr(args, dest)), bench_extract_throughput)
    run_benchmark(args, module.report, module.STEM)


if __name__ == "__main__":
    main()
