"""Does a model carry the sound of the corpus pack's codec? Text queries on test mixtures,
once as they are and once with every source Opus-coded at the pack's level (as the sources
of a model trained from `omnisep pack-corpus` were) and re-mixed; SDRi and SI-SDRi
(``omnisep score --backend fast``'s scoring) of each model, mean over targets.

    python recipes/omni/local/codec_probe.py exp/omni/gpu2/omni_gpu/bundle/omnisep.pth omni \\
        data/omni/embedded/omni_cuts_test_embedded.jsonl.gz data/omni/embedded/test_mixtures.json \\
        data/omni/embedded/omni_cuts_train_query_set.pt --mixtures 150 --level 0.97
"""
import argparse
from statistics import mean

import numpy as np
import torch
from tqdm.auto import tqdm

from omnisep_plugin.data import load_cuts
from omnisep_plugin.data.mixtures import load_test_mixtures, render_mixture
from omnisep_plugin.data.pack import decode_audio, encode_opus
from omnisep_plugin.models import OmniSep
from omnisep_plugin.query import QuerySet
from omnisep_plugin.scoring.metrics import score_pair



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs=2, help="two models (a path or a shipped name)")
    ap.add_argument("cuts", help="the test cuts")
    ap.add_argument("mixtures", help="the test mixtures JSON")
    ap.add_argument("query_set", help="the labels' text queries (<prefix>_query_set.pt)")
    ap.add_argument("--mixtures", dest="n", type=int, default=150, help="the first N mixtures")
    ap.add_argument("--level", type=float, default=0.97, help="Opus compression level (the pack's)")
    args = ap.parse_args()
    models = {name: OmniSep.from_pretrained(name).eval() for name in args.models}
    query_set = QuerySet.load(args.query_set)
    cuts = load_cuts(args.cuts)
    n_samples, entries = load_test_mixtures(args.mixtures)
    scores = {(name, domain): [] for name in models for domain in ("clean", "opus")}
    for entry in tqdm(entries[:args.n], desc="mixtures"):
        _, sources = render_mixture(entry, cuts, n_samples)
        clean = sources.numpy().astype(np.float32)
        coded = np.stack([decode_audio(encode_opus(s, 16000, args.level))[:len(s)] if np.any(s) else s
                          for s in clean]).astype(np.float32)
        query = torch.stack([query_set.lookup(s["label"]) for s in entry["sources"]])[None]
        for domain, srcs in (("clean", clean), ("opus", coded)):
            mix = srcs.sum(0)
            for name, model in models.items():
                with torch.no_grad():
                    est = model(torch.from_numpy(mix)[None], query)[0].numpy()
                for ref, e in zip(srcs, est):
                    score = score_pair(ref, e, mix, backend="fast")   # None: a silent reference
                    if score is not None:
                        scores[name, domain].append((score["sdri"], score["si_sdri"]))
    print("| model | sources | targets | SDRi | SI-SDRi |\n| --- | --- | --- | --- | --- |")
    for (name, domain), rows in scores.items():
        print(f"| {name} | {domain} | {len(rows)} | {mean(r[0] for r in rows):.2f} | "
              f"{mean(r[1] for r in rows):.2f} |")


if __name__ == "__main__":
    main()
