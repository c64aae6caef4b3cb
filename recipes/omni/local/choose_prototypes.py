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
import torch

from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.query import compose_query

from dev_mixtures import DevSet, parser


def main():
    ap = parser(__doc__)
    ap.add_argument("--sizes", default="5,0", help="clips per prototype (0: every training clip)")
    ap.add_argument("--audio-weights", default="1,2", help="the prototype's weights (text: 1)")
    ap.add_argument("--audio-alone", action="store_true",
                    help="also score each prototype alone (the test tables' audio query)")
    args = ap.parse_args()

    dev = DevSet(args)
    banks = {n: build_audio_query_bank(dev.train, n if n > 0 else 10 ** 9)
             for n in (int(s) for s in args.sizes.split(","))}
    weights = [float(w) for w in args.audio_weights.split(",")]
    kinds = {"text": None, **{f"S={n or 'all'} w={w:g}": (n, w) for n in banks for w in weights}}
    if args.audio_alone:
        kinds.update({f"S={n or 'all'} alone": (n, None) for n in banks})

    def query(label: str, kind) -> torch.Tensor:
        text = dev.query_set.lookup(label)
        if kind is None:
            return text
        n, w = kind
        if w is None:
            return banks[n].lookup(label)
        return compose_query({"text": text, "audio": banks[n].lookup(label)}, {"text": 1.0, "audio": w})

    for labels, mix, sources in dev.mixtures():
        queries = torch.stack([query(lab, kind) for lab in labels for kind in kinds.values()])
        with torch.no_grad():
            est = dev.model(mix[None], queries[None])[0].reshape(len(labels), len(kinds), -1)
        for i, lab in enumerate(labels):
            dev.score(lab, list(kinds), est[i], mix, sources[i])
    dev.print_table("query", list(kinds))


if __name__ == "__main__":
    main()
