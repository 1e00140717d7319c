#!/usr/bin/env bash
# The cost levers the stock lowering makes worth having: which layers carry ISI modulation,
# and how many ISI bins (phi_max). MNIST 784-500-10 at a short budget (1 epoch on
# TRAIN_SUBSET images), each variant trained, exported in fixed point, simulated in Lava on the
# first N test images with the stock-lowered network's events counted (--lowered-counts), and
# sized on Loihi 2 (imsnn resources --backend stock). Resumable: a finished step is skipped.
#
#   deploy/ablation_isi_layers.sh [-o OUT] [-n N]
set -euo pipefail
OUT=runs/ablation_isi_layers
N=2000
TRAIN_SUBSET=20000
while getopts "o:n:" opt; do
    case $opt in
        o) OUT=$OPTARG ;;
        n) N=$OPTARG ;;
        *) echo "usage: $0 [-o OUT] [-n N]" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
declare -A VARIANTS=(
    [all_isi_k16]='model.synapse="isi" model.isi.phi_max=16'
    [hidden_isi_k16]='model.synapse="isi" model.isi.phi_max=16 model.layers=[{"kind":"dense","out":500,"synapse":"plain"},{"kind":"dense","out":10}]'
    [all_isi_k4]='model.synapse="isi" model.isi.phi_max=4'
    [hidden_isi_k4]='model.synapse="isi" model.isi.phi_max=4 model.layers=[{"kind":"dense","out":500,"synapse":"plain"},{"kind":"dense","out":10}]'
    [baseline]='model.synapse="plain"'
)
for name in baseline all_isi_k16 hidden_isi_k16 all_isi_k4 hidden_isi_k4; do
    run="$OUT/$name"
    echo "=== $name"
    # shellcheck disable=SC2086 # the overrides are separate words
    [ -f "$run/metrics.json" ] || imsnn train --config deploy/configs/mnist_dense_imsnn.toml \
        --out "$run" --resume --no-progress train.threads=1 train.epochs=1 \
        train.train_subset=$TRAIN_SUBSET ${VARIANTS[$name]}
    [ -f "$run.h5" ] || imsnn export "$run/checkpoint.pt" -o "$run.h5" --fixed-point
    [ -f "$run-lava.json" ] || imsnn simulate "$run.h5" --fixed-point -n "$N" --lowered-counts \
        --no-progress --json "$run-lava.json"
    [ -f "$run-resources.json" ] || imsnn resources "$run.h5" --backend stock \
        -o "$run-resources.json" > /dev/null
done
python deploy/ablation_table.py "$OUT" baseline all_isi_k16 hidden_isi_k16 all_isi_k4 hidden_isi_k4
