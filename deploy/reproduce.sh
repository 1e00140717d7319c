#!/usr/bin/env bash
# Reproduce the IMSNN comparison: for each config, train (resumable) -> export in Loihi fixed
# point -> quantized PyTorch evaluation and Lava simulation of the full test set (counts,
# energy) -> one results table (Markdown + JSON) and one HTML report.
#
#   deploy/reproduce.sh [-e EPOCHS] [-o OUT] [CONFIG ...]
#
# CONFIG names are files in deploy/configs without .toml (default: the 8 main configurations
# and the MNIST dense ablations). Every step is skipped when its output exists, so a killed run
# continues where it stopped. Training uses one torch thread (deterministic, and fastest on a
# shared machine). Expect hours on 2 CPU cores; see README for measured times.
set -euo pipefail
EPOCHS=""
OUT=runs/reproduce
while getopts "e:o:" opt; do
    case $opt in
        e) EPOCHS=$OPTARG ;;
        o) OUT=$OPTARG ;;
        *) echo "usage: $0 [-e EPOCHS] [-o OUT] [CONFIG ...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
CONFIGS=("$@")
if [ ${#CONFIGS[@]} -eq 0 ]; then
    CONFIGS=(mnist_dense_baseline mnist_dense_imsnn fmnist_dense_baseline fmnist_dense_imsnn
             mnist_conv_baseline mnist_conv_imsnn fmnist_conv_baseline fmnist_conv_imsnn
             mnist_dense_imsnn_full mnist_dense_imsnn_none mnist_dense_baseline_l1
             mnist_dense_baseline_l1_1e-3 mnist_dense_baseline_l1_3e-4
             mnist_conv_baseline_l1_3e-5 mnist_conv_baseline_l1_1e-4)
fi
mkdir -p "$OUT"
overrides=(train.threads=1)
[ -n "$EPOCHS" ] && overrides+=("train.epochs=$EPOCHS")
for c in "${CONFIGS[@]}"; do
    run="$OUT/$c"
    echo "=== $c"
    if [ ! -f "$run/metrics.json" ]; then
        start=$SECONDS
        imsnn train --config "deploy/configs/$c.toml" -o "$run" --resume --no-progress \
            "${overrides[@]}"
        echo $((SECONDS - start)) > "$run.train_seconds"
    fi
    [ -f "$run.h5" ] || imsnn export "$run/checkpoint.pt" -o "$run.h5" --fixed-point
    [ -f "$run-torch-fixed.json" ] || imsnn evaluate "$run/checkpoint.pt" --fixed-point \
        --no-progress -o "$run-torch-fixed.json"
    [ -f "$run-lava.json" ] || imsnn simulate "$run.h5" --fixed-point -n 0 --no-progress \
        -o "$run-lava.json"
done
lava=()
for c in "${CONFIGS[@]}"; do lava+=("$OUT/$c-lava.json"); done
imsnn report "${lava[@]}" -o "$OUT/report"
python deploy/results_table.py "$OUT" "${CONFIGS[@]}"
