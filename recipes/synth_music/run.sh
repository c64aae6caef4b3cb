#!/usr/bin/env bash
# Offline benchmark and the instrument specialist (--model instruments; the default routes its
# 11 instruments to it): OmniSep on instruments rendered with
# FluidSynth from the recorded General MIDI samples of FluidR3_GM (Debian packages
# fluidsynth + fluid-soundfont-gm; this recipe installs nothing), with the offline
# Query-Net (MiniLM text + an audio encoder bound to it).
#
#   bash recipes/synth_music/run.sh                # conf/train.yaml on a GPU, conf/small.yaml on CPU
#   bash recipes/synth_music/run.sh --small true   # conf/small.yaml anywhere (< 30 min on 2 CPU cores)
#   bash recipes/synth_music/run.sh --ablations "switch text_only audio_only no_mixup"
#   bash recipes/synth_music/run.sh --ablations ""  # OmniSep only
#
# Stages: 0 render, 1 manifests, 2 bind the audio encoder, 3 embed queries + fixed
# mixtures, 4 train OmniSep and the ablations in $ablations, 5 separate the test mixtures
# with every query kind, 6 score -> $exp_root/results.md, 7 (only with --stop-stage 7)
# export the OmniSep model as the package's instrument specialist (fp16 bundle + example;
# then `bash recipes/omni/run.sh --stage 7 --stop-stage 7` rebuilds the routed default).
# The shipped specialist: --stage 4 --stop-stage 7 --conf conf/default.yaml --ablations ""
#   --exp-root exp/synth_music_default (after stages 0-3).
# The MuseScore General soundfonts are reserved for independent evaluation: never here.
set -euo pipefail
set -f   # no globbing: ablation overrides contain brackets

stage=0
stop_stage=6         # stage 7 (replace the package's instrument specialist) runs only when asked
corpus_dir=data/synth_music/corpus
data_dir=data/synth_music
exp_root=exp/synth_music
small=auto           # true: conf/small.yaml; false: conf/train.yaml; auto: small without a GPU
conf=                # an explicit training config instead (e.g. conf/default.yaml)
ablations="switch"   # any of: switch no_mixup text_only audio_only (see ablation_args below)
n_train=150          # clips per instrument and split
n_valid=10
n_test=20
seconds=6
bind_steps=600
n_test_mixtures=200
nj=2
device=auto          # cpu or cuda (auto: cuda when a GPU is visible)
bundle_dir=omnisep_plugin/pretrained/instruments   # where stage 7 writes the instrument specialist
. "$(dirname "$0")/../utils/parse_options.sh"

log() { echo -e "$(date '+%F %T') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }
gpu=$(python -c "import torch; print(int(torch.cuda.is_available()))")
[ "$device" = auto ] && device=$([ "$gpu" = 1 ] && echo cuda || echo cpu)
[ "$small" = auto ] && small=$([ "$gpu" = 1 ] && echo false || echo true)
[ -n "$conf" ] || conf=$(dirname "$0")/conf/$([ "$small" = true ] && echo small.yaml || echo train.yaml)
emb=$data_dir/embedded
experiments="omnisep $ablations"
# Each ablation is $conf with its query settings changed (paper Table 2 / CLIPSep baseline).
ablation_args() {
  case "$1" in
    omnisep) ;;
    switch) echo "--set query.mixup_mode=switch" ;;        # CLIPSep: one modality per step
    no_mixup) echo "--set query.mixup_mode=random" ;;      # one random modality per example
    text_only) echo "--set query.modalities=[text]" ;;
    audio_only) echo "--set query.modalities=[audio]" ;;
    *) echo "$0: unknown ablation $1 (switch no_mixup text_only audio_only)" >&2; exit 2 ;;
  esac
}
for name in $ablations; do ablation_args $name >/dev/null; done   # fail before any stage

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: render the corpus (FluidSynth, FluidR3_GM)"
  omnisep render synth_music "$corpus_dir" --train $n_train --valid $n_valid --test $n_test \
    --seconds $seconds -j $nj
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: manifests"
  omnisep prepare synth "$corpus_dir" "$data_dir/manifests"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: bind an audio encoder to MiniLM's text space"
  omnisep bind-audio "$data_dir/manifests/synth_music_cuts_train.jsonl.gz" \
    "$data_dir/audio_encoder.pth" --steps $bind_steps \
    --valid-cuts "$data_dir/manifests/synth_music_cuts_valid.jsonl.gz"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: query embeddings, query banks, fixed valid/test mixtures"
  for split in train valid test; do
    omnisep embed "$data_dir/manifests/synth_music_cuts_${split}.jsonl.gz" "$emb" \
      --offline "$data_dir/audio_encoder.pth" --bank-size 5 --device $device
  done
  omnisep make-mixtures "$emb/synth_music_cuts_valid_embedded.jsonl.gz" "$emb/valid_mixtures.json" -n 64
  omnisep make-mixtures "$emb/synth_music_cuts_test_embedded.jsonl.gz" "$emb/test_mixtures.json" \
    -n $n_test_mixtures
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for name in $experiments; do
    log "Stage 4: training $name ($conf $(ablation_args $name))"
    extra=()
    [ -f "$exp_root/$name/checkpoints/last.ckpt" ] && extra+=(--resume)
    [ -f "$exp_root/$name/omnisep.pth" ] && { log "$name already trained"; continue; }
    omnisep train --conf "$conf" $(ablation_args $name) --exp-dir "$exp_root/$name" "${extra[@]}" \
      --train-cuts "$emb/synth_music_cuts_train_embedded.jsonl.gz" \
      --valid-cuts "$emb/synth_music_cuts_valid_embedded.jsonl.gz" \
      --valid-mixtures "$emb/valid_mixtures.json"
  done
fi

# A model whose results are newer than its weights is not separated and scored again.
scored() { [ "$exp_root/$1/results/scores.csv" -nt "$exp_root/$1/omnisep.pth" ]; }

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for name in $experiments; do
    scored $name && { log "$name already scored"; continue; }
    log "Stage 5: separating the test mixtures with $name"
    omnisep separate-test "$exp_root/$name/omnisep.pth" "$emb/synth_music_cuts_test_embedded.jsonl.gz" \
      "$emb/test_mixtures.json" "$exp_root/$name/separated" --conf "$exp_root/$name/conf.yaml" \
      --query-set "$emb/synth_music_cuts_train_query_set.pt" \
      --audio-bank "$emb/synth_music_cuts_train_audio_bank.pt" \
      --free-text "$emb/synth_music_cuts_train_free_text.pt" --plot mix00000_0 --device $device
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: scoring"
  {
    echo "# synth_music results"
    for name in $experiments; do
      scored $name || omnisep score "$exp_root/$name/results" --references "$exp_root/$name/separated/refs" \
        --estimates "$exp_root/$name/separated/est" --mixtures "$exp_root/$name/separated/mix" -j $nj >&2
      echo; echo "## $name ($(basename "$conf") $(ablation_args $name))"; echo
      cat "$exp_root/$name/results/results.md"
    done
  } > "$exp_root/results.md"
  log "results: $exp_root/results.md"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: export the instrument specialist (--model instruments) to $bundle_dir"
  omnisep export-bundle "$bundle_dir" --model "$exp_root/omnisep/omnisep.pth" \
    --audio-encoder "$data_dir/audio_encoder.pth" \
    --query-set "$emb/synth_music_cuts_train_query_set.pt" \
    --example-cuts "$data_dir/manifests/synth_music_cuts_test.jsonl.gz" --example-labels cello,clarinet
fi
