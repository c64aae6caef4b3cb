#!/usr/bin/env bash
# Stages 1-4 shared by the corpus recipes; sourced by recipes/<corpus>/run.sh, which sets
# corpus, data_dir, exp_dir, conf, imagebind, bank_size, n_test_mixtures, n_samples,
# test_split, eval_tag, resume, device, stage, stop_stage and log(); optionally offline
# (a bound audio encoder: the offline Query-Net instead of ImageBind) and init (fine-tune
# from "default" or an omnisep.pth).
emb=$data_dir/embedded
sep_dir=$exp_dir/separated${eval_tag:+_$eval_tag}
res_dir=$exp_dir/results${eval_tag:+_$eval_tag}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: query embeddings, query banks, fixed valid/test mixtures"
  if [ -n "${offline:-}" ]; then encoder=(--offline "$offline")
  elif [ -n "$imagebind" ]; then encoder=(--imagebind "$imagebind")
  else echo "--imagebind PATH is required for stage 1" >&2; exit 2; fi
  for split in train valid $test_split; do
    omnisep embed "$data_dir/manifests/${corpus}_cuts_${split}.jsonl.gz" "$emb" \
      "${encoder[@]}" --bank-size $bank_size --device $device
  done
  for split in valid $test_split; do
    omnisep make-mixtures "$emb/${corpus}_cuts_${split}_embedded.jsonl.gz" \
      "$emb/${split}_mixtures.json" -n $n_test_mixtures --n-samples $n_samples
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: training ($conf)"
  extra=()
  [ "$resume" = true ] && extra+=(--resume)
  [ -n "${init:-}" ] && extra+=(--init "$init")
  omnisep train --conf "$conf" --exp-dir "$exp_dir" "${extra[@]}" \
    --train-cuts "$emb/${corpus}_cuts_train_embedded.jsonl.gz" \
    --valid-cuts "$emb/${corpus}_cuts_valid_embedded.jsonl.gz" \
    --valid-mixtures "$emb/valid_mixtures.json"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: separate the fixed $test_split mixtures with every query kind"
  omnisep separate-test "$exp_dir/omnisep.pth" "$emb/${corpus}_cuts_${test_split}_embedded.jsonl.gz" \
    "$emb/${test_split}_mixtures.json" "$sep_dir" --conf "$conf" --device $device \
    --query-set "$emb/${corpus}_cuts_train_query_set.pt" \
    --audio-bank "$emb/${corpus}_cuts_train_audio_bank.pt" \
    --free-text "$emb/${corpus}_cuts_train_free_text.pt" --plot mix00000_0
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: scoring (museval SDR, SDRi, SI-SDR)"
  omnisep score "$res_dir" --references "$sep_dir/refs" --estimates "$sep_dir/est" \
    --mixtures "$sep_dir/mix"
  log "results table: $res_dir/results.md"
fi
