#!/usr/bin/env bash
# The instrument default's own training corpus as a mix-in of the open-domain model
# (conf/mix_synth_music.yaml, `data.mix_in`): render recipes/synth_music's train and valid
# splits (FluidSynth, FluidR3_GM; 17 s on 2 cores; its test split is the benchmark and is
# only kept), embed them with omni's query encoders (MiniLM + omni's bound audio encoder),
# write 100 fixed valid mixtures to watch the run on, then train from the model of stage 4.
#
#   bash recipes/omni/local/synth_music_mix_in.sh                 # after stages 0-4 of recipes/omni
#   bash recipes/omni/local/synth_music_mix_in.sh --minutes 60    # resumes where it stopped
set -euo pipefail

synth_dir=data/synth_music
data_dir=data/omni
out=$data_dir/synth_music_embedded
exp=exp/omni/mix_synth
init=exp/omni/model/omnisep.pth
minutes=null
. "$(dirname "$0")/../../utils/parse_options.sh"

if [ ! -f "$synth_dir/manifests/synth_music_cuts_train.jsonl.gz" ]; then
  bash recipes/synth_music/run.sh --stage 0 --stop-stage 1 --corpus-dir "$synth_dir/corpus" --data-dir "$synth_dir"
fi
for split in train valid; do
  omnisep embed "$synth_dir/manifests/synth_music_cuts_$split.jsonl.gz" "$out" \
    --offline "$data_dir/audio_encoder.pth" --bank-size 5
done
[ -f "$out/valid_mixtures.json" ] || \
  omnisep make-mixtures "$out/synth_music_cuts_valid_embedded.jsonl.gz" "$out/valid_mixtures.json" -n 100
extra=()
[ -f "$exp/checkpoints/last.ckpt" ] && extra+=(--resume) || extra+=(--init "$init")
omnisep train --conf recipes/omni/conf/mix_synth_music.yaml --exp-dir "$exp" "${extra[@]}" \
  --set "data.augment={level_db: [-5.0, 5.0], backgrounds: $data_dir/corpus/backgrounds.json}" \
  --set training.max_minutes=$minutes \
  --train-cuts "$data_dir/embedded/omni_cuts_train_embedded.jsonl.gz" \
  --valid-cuts "$data_dir/embedded/omni_cuts_valid_embedded.jsonl.gz" \
  --valid-mixtures "$data_dir/embedded/valid_mixtures.json"
