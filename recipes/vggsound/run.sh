#!/usr/bin/env bash
# OmniSep on VGGSound (Chen et al., 2020), instrument classes removed as in the paper:
# prepare -> embed -> train -> separate -> score.
#
#   bash recipes/vggsound/run.sh --corpus-dir /data/VGGSound --imagebind /ckpt/imagebind_huge.pth \
#       --clean-list /data/vggsound_clean_plus_ids.txt        # VGGSound-Clean+ as "test_clean"
#
# corpus_dir layout (see omnisep_plugin/data/recipes/vggsound.py):
#   vggsound.csv                                  (youtube_id,start_seconds,label,split)
#   audio/<id>_<start:06d>.wav + frames/<id>_<start:06d>/NNNNNN.jpg   (or)
#   videos/<id>_<start:06d>.mp4
# Outputs as recipes/music/run.sh. Every hyper-parameter is in $conf.
set -euo pipefail

stage=0
stop_stage=4
corpus_dir=
imagebind=
clean_list=          # clip ids of a clean test list (VGGSound-Clean+); empty: score on "test"
descriptions=        # optional CSV label,description of free-text class descriptions
valid_fraction=0.05  # share of the CSV's train clips held out for validation
conf=$(dirname "$0")/conf/train.yaml
data_dir=data/vggsound
exp_dir=exp/vggsound/omnisep
n_test_mixtures=500
n_samples=65535
bank_size=5          # S = 5 training clips per class for VGGSound's audio queries
test_split=
eval_tag=
resume=false
device=cpu
. "$(dirname "$0")/../utils/parse_options.sh"

corpus=vggsound
[ -n "$test_split" ] || test_split=$([ -n "$clean_list" ] && echo test_clean || echo test)
log() { echo -e "$(date '+%F %T') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: VGGSound manifests"
  [ -n "$corpus_dir" ] || { echo "--corpus-dir is required for stage 0" >&2; exit 2; }
  extra=()
  [ -n "$clean_list" ] && extra+=(--clean-list "test_clean=$clean_list")
  [ -n "$descriptions" ] && extra+=(--descriptions "$descriptions")
  omnisep prepare vggsound "$corpus_dir" "$data_dir/manifests" --valid-fraction $valid_fraction \
    "${extra[@]}"
fi

. "$(dirname "$0")/../utils/stages_1_to_4.sh"
