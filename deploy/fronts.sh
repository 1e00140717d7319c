#!/usr/bin/env bash
# Accuracy-spikes-energy fronts of IMSNN settings against L1-regularised baselines, one setup
# at a time, with `imsnn sweep` (resumable: run it again to continue a stopped sweep).
#
#   deploy/fronts.sh [-j JOBS] [-e EPOCHS] [-o OUT] SETUP
#
# SETUP: mnist_dense | fmnist_dense | mnist_conv | fmnist_conv. Every point of a setup has the
# same budget (EPOCHS, default 2 for dense, 1 for conv, cosine schedule over them) and is
# simulated in Lava fixed point on the whole test set with the stock-lowered network's counts.
# Results: OUT/SETUP/results.md, results.json, report/ (default OUT: runs/fronts).
set -euo pipefail
JOBS=1
EPOCHS=""
OUT=runs/fronts
while getopts "j:e:o:" opt; do
    case $opt in
        j) JOBS=$OPTARG ;;
        e) EPOCHS=$OPTARG ;;
        o) OUT=$OPTARG ;;
        *) echo "usage: $0 [-j JOBS] [-e EPOCHS] [-o OUT] SETUP" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
SETUP=${1:?usage: $0 [-j JOBS] [-e EPOCHS] [-o OUT] SETUP}
case $SETUP in
    mnist_dense|fmnist_dense)
        : "${EPOCHS:=2}"; L1="0,1e-4,3e-4,1e-3,3e-3"; IMSNN_L1="1e-4"; STRENGTHS="0.5,1"
        PLAIN_IN='model.layers=[{"kind":"dense","out":500,"synapse":"plain"},{"kind":"dense","out":10}]'
        ;;
    mnist_conv|fmnist_conv)
        : "${EPOCHS:=1}"; L1="0,1e-5,3e-5,1e-4,3e-4"; IMSNN_L1=""; STRENGTHS="0.1,0.3,1"
        PLAIN_IN='model.layers=[{"kind":"conv","out":16,"kernel":5,"stride":2,"padding":0,"synapse":"plain"},{"kind":"conv","out":32,"kernel":3,"stride":2,"padding":0},{"kind":"dense","out":10}]'
        ;;
    *) echo "$0: unknown setup '$SETUP' (mnist_dense, fmnist_dense, mnist_conv, fmnist_conv)" >&2
       exit 2 ;;
esac
dir="$OUT/$SETUP"
sweep() { imsnn sweep -o "$dir" --jobs "$JOBS" --no-progress "train.epochs=$EPOCHS" "$@"; }
# the L1 front: the baseline at five strengths (0 = the baseline the report compares with)
sweep --config "deploy/configs/${SETUP}_baseline.toml" --grid "train.activity_l1=$L1"
# IMSNN settings: the gate's strength (conv nets down to 0.1: their accuracy is the open
# question), IMSNN + L1 (dense nets), the input layer plain with ISI after it
sweep --config "deploy/configs/${SETUP}_imsnn.toml" --grid "model.isi.gate_strength=$STRENGTHS"
if [ -n "$IMSNN_L1" ]; then
    sweep --config "deploy/configs/${SETUP}_imsnn.toml" --grid "train.activity_l1=$IMSNN_L1"
fi
sweep --config "deploy/configs/${SETUP}_imsnn.toml" --grid "$PLAIN_IN"
