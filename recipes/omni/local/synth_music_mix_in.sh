#!/usr/bin/env bash
# The instrument default's own training corpus as a mix-in of the open-domain model
# (conf/mix_synth_music.yaml, `data.mix_in`): render recipes/synth_music's train and valid
# splits (FluidSynth, FluidR3_GM; 17 s on 2 cores; its test split is the benchmark and is only
# kept), embed them with omni's query encoders (MiniLM + omni's bound audio encoder), train
# from the model of stage 4 with $weight of the batches drawn from it, then score the model on
# 100 fixed mixtures of the *valid* split (text and text + prototype SDRi by fast_bss_eval,
# mean per instrument; `synth_valid.md`), beside the omni dev mixtures (`omni_dev.md`).
#
#   bash recipes/omni/local/synth_music_mix_in.sh                 # after stages 0-4 of recipes/omni
#   bash recipes/omni/local/synth_music_mix_in.sh --minutes 60    # resumes where it stopped
set -euo pipefail

synth_dir=data/synth_music
data_dir=data/omni
exp=exp/omni/mix_synth
init=exp/omni/model/omnisep.pth
weight=0.4
minutes=null
. "$(dirname "$0")/../../utils/parse_options.sh"
out=$data_dir/synth_music_embedded
emb=$data_dir/embedded
local_dir=$(dirname "$0")

if [ ! -f "$synth_dir/manifests/synth_music_cuts_train.jsonl.gz" ]; then
  bash recipes/synth_music/run.sh --stage 0 --stop-stage 1 --corpus-dir "$synth_dir/corpus" --data-dir "$synth_dir"
fi
for split in train valid; do
  omnisep embed "$synth_dir/manifests/synth_music_cuts_$split.jsonl.gz" "$out" \
    --offline "$data_dir/audio_encoder.pth" --bank-size 5
done
[ -f "$out/valid_mixtures.json" ] || \
  omnisep make-mixtures "$out/synth_music_cuts_valid_embedded.jsonl.gz" "$out/valid_mixtures.json" -n 100
# each instrument its own "category", so the tables' mean is over instruments
python -c "import json, sys; from omnisep_plugin.query import QuerySet
json.dump({l: {'category': l} for l in QuerySet.load(sys.argv[1]).labels}, open(sys.argv[2], 'w'))" \
  "$out/synth_music_cuts_train_query_set.pt" "$out/classes.json"

extra=()
[ -f "$exp/checkpoints/last.ckpt" ] && extra+=(--resume) || extra+=(--init "$init")
omnisep train --conf recipes/omni/conf/mix_synth_music.yaml --exp-dir "$exp" "${extra[@]}" \
  --set "data.augment={level_db: [-5.0, 5.0], backgrounds: $data_dir/corpus/backgrounds.json}" \
  --set "data.mix_in=[{cuts: $out/synth_music_cuts_train_embedded.jsonl.gz, weight: $weight, augment: null}]" \
  --set training.max_minutes=$minutes \
  --train-cuts "$emb/omni_cuts_train_embedded.jsonl.gz" \
  --valid-cuts "$emb/omni_cuts_valid_embedded.jsonl.gz" --valid-mixtures "$emb/valid_mixtures.json"

python "$local_dir/choose_prototypes.py" "$exp/omnisep.pth" "$out/synth_music_cuts_train_embedded.jsonl.gz" \
  "$out/synth_music_cuts_valid_embedded.jsonl.gz" "$out/valid_mixtures.json" \
  "$out/synth_music_cuts_train_query_set.pt" "$out/classes.json" --sizes 5 --audio-weights 1 \
  | tee "$exp/synth_valid.md"
python "$local_dir/choose_prototypes.py" "$exp/omnisep.pth" "$emb/omni_cuts_train_embedded.jsonl.gz" \
  "$emb/omni_cuts_valid_embedded.jsonl.gz" "$emb/presence_dev_mixtures.json" \
  "$emb/omni_cuts_train_query_set.pt" "$data_dir/corpus/classes.json" --sizes 5 --audio-weights 1 --audio-alone \
  | tee "$exp/omni_dev.md"
