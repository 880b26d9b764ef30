#!/usr/bin/env bash
# The one GPU check of issue 32 (device support): run once, from the repository root, on a machine with an NVIDIA
# GPU and a CUDA build of torch (`pip install torch==<the pinned version> --index-url .../whl/cu12x`, then
# `pip install -e ".[test]"`). It writes everything under bench/results/gpu_check_<UTC time>/ and never stops at a
# failure, so that one run reports every part:
#
#   1. the machine: nvidia-smi, torch, CUDA, the GPU's name;
#   2. tests/test_gpu_parity.py (CPU/GPU parity: observables, surrogate, score and guidance to 1e-5; the same seed
#      gives the same structures on the GPU; GPU sampling has the CPU's statistics; inversion, training, site
#      generation and analyze's g(r) and Delta_ED on the GPU; DDP over two GPUs where there are two) and tests/test_devices.py (--device on every
#      command; `auto` resolves to the GPU here);
#   3. end-to-end `specguide generate` of 1000 atoms on the CPU and on the GPU (wall seconds of each), and
#      bench/precision.py --device cuda: how much float32 changes each spectrum and the guidance pull on the GPU,
#      beside the replica-to-replica noise (the measurement behind any float32 default on GPUs);
#   4. the scale benchmark at 1k/5k/20k/100k atoms on --device cuda. DEPENDS ON bench/scale.py, written on the
#      `scale` branch (observables chunking): merge that branch first; without it this step is reported as missing.
#
# Usage: bash bench/gpu_check.sh [tests|generate|scale|all] [minutes for the scale benchmark, default 8]
# Each part alone fits in a 10-minute job (the tests take the longest); `all` runs the three in turn.
set -uo pipefail

cd "$(dirname "$0")/.."
stamp=$(date -u +%Y%m%dT%H%M%SZ)
part="${1:-all}"
scale_minutes="${2:-8}"
out="bench/results/gpu_check_${stamp}_${part}"
mkdir -p "$out"
export CUBLAS_WORKSPACE_CONFIG=":4096:8"  # cuBLAS's deterministic mode, read when CUDA starts (devices.reproducible)
summary="$out/summary.txt"
note() { echo "$*" | tee -a "$summary"; }

note "gpu_check $stamp, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{ nvidia-smi || true; } > "$out/machine.txt" 2>&1
python - >> "$out/machine.txt" 2>&1 <<'EOF'
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
for k in range(torch.cuda.device_count()):
    print(f"cuda:{k}", torch.cuda.get_device_name(k))
print("cpu cores", os.cpu_count())
EOF
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    note "torch sees no GPU here (see $out/machine.txt): nothing to check"
    exit 1
fi
note "machine: $(tail -n +1 "$out/machine.txt" | grep -m1 '^cuda:0' || echo '?')"

# 2. parity and device tests (the CPU tests run too: on a GPU machine `auto` is the GPU)
if [ "$part" = tests ] || [ "$part" = all ]; then
    timeout 540 python -m pytest -q -p no:cacheprovider -rs tests/test_gpu_parity.py tests/test_devices.py \
        --durations=10 --junitxml="$out/tests.xml" > "$out/tests.txt" 2>&1
    note "tests (exit $?; 124: stopped after 9 min): $(tail -n 1 "$out/tests.txt")"
fi

# 3. end to end: the same generation on the CPU and on the GPU
if [ "$part" = generate ] || [ "$part" = all ]; then
    for device in cpu cuda; do
        start=$(date +%s%N)
        timeout 270 specguide generate --prior a-Si --density 2.33 --atoms 1000 --replicas 1 --steps 256 --seed 0 \
            --device "$device" --out "$out/generate_$device" --force > "$out/generate_$device.txt" 2>&1
        code=$?
        milliseconds=$(( ($(date +%s%N) - start) / 1000000 ))
        note "generate 1000 atoms, 256 steps, quality preset, --device $device: exit $code, ${milliseconds} ms" \
             "(wall, with start-up)"
    done
    timeout 240 python bench/precision.py --device cuda --out "$out/precision_cuda.json" > "$out/precision.txt" 2>&1
    note "bench/precision.py --device cuda (exit $?): $out/precision.txt"
fi

# 4. the scale benchmark (bench/scale.py from the `scale` branch)
if [ "$part" != scale ] && [ "$part" != all ]; then
    note "results: $out"
    exit 0
fi
if [ -f bench/scale.py ]; then
    timeout "$((scale_minutes * 60))" python bench/scale.py --device cuda --atoms 1000 5000 20000 100000 \
        > "$out/scale.txt" 2>&1
    note "bench/scale.py --device cuda --atoms 1000 5000 20000 100000 (exit $?; 124: stopped after" \
         "$scale_minutes min): $out/scale.txt"
else
    note "bench/scale.py is missing: merge the scale branch and run step 4 again"
fi
note "results: $out"
