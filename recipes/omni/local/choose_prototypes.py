"""Choose the audio prototypes of `--prototypes` on the dev mixtures (validation recordings).

For each candidate, how many training clips each label's prototype averages (5: the paper's
audio-query bank, S = 5; or every training clip of the label) and how much it weighs
against the text (text 1 : audio w), print the text + prototype query's SDRi (fast_bss_eval)
on every target of the dev mixtures, mean per category and then over categories, beside the
text alone. Only validation recordings are separated: the test sets stay out of the choice.

    python recipes/omni/local/choose_prototypes.py exp/omni/model/omnisep.pth \
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \
        data/omni/embedded/omni_cuts_valid_embedded.jsonl.gz \
        data/omni/embedded/presence_dev_mixtures.json \
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json
"""
import argparse
from collections import defaultdict
from statistics import mean

import torch
from tqdm.auto import tqdm

from omnisep_plugin.data import load_cuts
from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.data.mixtures import load_test_mixtures, render_mixture
from omnisep_plugin.models import OmniSep
from omnisep_plugin.open_domain import load_categories
from omnisep_plugin.scoring.metrics import fast_sdr
from omnisep_plugin.query import QuerySet, compose_query


def sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    return fast_sdr(ref.double().numpy(), est.double().numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("model", "train_cuts", "dev_cuts", "dev_mixtures", "query_set", "classes"):
        ap.add_argument(name)
    ap.add_argument("--sizes", default="5,0", help="clips per prototype (0: every training clip)")
    ap.add_argument("--audio-weights", default="1,2", help="the prototype's weights (text: 1)")
    ap.add_argument("--audio-alone", action="store_true",
                    help="also score each prototype alone (the test tables' audio query)")
    args = ap.parse_args()

    model = OmniSep.from_pretrained(args.model).eval()
    query_set = QuerySet.load(args.query_set)
    categories = load_categories(args.classes)
    train = load_cuts(args.train_cuts)
    banks = {n: build_audio_query_bank(train, n if n > 0 else 10 ** 9)
             for n in (int(s) for s in args.sizes.split(","))}
    weights = [float(w) for w in args.audio_weights.split(",")]
    kinds = {"text": None, **{f"S={n or 'all'} w={w:g}": (n, w) for n in banks for w in weights}}
    if args.audio_alone:
        kinds.update({f"S={n or 'all'} alone": (n, None) for n in banks})

    def query(label: str, kind) -> torch.Tensor:
        text = query_set.lookup(label)
        if kind is None:
            return text
        n, w = kind
        if w is None:
            return banks[n].lookup(label)
        return compose_query({"text": text, "audio": banks[n].lookup(label)}, {"text": 1.0, "audio": w})

    dev = load_cuts(args.dev_cuts)
    n_samples, entries = load_test_mixtures(args.dev_mixtures)
    cells = defaultdict(list)
    for entry in tqdm(entries, desc="dev mixtures"):
        mix, sources = render_mixture(entry, dev, n_samples)
        labels = [s["label"] for s in entry["sources"]]
        queries = torch.stack([query(lab, kind) for lab in labels for kind in kinds.values()])
        with torch.no_grad():
            est = model(mix[None], queries[None])[0].reshape(len(labels), len(kinds), -1)
        for i, lab in enumerate(labels):
            base = sdr(mix, sources[i])
            for k, name in enumerate(kinds):
                cells[categories[lab], name].append(sdr(est[i, k], sources[i]) - base)
    cats = sorted({c for c, _ in cells})
    print(f"| query | {' | '.join(cats)} | mean over categories |")
    print("| --- " * (len(cats) + 2) + "|")
    for name in kinds:
        per_cat = [mean(cells[c, name]) for c in cats]
        print(f"| {name} | {' | '.join(f'{v:.2f}' for v in per_cat)} | {mean(per_cat):.2f} |")


if __name__ == "__main__":
    main()
