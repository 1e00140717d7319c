#!/usr/bin/env bash
# The checks that need a GPU, in one go (under 8 minutes on one recent GPU):
#   1. the CUDA tests (tests/test_devices.py: same integers on CUDA as on CPU, kernels, a run),
#   2. the train-step benchmarks on cuda (imsnn vs its baseline, and vs snnTorch),
#   3. one epoch of the dense IMSNN on MNIST on cuda, with its metrics.
# Writes JSON under OUT_DIR. Without a CUDA device it fails at once with one line.
#
#   bash bench/gpu_check.sh OUT_DIR
set -euo pipefail
OUT=${1:?usage: bench/gpu_check.sh OUT_DIR}
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null
then
    echo "gpu_check: no CUDA device available to torch on this machine; nothing run" >&2
    exit 1
fi
mkdir -p "$OUT"
"$PY" -c 'import json, torch; print(json.dumps({"device": torch.cuda.get_device_name(0),
  "torch": torch.__version__, "cuda": torch.version.cuda}))' > "$OUT/gpu.json"
echo "== CUDA tests"
timeout 180 "$PY" -m pytest -q -rs tests/test_devices.py --junitxml="$OUT/cuda_tests.xml"
echo "== train step, cuda"
timeout 120 "$PY" bench/train_step_time.py --device cuda --repeats 10 --processes 1 \
    --out "$OUT/train_step_time_cuda.json"
if "$PY" -c 'import snntorch' 2>/dev/null; then
    timeout 120 "$PY" bench/train_step_peers.py --device cuda --repeats 10 --processes 1 \
        --out "$OUT/train_step_peers_cuda.json"
fi
echo "== 1 epoch dense IMSNN on MNIST, cuda"
timeout 240 "$PY" -m imsnn_train.cli train --config deploy/configs/mnist_dense_imsnn.toml \
    --out "$OUT/mnist_dense_imsnn_1_epoch" --no-progress train.epochs=1 train.device=cuda
cp "$OUT/mnist_dense_imsnn_1_epoch/metrics.json" "$OUT/mnist_dense_imsnn_1_epoch.json"
echo "gpu_check: done, results in $OUT"
