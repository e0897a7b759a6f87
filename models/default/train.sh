#!/usr/bin/env bash
# Reproduces models/default: runs the lab generator for the benign seeds below
# (as root: each run builds its own network namespaces, with no route out),
# then trains on their captures. Runs already present are reused.
#
#   sudo bash models/default/train.sh [RUNS_DIR]
#
# Ten runs of 600 s, two at a time: about 55 minutes. The lab runs real
# daemons in real time, so a new run's capture differs from the one the
# shipped model was trained on in its timing: the model retrained is alike,
# not byte for byte the same (train itself is deterministic: the same
# captures and seed give the same model).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${1:-/var/tmp/spanwatch-default-model}"
seeds=(101 102 103 104 105 106 111 112 113 114)
mkdir -p "$runs"

run_lab() {
    local seed=$1 out="$runs/benign-s$1"
    if [[ -f "$out/capture.pcap" ]]; then
        return 0
    fi
    python3 "$repo/datasets/lab/iotlab.py" --seed "$seed" --duration 600 \
        --phases none --out "$out" >"$runs/benign-s$seed.log" 2>&1
}

for ((i = 0; i < ${#seeds[@]}; i += 2)); do
    pids=()
    for seed in "${seeds[@]:i:2}"; do
        run_lab "$seed" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid"
    done
done

cargo build --release --manifest-path "$repo/Cargo.toml"
cd "$runs"
inputs=()
for seed in "${seeds[@]}"; do
    inputs+=("benign-s$seed/capture.pcap")
done
"$repo/target/release/spanwatch" train "${inputs[@]}" --out "$repo/models/default"
