#!/usr/bin/env bash
# Turn a featurebench install into a GPU install (Linux x86_64, NVIDIA GPU + driver):
# TensorFlow's CUDA build with its CUDA/cuDNN wheels, and the full xgboost (CUDA), in place
# of the CPU-only wheels the default install uses there.
#
#   bash scripts/install_gpu.sh            # in the venv featurebench is installed in
#   bash scripts/install_gpu.sh path/to/featurebench   # a checkout or wheel instead of PyPI
#
# Why three steps: pip extras can add packages but not remove one. The default install pulls
# tensorflow-cpu (and xgboost-cpu) on Linux x86_64; the GPU wheels (tensorflow, xgboost) ship
# the same Python packages (tensorflow/, xgboost/), so both end up installed and uninstalling
# the CPU wheel afterwards deletes files the GPU wheel shares with it. Hence: add the extra,
# remove the CPU wheels, then reinstall the GPU wheels' files (same versions, no deps).
set -euo pipefail
target="${1:-featurebench}"
pip install "${target}[gpu]"
pip uninstall -y tensorflow-cpu xgboost-cpu
version() { python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
pip install --force-reinstall --no-deps "tensorflow==$(version tensorflow)" "xgboost==$(version xgboost)"
python - <<'PY'
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print(f"TensorFlow {tf.__version__} sees {len(gpus)} GPU(s): {[g.name for g in gpus]}")
if not gpus:
    raise SystemExit("TensorFlow sees no GPU: check the NVIDIA driver (nvidia-smi) and that the "
                     "nvidia-* CUDA wheels were installed by tensorflow[and-cuda].")
PY
