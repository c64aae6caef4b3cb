"""Choose how `--audio-label` maps an audio query onto the vocabulary, on the dev mixtures.

An audio example lands in the text space (the encoder is bound to it), so its nearest
Query-Set label can be found as a text's is (Query-Aug, eq. 5). For each candidate (the
audio alone; composed at equal weight with its nearest label's text; with that label's
audio prototype too) and each cosine threshold below which the audio stays alone, print
the query's SDRi (fast_bss_eval) on every target of the dev mixtures, mean per category and
then over categories. Two kinds of audio query: the label's audio-query bank entry (S = 5
training clips: the test tables' protocol) and one training clip of the label (seeded: what
a user's own example is like). Only validation recordings are separated in the choice; the
same script rates the choice once on the held-out recordings (their cuts and
test_mixtures.json in place of the dev ones, ``--thresholds 0.3``; docs/results.md).

    python recipes/omni/local/choose_audio_label.py exp/omni/model/omnisep.pth \
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \
        data/omni/embedded/omni_cuts_valid_embedded.jsonl.gz \
        data/omni/embedded/presence_dev_mixtures.json \
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json
"""
import argparse
import random
from collections import defaultdict
from statistics import mean

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from omnisep_plugin.data import load_cuts
from omnisep_plugin.data.embed import build_audio_query_bank, cut_label
from omnisep_plugin.data.mixtures import load_test_mixtures, render_mixture
from omnisep_plugin.models import OmniSep
from omnisep_plugin.open_domain import load_categories
from omnisep_plugin.query import QuerySet
from omnisep_plugin.query.spec import audio_with_label
from omnisep_plugin.scoring.metrics import fast_sdr


def sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    return fast_sdr(ref.double().numpy(), est.double().numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("model", "train_cuts", "dev_cuts", "dev_mixtures", "query_set", "classes"):
        ap.add_argument(name)
    ap.add_argument("--thresholds", default="0,0.3,0.5", help="cosines below which the audio stays alone")
    ap.add_argument("--seed", type=int, default=0, help="draws the single training clip per target")
    args = ap.parse_args()

    model = OmniSep.from_pretrained(args.model).eval()
    query_set = QuerySet.load(args.query_set)
    categories = load_categories(args.classes)
    train = load_cuts(args.train_cuts)
    bank = build_audio_query_bank(train, 5)
    clips = defaultdict(list)
    for cut in train:
        clips[cut_label(cut)].append(torch.from_numpy(cut.load_audio_emb()).float())
    thresholds = [float(t) for t in args.thresholds.split(",")]
    rng = random.Random(args.seed)

    def variants(audio: torch.Tensor) -> dict:
        audio = F.normalize(audio, dim=-1)
        sims = query_set.similarities(audio)[0]
        best = int(sims.argmax())
        label = query_set.labels[best]
        text, proto = query_set.embeddings[best], bank.lookup(label)
        out = {"alone": audio}
        for t in thresholds:
            near = float(sims[best]) >= t
            out[f"+label (cos>={t:g})"] = audio_with_label(audio, query_set, t)  # what ships
            out[f"+label+prototype (cos>={t:g})"] = (
                F.normalize(F.normalize(text, dim=-1) + audio + F.normalize(proto, dim=-1), dim=-1)
                if near else audio)
        return out

    dev = load_cuts(args.dev_cuts)
    n_samples, entries = load_test_mixtures(args.dev_mixtures)
    cells = defaultdict(list)
    names = None
    for entry in tqdm(entries, desc="dev mixtures"):
        mix, sources = render_mixture(entry, dev, n_samples)
        labels = [s["label"] for s in entry["sources"]]
        queries = {}
        for i, lab in enumerate(labels):
            for kind, audio in (("bank", bank.lookup(lab)), ("one clip", rng.choice(clips[lab]))):
                for name, q in variants(audio).items():
                    queries[i, f"{kind}: {name}"] = q
        names = sorted({n for _, n in queries}, key=lambda n: (n.split(":")[0], n))
        stacked = torch.stack([queries[i, n] for i in range(len(labels)) for n in names])
        with torch.no_grad():
            est = model(mix[None], stacked[None])[0].reshape(len(labels), len(names), -1)
        for i, lab in enumerate(labels):
            base = sdr(mix, sources[i])
            for k, name in enumerate(names):
                cells[categories[lab], name].append(sdr(est[i, k], sources[i]) - base)
    cats = sorted({c for c, _ in cells})
    print(f"| audio query | {' | '.join(cats)} | mean over categories |")
    print("| --- " * (len(cats) + 2) + "|")
    for name in names:
        per_cat = [mean(cells[c, name]) for c in cats]
        print(f"| {name} | {' | '.join(f'{v:.2f}' for v in per_cat)} | {mean(per_cat):.2f} |")


if __name__ == "__main__":
    main()
