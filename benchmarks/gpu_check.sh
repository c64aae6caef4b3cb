#!/usr/bin/env bash
# One prepared GPU check (issue 15): run it first thing on a GPU machine; it needs no network.
#
# Usage: bash benchmarks/gpu_check.sh OUT_DIR [--tiny]
#
# Writes into OUT_DIR (and prints a summary):
#   train.json     training step, paper-size model, batch 128, bf16: ours and CLIPSep's own
#                  step alternating (benchmarks/train_throughput.py), clips/s, ratio, peak GPU
#                  memory, hours for the paper's 200k x 128 schedule
#   gpu_util.csv   nvidia-smi samples (utilisation %, memory MiB) every 200 ms while training
#   separate.json  separation: real-time factor of batched 4-s windows (bf16 autocast on the
#                  GPU; benchmarks/separate_speed.py) and one 60-s file
#   score.json     scoring speed, museval vs fast_bss_eval batched on the GPU (score_speed.py)
#   gpu_check.json all of the above in one file, with each stage's exit status and seconds
# Budget: under 8 minutes on one H100 (each stage has its own timeout: GPU_CHECK_LIMIT seconds,
# default 240, for training, half of it for separation, a quarter for scoring). --tiny runs the
# same stages at a toy size on the CPU in about a minute (the test of this script).
set -uo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,17p' "$0"; exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "cannot create $1" >&2; exit 2; }
TINY=${2:-}
cd "$(dirname "$0")/.."
. recipes/utils/gpu_env.sh   # PYTHONPATH, and the carried wheels (.whl/) where packages are missing
PY=$python
if [ "$TINY" = "--tiny" ]; then
    WIDTHS=8,16,32,64,64
    TRAIN=(--batch-size 2 --n-samples 16383 --steps 1 --rounds 1 --warmup 1)
    SEPARATE=(--batch 2 --lengths 60)
    SCORE=(--pairs 4)
    LIMIT=240
elif [ -n "$TINY" ]; then
    echo "unknown option $TINY (only --tiny)" >&2; exit 2
else
    WIDTHS=64,128,256,512,512,512,512
    TRAIN=(--batch-size 128 --steps 10 --rounds 3 --warmup 3 --precision bf16)
    SEPARATE=(--batch 64 --lengths 60)
    SCORE=(--pairs 200)
    LIMIT=${GPU_CHECK_LIMIT:-240}
fi
declare -A STATUS SECONDS_TAKEN

stage() {  # stage NAME TIMEOUT CMD...: run one stage, keep its log, exit status and seconds
    local name=$1 limit=$2 start
    shift 2
    start=$(date +%s)
    echo "== $name: $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    STATUS[$name]=${PIPESTATUS[0]}
    SECONDS_TAKEN[$name]=$(($(date +%s) - start))
}

SMI_PID=
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.csv"
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
        -lms 200 > "$OUT/gpu_util.csv" &
    SMI_PID=$!
fi
stage train "$LIMIT" "$PY" benchmarks/train_throughput.py --widths "$WIDTHS" "${TRAIN[@]}" \
    --out "$OUT/train.json"
[ -n "$SMI_PID" ] && kill "$SMI_PID" 2>/dev/null
stage separate "$((LIMIT / 2))" "$PY" benchmarks/separate_speed.py --model "$WIDTHS" \
    "${SEPARATE[@]}" --out "$OUT/separate.json"
stage score "$((LIMIT / 4))" "$PY" benchmarks/score_speed.py "${SCORE[@]}" --out "$OUT/score.json"

STAGES=""
for name in train separate score; do
    STAGES="$STAGES$name=${STATUS[$name]}:${SECONDS_TAKEN[$name]} "
done
"$PY" - "$OUT" "$STAGES" <<'EOF'
"""Merge the stages' JSON files and the utilisation samples into gpu_check.json."""
import json
import sys
from pathlib import Path

out, stages = Path(sys.argv[1]), sys.argv[2].split()
summary = {"stages": {}}
for item in stages:
    name, _, rest = item.partition("=")
    status, _, seconds = rest.partition(":")
    path = out / f"{name}.json"
    summary["stages"][name] = {"exit_status": int(status), "seconds": float(seconds or 0)}
    summary[name] = json.loads(path.read_text()) if path.is_file() else None
util = []
if (out / "gpu_util.csv").is_file():
    for line in (out / "gpu_util.csv").read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit():
            util.append((int(parts[1]), float(parts[2])))
summary["gpu_util_percent_mean"] = sum(u for u, _ in util) / len(util) if util else None
summary["gpu_util_percent_max"] = max(u for u, _ in util) if util else None
summary["gpu_memory_used_mib_max"] = max(m for _, m in util) if util else None
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
train = summary["train"] or {}
print(f"gpu_check: stages {summary['stages']}; training ours {train.get('ours_clips_per_s')} "
      f"clips/s, ratio {train.get('ratio')}, {train.get('hours_for_200k_steps_x128')} h for "
      f"200k x 128; GPU utilisation mean {summary['gpu_util_percent_mean']} %")
sys.exit(1 if any(s["exit_status"] for s in summary["stages"].values()) else 0)
EOF
