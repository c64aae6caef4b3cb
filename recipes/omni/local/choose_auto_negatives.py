"""Would a single query gain from removing what else the model hears in the mixture?

`omnisep separate --text A --text B` removes each stem's query from the other (eq. 4): +1.1
dB SDRi when the other sound is named. With one query nobody names it; but the mask head is
cheap once the U-Net has run, so every label's estimate can be had in one pass, and the
labels whose estimates are loud (estimate-to-mixture energy at least THR dB) are candidates
for what else is there. For each candidate rule (energy threshold, how many labels at most,
excluding labels whose text is within cosine SIM of the query's), print the text + prototype
query's SDRi (fast_bss_eval) with those labels' queries as its negative, beside the query
alone and the named other source's query (the test tables' composed+neg), mean per category
and over categories, on the dev mixtures (validation recordings).

    python recipes/omni/local/choose_auto_negatives.py exp/omni/model/omnisep.pth \
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \
        data/omni/embedded/omni_cuts_valid_embedded.jsonl.gz \
        data/omni/embedded/presence_dev_mixtures.json \
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json
"""
from collections import defaultdict
from statistics import mean

import torch
import torch.nn.functional as F

from omnisep_plugin.config import SEPARATE
from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.query import negative_query
from omnisep_plugin.query.spec import text_with_prototype

from dev_mixtures import DevSet, parser


def main():
    ap = parser(__doc__)
    ap.add_argument("--thresholds", default="-6,-9", help="estimate-to-mixture energies (dB)")
    ap.add_argument("--most", default="1,2", help="at most this many labels removed")
    ap.add_argument("--max-similarity", type=float, default=0.7,
                    help="labels whose text is this near the query's are never removed")
    ap.add_argument("--alpha", type=float, default=SEPARATE.alpha)
    args = ap.parse_args()

    dev = DevSet(args)
    query_set = dev.query_set
    bank = build_audio_query_bank(dev.train, 5)
    texts = F.normalize(query_set.embeddings.float(), dim=-1)
    queries = torch.stack([text_with_prototype(t, query_set, bank) for t in texts])  # [L, dim]
    index = {lab: i for i, lab in enumerate(query_set.labels)}
    thresholds = [float(t) for t in args.thresholds.split(",")]
    most = [int(m) for m in args.most.split(",")]

    found = defaultdict(list)
    for labels, mix, sources in dev.mixtures():
        with torch.no_grad():
            every = dev.model(mix[None], queries[None])[0]              # [L, time]
        energy = 10 * torch.log10(every.pow(2).sum(-1) / mix.pow(2).sum().clamp_min(1e-12)
                                  + 1e-12)
        for i, lab in enumerate(labels):
            t = index[lab]
            q = queries[t]
            others = [index[o] for j, o in enumerate(labels) if j != i]
            todo = {"query alone": q,
                    "named other (composed+neg)": negative_query(q, queries[others].mean(0), args.alpha)}
            near = texts @ texts[t] >= args.max_similarity
            order = [int(k) for k in energy.argsort(descending=True) if not near[k]]
            for thr in thresholds:
                loud = [k for k in order if energy[k] >= thr]
                for m in most:
                    chosen = loud[:m]
                    name = f"energy >= {thr:g} dB, at most {m}"
                    found[name].append(any(k in others for k in chosen))
                    todo[name] = (q if not chosen else
                                  negative_query(q, queries[chosen].mean(0), args.alpha))
            with torch.no_grad():
                est = dev.model(mix[None], torch.stack(list(todo.values()))[None])[0]
            dev.score(lab, list(todo), est, mix, sources[i])
    dev.print_table("negative", extra=("other source among them",
                                       {n: f"{100 * mean(v):.0f} %" for n, v in found.items()}))


if __name__ == "__main__":
    main()
