#!/usr/bin/env bash
# The instrument specialist (`--model instruments`, the default until session 12) against the
# open-domain model on the default's own instruments, rendered by a soundfont neither was
# trained on (the held-out sf_GMbank: the test_loso clips): $n fixed mixtures of two of
# those instruments, the default's benchmark's form. Both take the same text queries (the
# label as a user types it, MiniLM); the open-domain model also its composed query (text +
# audio prototype: what `--model omni` does). Writes $out/{omni,default}/results.
#
#   bash recipes/omni/local/specialist_pairs.sh        # after stages 0-4 of recipes/omni
set -euo pipefail

model=exp/omni/model
emb=data/omni/embedded
out=exp/omni/specialist_pairs
n=150
nj=2
. "$(dirname "$0")/../../utils/parse_options.sh"

default_model=$(python -c "from omnisep_plugin.pipelines import INSTRUMENTS; print(INSTRUMENTS.model)")
labels=$(python -c "from omnisep_plugin.pipelines import INSTRUMENTS; from omnisep_plugin.query import QuerySet
print(','.join(QuerySet.load(INSTRUMENTS.query_set).labels))")
cuts=$emb/omni_cuts_test_loso_embedded.jsonl.gz
omnisep make-mixtures $cuts "$out/mixtures.json" -n $n --labels "$labels"
omnisep separate-test "$model/omnisep.pth" $cuts "$out/mixtures.json" "$out/omni" --conf "$model/conf.yaml" \
  --query-set $emb/omni_cuts_train_query_set.pt --audio-bank $emb/omni_cuts_train_audio_bank.pt \
  --free-text $emb/omni_cuts_train_free_text.pt
omnisep separate-test "$default_model" $cuts "$out/mixtures.json" "$out/default" \
  --query-set $emb/omni_cuts_train_query_set.pt
for m in omni default; do
  echo "## $m"
  omnisep score "$out/$m/results" --references "$out/$m/refs" --estimates "$out/$m/est" \
    --mixtures "$out/$m/mix" -j $nj 2>/dev/null
done
