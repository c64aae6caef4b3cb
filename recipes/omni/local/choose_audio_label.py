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
import random
from collections import defaultdict

import torch
import torch.nn.functional as F

from omnisep_plugin.data.embed import build_audio_query_bank, cut_label
from omnisep_plugin.query.spec import audio_with_label, label_text_for

from dev_mixtures import DevSet, parser


def main():
    ap = parser(__doc__)
    ap.add_argument("--thresholds", default="0,0.3,0.5", help="cosines below which the audio stays alone")
    ap.add_argument("--seed", type=int, default=0, help="draws the single training clip per target")
    args = ap.parse_args()

    dev = DevSet(args)
    query_set = dev.query_set
    bank = build_audio_query_bank(dev.train, 5)
    clips = defaultdict(list)
    for cut in dev.train:
        clips[cut_label(cut)].append(torch.from_numpy(cut.load_audio_emb()).float())
    thresholds = [float(t) for t in args.thresholds.split(",")]
    rng = random.Random(args.seed)

    def variants(audio: torch.Tensor) -> dict:
        audio = F.normalize(audio, dim=-1)
        text, label, sim = label_text_for(audio, query_set, min_similarity=-float("inf"))
        proto = bank.lookup(label)
        out = {"alone": audio}
        for t in thresholds:
            out[f"+label (cos>={t:g})"] = audio_with_label(audio, query_set, t)  # what ships
            out[f"+label+prototype (cos>={t:g})"] = (
                F.normalize(F.normalize(text, dim=-1) + audio + F.normalize(proto, dim=-1), dim=-1)
                if sim >= t else audio)
        return out

    names = None
    for labels, mix, sources in dev.mixtures():
        queries = {}
        for i, lab in enumerate(labels):
            for kind, audio in (("bank", bank.lookup(lab)), ("one clip", rng.choice(clips[lab]))):
                for name, q in variants(audio).items():
                    queries[i, f"{kind}: {name}"] = q
        names = sorted({n for _, n in queries}, key=lambda n: (n.split(":")[0], n))
        stacked = torch.stack([queries[i, n] for i in range(len(labels)) for n in names])
        with torch.no_grad():
            est = dev.model(mix[None], stacked[None])[0].reshape(len(labels), len(names), -1)
        for i, lab in enumerate(labels):
            dev.score(lab, names, est[i], mix, sources[i])
    dev.print_table("audio query", names)


if __name__ == "__main__":
    main()
