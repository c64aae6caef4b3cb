#!/usr/bin/env bash
# Everything one GPU lease runs, as one command on the device machine (which reaches no
# registry): the open-domain model's training from the pack, then the prepared benchmarks with
# the seconds that are left. Carry data/omni/pack.tar and .whl (recipes/utils/gpu_wheels.sh).
#
#   bash recipes/omni/gpu_lease.sh OUT_DIR [--budget 570] [--minutes 5.5] [gpu_train.sh options]
#
# OUT_DIR receives omni_gpu.tar (gpu_train.sh's outputs: bundle/, conf.yaml, metrics.csv,
# loss.png, train.log; split into omni_gpu.tar.part-aa, -ab, ... of 15 MiB when larger, since
# the device tool returns files of at most 16 MiB: `cat omni_gpu.tar.part-* | tar -x`) and
# gpu_check.tar (benchmarks/gpu_check.sh), each written as soon as its step ends. --budget: the
# seconds the whole command may take; the benchmarks get what the training leaves, and are
# skipped under 40 s.
set -uo pipefail
[ $# -ge 1 ] || { sed -n 2,13p "$0" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "cannot create $1" >&2; exit 2; }
shift
budget=570
minutes=5.5
train_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --budget) budget=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    *) train_args+=("$1"); shift ;;
  esac
done
root=$(cd "$(dirname "$0")/../.." && pwd)
start=$(date +%s)
log() { echo -e "$(date '+%F %T') (gpu_lease.sh, $(( $(date +%s) - start )) s) $*" >&2; }
work=${TMPDIR:-/tmp}/omni_gpu_lease
rm -rf "$work"; mkdir -p "$work"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2> /dev/null | sed 's/^/GPU: /' >&2

log "training for $minutes minutes"
bash "$root/recipes/omni/gpu_train.sh" "$root/data/omni/pack.tar" "$work/omni_gpu" \
  --minutes "$minutes" "${train_args[@]}"
status=$?
log "gpu_train.sh exited with $status"
rm -f "$work/omni_gpu/omnisep.pth"   # the fp32 copy: bundle/omnisep.pth holds the same model
tar -C "$work" -cf "$work/omni_gpu.tar" omni_gpu
if [ "$(stat -c %s "$work/omni_gpu.tar")" -gt $(( 15 * 1024 * 1024 )) ]; then
  split -b 15M "$work/omni_gpu.tar" "$out/omni_gpu.tar.part-"
else
  cp "$work/omni_gpu.tar" "$out/"
fi

left=$(( budget - ($(date +%s) - start) - 15 ))
limit=$(( left * 4 / 7 ))   # training stage + half + a quarter
if [ $limit -ge 40 ]; then
  [ $limit -gt 240 ] && limit=240
  log "benchmarks/gpu_check.sh with $left s left (stage limit $limit s)"
  GPU_CHECK_LIMIT=$limit bash "$root/benchmarks/gpu_check.sh" "$work/gpu_check"
  tar -C "$work" -cf "$out/gpu_check.tar" gpu_check
else
  log "no time left for benchmarks/gpu_check.sh ($left s)"
fi
log "done"
exit $status
