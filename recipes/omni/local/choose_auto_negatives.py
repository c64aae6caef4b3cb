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
import argparse
from collections import defaultdict
from statistics import mean

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from omnisep_plugin.data import load_cuts
from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.data.mixtures import load_test_mixtures, render_mixture
from omnisep_plugin.models import OmniSep
from omnisep_plugin.open_domain import load_categories
from omnisep_plugin.query import QuerySet, negative_query
from omnisep_plugin.query.spec import text_with_prototype
from omnisep_plugin.scoring.metrics import fast_sdr


def sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    return fast_sdr(ref.double().numpy(), est.double().numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("model", "train_cuts", "dev_cuts", "dev_mixtures", "query_set", "classes"):
        ap.add_argument(name)
    ap.add_argument("--thresholds", default="-6,-9", help="estimate-to-mixture energies (dB)")
    ap.add_argument("--most", default="1,2", help="at most this many labels removed")
    ap.add_argument("--max-similarity", type=float, default=0.7,
                    help="labels whose text is this near the query's are never removed")
    ap.add_argument("--alpha", type=float, default=0.5)
    args = ap.parse_args()

    model = OmniSep.from_pretrained(args.model).eval()
    query_set = QuerySet.load(args.query_set)
    categories = load_categories(args.classes)
    bank = build_audio_query_bank(load_cuts(args.train_cuts), 5)
    labels = query_set.labels
    texts = F.normalize(query_set.embeddings.float(), dim=-1)
    queries = torch.stack([text_with_prototype(t, query_set, bank) for t in texts])  # [L, dim]
    index = {lab: i for i, lab in enumerate(labels)}
    thresholds = [float(t) for t in args.thresholds.split(",")]
    most = [int(m) for m in args.most.split(",")]

    dev = load_cuts(args.dev_cuts)
    n_samples, entries = load_test_mixtures(args.dev_mixtures)
    cells = defaultdict(list)
    found = defaultdict(list)
    for entry in tqdm(entries, desc="dev mixtures"):
        mix, sources = render_mixture(entry, dev, n_samples)
        with torch.no_grad():
            every = model(mix[None], queries[None])[0]                  # [L, time]
        energy = 10 * torch.log10(every.pow(2).sum(-1) / mix.pow(2).sum().clamp_min(1e-12)
                                  + 1e-12)
        names = [s["label"] for s in entry["sources"]]
        for i, lab in enumerate(names):
            t = index[lab]
            q = queries[t]
            others = [index[o] for j, o in enumerate(names) if j != i]
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
            kinds = list(todo)
            with torch.no_grad():
                est = model(mix[None], torch.stack([todo[k] for k in kinds])[None])[0]
            base = sdr(mix, sources[i])
            for k, name in enumerate(kinds):
                cells[categories[lab], name].append(sdr(est[k], sources[i]) - base)
    cats = sorted({c for c, _ in cells})
    names = list(dict.fromkeys(n for _, n in cells))
    print(f"| negative | {' | '.join(cats)} | mean over categories | other source among them |")
    print("| --- " * (len(cats) + 3) + "|")
    for name in names:
        per_cat = [mean(cells[c, name]) for c in cats]
        share = f"{100 * mean(found[name]):.0f} %" if name in found else ""
        print(f"| {name} | {' | '.join(f'{v:.2f}' for v in per_cat)} | {mean(per_cat):.2f} | {share} |")


if __name__ == "__main__":
    main()
