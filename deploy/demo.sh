#!/usr/bin/env bash
# The main job end to end on real MNIST: fetch -> train a baseline and an IMSNN -> export in
# Loihi fixed point -> verify and simulate in Lava -> compare (table + HTML report).
# Run through `make demo` (which sets up .venv first). Outputs go to runs/demo/.
set -euo pipefail
OUT=${IMSNN_DEMO_DIR:-runs/demo}
N=${IMSNN_DEMO_SAMPLES:-500}
mkdir -p "$OUT"
step() { printf '\n=== %s\n' "$*"; }

step "1/5 data: MNIST (verified by sha256)"
imsnn data fetch mnist

for model in baseline imsnn; do
    step "2/5 train demo_${model} (784-200-10, 1 epoch on 20000 images)"
    imsnn train --config "deploy/configs/demo_${model}.toml" -o "$OUT/$model" --resume
    step "3/5 export demo_${model} to Loihi fixed point"
    imsnn export "$OUT/$model/checkpoint.pt" -o "$OUT/$model.h5" --fixed-point
    imsnn verify "$OUT/$model.h5"
    step "4/5 quantized PyTorch evaluation and Lava simulation of demo_${model} ($N test images)"
    imsnn evaluate "$OUT/$model/checkpoint.pt" --fixed-point -n "$N" \
        -o "$OUT/$model-torch-fixed.json"
    imsnn simulate "$OUT/$model.h5" --fixed-point -n "$N" --replicas 10 --lowered-counts \
        -o "$OUT/$model-lava.json"
done

step "5/5 compare"
if imsnn report --help >/dev/null 2>&1; then
    imsnn report "$OUT/baseline-lava.json" "$OUT/imsnn-lava.json" -o "$OUT/report"
    echo "report: $OUT/report/index.html"
fi
