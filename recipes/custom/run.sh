#!/usr/bin/env bash
# Fine-tune OmniSep on your own labelled sounds: prepare -> embed -> train -> separate -> score.
#
#   bash recipes/custom/run.sh --corpus-dir my_sounds/          # my_sounds/<label>/*.wav
#   bash recipes/custom/run.sh --corpus-dir clips.csv           # header: path,label[,text]
#   bash recipes/custom/run.sh --stage 2 --stop-stage 2 --resume true   # continue training
#
# By default it fine-tunes the shipped model (--init default) with its offline Query-Net
# (MiniLM text + the shipped bound audio encoder, so queries keep the space the model
# knows); --init PATH starts from another omnisep.pth, --init "" trains from scratch
# (then give a --conf whose model section you want). --imagebind PATH (with --offline "")
# embeds with ImageBind instead, for a model trained with it.
# Outputs: $data_dir/{manifests,embedded}, $exp_dir/{checkpoints,omnisep.pth,separated,results}.
set -euo pipefail

stage=0
stop_stage=4
corpus_dir=          # a folder with one sub-folder per label, or a path,label[,text] CSV
conf=$(dirname "$0")/conf/finetune.yaml
init=default         # default (shipped model), an omnisep.pth, or "" (from scratch)
offline=default      # bound audio encoder file ("default": the shipped one; "": use --imagebind)
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
[ "$offline" = default ] && offline=$(python -c \
  "from omnisep_plugin.pipelines import DEFAULT; print(DEFAULT.audio_encoder)")

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests of $corpus_dir"
  [ -n "$corpus_dir" ] || { echo "--corpus-dir is required for stage 0" >&2; exit 2; }
  omnisep prepare custom "$corpus_dir" "$data_dir/manifests" --name $corpus
fi

. "$(dirname "$0")/../utils/stages_1_to_4.sh"
