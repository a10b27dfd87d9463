#!/usr/bin/env bash
# The GPU path, for real: on a machine with an NVIDIA GPU, install the GPU extra, extract
# ResNet50 features (random weights: no download needed) from a few thousand generated images
# with --engine auto (fp32, then --precision fp16), fine-tune 2 epochs, and write results/gpu.md
# (GPU name, versions, img/s). Run from the repository root, in the venv featurebench is
# installed in (editable or not); needs PyPI for the install step (SKIP_INSTALL=1 skips it).
#
#   bash scripts/gpu_check.sh            # N=3000 images by default; N=500 bash ... for a quick one
#   DRY_RUN=1 N=40 bash scripts/gpu_check.sh   # no GPU: checks the plumbing on the CPU (fp32 only),
#                                              # writes /tmp/gpu-dry-run.md, never results/gpu.md
set -euo pipefail
N="${N:-3000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ "${DRY_RUN:-0}" = 1 ]; then
    OUT="/tmp/gpu-dry-run.md"; HALF=fp32; echo "dry run (CPU, no install)" > "$work/gpu.txt"
else
    OUT="${OUT_MD:-results/gpu.md}"; HALF=fp16
    [ "${SKIP_INSTALL:-0}" = 1 ] || bash scripts/install_gpu.sh .
    python -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else
        'TensorFlow sees no GPU: nothing measured, results/gpu.md left as it is')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$work/gpu.txt"
fi

python - "$work/images" "$N" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
root, n = Path(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
for i in range(n):  # two classes that differ in colour, 256x256 JPEGs
    k = i % 2
    img = rng.integers(0, 90, (256, 256, 3), dtype=np.uint8)
    img[..., k] += 140
    (root / f"c{k}").mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(root / f"c{k}" / f"{i:05d}.jpg", quality=90)
PY

run() {  # run NAME CMD...: stderr to NAME.log (shown on failure), wall seconds to NAME.time
    local name="$1" start; shift; start=$(date +%s.%N)
    "$@" 2> "$work/$name.log" || { cat "$work/$name.log"; exit 1; }
    python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)" \
        > "$work/$name.time"
}
run extract_fp32 featurebench extract "$work/images" -o "$work/fp32.h5" --model resnet50 --weights none --force
run extract_half featurebench extract "$work/images" -o "$work/half.h5" --model resnet50 --weights none \
    --precision "$HALF" --force
run finetune featurebench finetune "$work/images" --model resnet50 --weights none --warmup-epochs 1 --epochs 1 \
    --unfreeze-from 150 --precision "$HALF" --out "$work/runs" --run-name gpu-check --force

python - "$work" "$OUT" "$N" <<'PY'
import json, platform, sys, time
from pathlib import Path
import h5py
work, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
import importlib.metadata as md
def v(p):
    try:
        return md.version(p)
    except md.PackageNotFoundError:
        return "not installed"
rows = []
for name in ("fp32", "half"):
    with h5py.File(work / f"{name}.h5") as h5:
        a = dict(h5.attrs)
    rows.append(f"| extract resnet50 | {a.get('engine')} | {a.get('device')} | {a.get('precision')} "
                f"| {float(a['images_per_second']):.1f} | {(work / f'extract_{name}.time').read_text().strip()} |")
m = json.loads((work / "runs" / "gpu-check" / "metrics.json").read_text())
prov = m.get("provenance") or {}
lines = [
    "# GPU check", "",
    f"Command: `bash scripts/gpu_check.sh` (N={n} generated 256x256 JPEGs, 2 classes), {time.strftime('%Y-%m-%d')}  ",
    f"GPU: {(work / 'gpu.txt').read_text().strip()} (name, memory, driver)  ",
    f"Host: {platform.processor() or platform.machine()}; Python {platform.python_version()}; "
    f"tensorflow {v('tensorflow')}, tensorflow-cpu {v('tensorflow-cpu')}, keras {v('keras')}, "
    f"xgboost {v('xgboost')}, featurebench {v('featurebench')}", "",
    "| step | engine | device | precision | img/s (file) | wall s |", "|---|---|---|---|---|---|", *rows, "",
    f"Fine-tune (resnet50 random init, 1 warm-up + 1 epoch, precision {m.get('precision', prov.get('precision'))}): "
    f"{m['fit_seconds']:.1f} s training, accuracy {m['accuracy']:.3f} on {m['n_test']} test images, "
    f"wall {(work / 'finetune.time').read_text().strip()} s.",
    "", "Random weights and generated images: this checks that the GPU path runs and how fast, not accuracy.", ""]
out.write_text("\n".join(lines))
print("\n".join(lines))
PY
