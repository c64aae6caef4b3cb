#!/usr/bin/env bash
# Train the open-domain model from a corpus pack and export the bundle, in one command, on a
# machine that reaches no registry (the lent GPU machine): nothing is downloaded or rendered.
#
#   bash recipes/omni/gpu_train.sh PACK OUT_DIR [--minutes 8] [--conf recipes/omni/conf/train.yaml]
#                                  [--init omni|MODEL.pth] [--mix-in NAME=WEIGHT ...]
#                                  [--decay-at MINUTES|none]
#
# PACK is written by `bash recipes/omni/run.sh --stage 8 --stop-stage 8` (data/omni/pack.tar).
# Wheels of the packages the machine lacks (recipes/utils/gpu_wheels.sh writes them into
# .whl/) are installed into /tmp/site first when Lhotse or Asteroid cannot be imported
# (recipes/utils/gpu_env.sh). OUT_DIR receives bundle/ (the fp16 package bundle as stage 7
# exports it, less the optional text_queries.pt; audio_prototypes.pt when the pack holds the
# audio query bank), omnisep.pth, conf.yaml, metrics.csv,
# loss.png and train.log. Any further `--set SECTION.KEY=VALUE` is passed to `omnisep train`.
# --init starts from a trained model (the shipped `omni`: its CPU-trained small U-Net) widened
# to the configuration's widths by `omnisep widen` (the same function at step 0) instead of
# from scratch: minutes of GPU time then add to what the CPU learnt.
# --mix-in NAME=WEIGHT draws that share of the batches from the pack's split NAME (`data.mix_in`),
# without augmentation and among its own classes: e.g. `--mix-in synth_music=0.4`, 24 clips per
# instrument of the instrument default's training corpus, which stage 8 packs with
# `--pack-synth-music true` (after recipes/omni/local/synth_music_mix_in.sh has embedded it).
# --decay-at: the learning rate is x optim.decay_factor once after this many minutes of training
# (training.decay_at_minutes; default 3/4 of --minutes, since the steps a lease allows are not
# known beforehand; none: only the configuration's step schedule).
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,25p "$0" >&2; exit 2; }
pack=$1; out=$2; shift 2

minutes=8
conf=$(dirname "$0")/conf/train.yaml
work=${TMPDIR:-/tmp}/omni_gpu_train
audio_encoder=$(dirname "$0")/state/audio_encoder.pth
example_labels="dog barking,woman speaking"
val_every=500
init=""
decay_at=""
mix_in=()
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --conf) conf=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --audio-encoder) audio_encoder=$2; shift 2 ;;
    --example-labels) example_labels=$2; shift 2 ;;
    --val-every) val_every=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --decay-at) decay_at=$2; shift 2 ;;
    --mix-in) [[ $2 =~ ^[A-Za-z0-9_]+=(0?\.[0-9]+)$ ]] || {
                echo "gpu_train.sh: --mix-in takes NAME=WEIGHT with a weight in (0, 1), e.g. synth_music=0.4; got '$2'" >&2; exit 2; }
              mix_in+=("$2"); shift 2 ;;
    --set) extra+=(--set "$2"); shift 2 ;;
    *) echo "gpu_train.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

log() { echo -e "$(date '+%F %T') (gpu_train.sh) $*" >&2; }
. "$(dirname "$0")/../utils/gpu_env.sh"
omnisep() { "$python" -m omnisep_plugin.bin.cli "$@"; }
mkdir -p "$out"
start=$(date +%s)

log "unpacking $pack into $work"
rm -rf "$work"
omnisep unpack-corpus "$pack" "$work" -j "$(nproc)"
bg=""; [ -f "$work/backgrounds.json" ] && bg=", backgrounds: $work/backgrounds.json"

mix_args=()
if [ ${#mix_in[@]} -gt 0 ]; then
  entries=""
  for spec in "${mix_in[@]}"; do
    name=${spec%%=*}; weight=${spec#*=}
    if [ ! -f "$work/cuts_${name}_embedded.jsonl.gz" ]; then
      log "--mix-in $spec: the pack has no split $name (it has: $(cd "$work" && ls cuts_*_embedded.jsonl.gz | sed 's/^cuts_//; s/_embedded.jsonl.gz$//' | xargs))"
      exit 2
    fi
    entries="$entries${entries:+, }{cuts: $work/cuts_${name}_embedded.jsonl.gz, weight: $weight, augment: null}"
  done
  mix_args=(--set "data.mix_in=[$entries]")
fi

init_args=()
if [ -n "$init" ]; then
  log "starting from $init, widened to $conf's U-Net"
  omnisep widen "$init" "$work/init.pth" --conf "$conf"
  init_args=(--init "$work/init.pth")
fi

[ -n "$decay_at" ] || decay_at=$(awk -v m="$minutes" 'BEGIN { print 0.75 * m }')
decay_args=()
[ "$decay_at" = none ] || decay_args=(--set training.decay_at_minutes="$decay_at")
log "training $conf for $minutes minutes${decay_args:+ (rate decayed after $decay_at)}"
omnisep train --conf "$conf" --exp-dir "$work/exp" \
  --set "data.augment={level_db: [-5.0, 5.0]$bg}" --set "data.num_workers=$(( $(nproc) - 2 ))" \
  --set training.max_minutes="$minutes" --set training.val_every="$val_every" \
  --set training.ckpt_every="$val_every" "${init_args[@]}" "${mix_args[@]}" "${decay_args[@]}" "${extra[@]}" \
  --train-cuts "$work/cuts_train_embedded.jsonl.gz" --valid-cuts "$work/cuts_valid_embedded.jsonl.gz" \
  --valid-mixtures "$work/valid_mixtures.json" 2>&1 | tee "$out/train.log"

log "exporting the bundle into $out/bundle"
protos=(); bank=$work/omni_cuts_train_audio_bank.pt   # the labels' audio prototypes, when packed
[ -f "$bank" ] && protos=(--audio-prototypes "$bank")
omnisep export-bundle "$out/bundle" --model "$work/exp/omnisep.pth" --audio-encoder "$audio_encoder" \
  --query-set "$work/omni_cuts_train_query_set.pt" --example-cuts "$work/cuts_valid_embedded.jsonl.gz" \
  --example-labels "$example_labels" --no-text-seeds "${protos[@]}"   # MiniLM is not on the GPU machine
cp "$work/exp/omnisep.pth" "$work/exp/conf.yaml" "$work/exp/logs/metrics.csv" "$out/"
[ -f "$work/exp/loss.png" ] && cp "$work/exp/loss.png" "$out/"
log "done in $(( $(date +%s) - start )) s: $out"
