#!/usr/bin/env bash
# Fine-tune OmniSep on your own labelled sounds: prepare -> embed -> train -> separate -> score.
#
#   bash recipes/custom/run.sh --corpus-dir my_sounds/          # my_sounds/<label>/*.wav
#   bash recipes/custom/run.sh --corpus-dir clips.csv           # header: path,label[,text]
#   bash recipes/custom/run.sh --stage 2 --stop-stage 2 --resume true   # continue training
#
# By default it fine-tunes the shipped open-domain network (--init omni; the default model
# routes between it and the instrument specialist, and a routed model is not fine-tuned as
# one) with its offline Query-Net (MiniLM text + its bound audio encoder, so queries keep the
# space the model knows); --init instruments starts from the specialist (give
# --offline instruments with it), --init PATH from another omnisep.pth, --init "" from scratch
# (then give a --conf whose model section you want). --imagebind PATH (with --offline "")
# embeds with ImageBind instead, for a model trained with it.
# Outputs: $data_dir/{manifests,embedded}, $exp_dir/{checkpoints,omnisep.pth,separated,results}.
set -euo pipefail

stage=0
stop_stage=4
corpus_dir=          # a folder with one sub-folder per label, or a path,label[,text] CSV
conf=$(dirname "$0")/conf/finetune.yaml
init=omni            # a shipped network (omni, instruments), an omnisep.pth, or "" (from scratch)
offline=omni         # bound audio encoder file, or a shipped model's name (its encoder; "": use --imagebind)
imagebind=
data_dir=data/custom
exp_dir=exp/custom/omnisep
n_test_mixtures=100
n_samples=65535
bank_size=5          # S training clips per class for the audio queries
test_split=test
eval_tag=
resume=false
device=cpu
. "$(dirname "$0")/../utils/parse_options.sh"

corpus=custom
log() { echo -e "$(date '+%F %T') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }
case "$offline" in default|omni|instruments) offline=$(python -c \
  "from omnisep_plugin.pipelines import BUNDLES; print(BUNDLES['$offline'].audio_encoder)") ;; esac

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests of $corpus_dir"
  [ -n "$corpus_dir" ] || { echo "--corpus-dir is required for stage 0" >&2; exit 2; }
  omnisep prepare custom "$corpus_dir" "$data_dir/manifests" --name $corpus
fi

. "$(dirname "$0")/../utils/stages_1_to_4.sh"
