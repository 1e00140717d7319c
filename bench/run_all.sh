#!/usr/bin/env bash
# All benchmarks; each writes JSON into bench/results/. Long (tens of minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
imsnn data fetch mnist
python bench/train_step_time.py
python bench/lava_throughput.py
python bench/fuzz.py --cases 5000
