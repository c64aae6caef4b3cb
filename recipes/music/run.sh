#!/usr/bin/env bash
# OmniSep on MUSIC (Zhao et al., 2018): prepare -> embed -> train -> separate -> score.
#
#   bash recipes/music/run.sh --corpus-dir /data/MUSIC --imagebind /ckpt/imagebind_huge.pth
#   bash recipes/music/run.sh --stage 2 --stop-stage 2 --resume true     # continue training
#   bash recipes/music/run.sh --stage 3 --conf recipes/music/conf/table12_negative_subtract.yaml \
#       --eval-tag table12_subtract                                       # Table 12 baseline
#
# corpus_dir layout (see omnisep_plugin/data/recipes/music.py):
#   MUSIC_solo_videos.json
#   audio/<instrument>/<id>.wav + frames/<instrument>/<id>/NNNNNN.jpg   (or)
#   videos/<instrument>/<id>.mp4
# Outputs: $data_dir/{manifests,embedded}, $exp_dir/{checkpoints,omnisep.pth,separated,results}
# (results/results.md is the table; separated/mix00000_0.png the spectrogram figure).
# Every hyper-parameter is in $conf (paper defaults); ablations: conf/table2_*.yaml.
set -euo pipefail

stage=0
stop_stage=4
corpus_dir=
imagebind=
conf=$(dirname "$0")/conf/train.yaml
data_dir=data/music
exp_dir=exp/music/omnisep
n_test_mixtures=500
n_samples=65535
bank_size=1          # S = 1 training clip per class for MUSIC's audio queries
test_split=test
eval_tag=            # e.g. table12_subtract: stage 3/4 outputs go to separated_<tag>, results_<tag>
resume=false
device=cpu
. "$(dirname "$0")/../utils/parse_options.sh"

corpus=music
log() { echo -e "$(date '+%F %T') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: MUSIC manifests"
  [ -n "$corpus_dir" ] || { echo "--corpus-dir is required for stage 0" >&2; exit 2; }
  omnisep prepare music "$corpus_dir" "$data_dir/manifests"
fi

. "$(dirname "$0")/../utils/stages_1_to_4.sh"
