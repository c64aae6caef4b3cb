"""Choose the residual negative of `omnisep separate --residual-negative` on the dev mixtures.

A single query's first-pass residual (mixture minus estimate) is what else the mixture
holds; its audio embedding, less its component along the query, is removed from the query
in a second pass (eq. 4; omnisep_plugin.query.residual). For each alpha, print the SDRi
(fast_bss_eval) of the text, text + prototype (what `--model omni --text` asks) and
named-other (two stems removing each other: `--text A --text B`) queries with and without
the residual negative, mean per category and over categories. The choice is made on the dev
mixtures (validation recordings); the same command on a test set's cuts and mixtures reports.

    python recipes/omni/local/choose_residual_negative.py omni \
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \
        data/omni/embedded/omni_cuts_valid_embedded.jsonl.gz \
        data/omni/embedded/presence_dev_mixtures.json \
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json \
        --encoder omnisep_plugin/pretrained/omni/audio_encoder.pth --alphas 0.25,0.5,1
"""
import torch

from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.query import negative_query, remove_each_other, residual_queries
from omnisep_plugin.query.offline import OfflineEncoder

from dev_mixtures import DevSet, parser


def main():
    ap = parser(__doc__)
    ap.add_argument("--encoder", required=True, help="the bound audio encoder that embeds residuals")
    ap.add_argument("--alphas", default="0.5", help="comma-separated residual alphas")
    ap.add_argument("--no-projection", action="store_true",
                    help="also score each alpha without removing the residual's component "
                         "along the query")
    args = ap.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]

    dev = DevSet(args)
    encoder = OfflineEncoder(args.encoder)
    bank = build_audio_query_bank(dev.train, 5)

    for labels, mix, sources in dev.mixtures():
        texts = torch.stack([dev.query_set.lookup(lab) for lab in labels])
        protos = dev.text_prototypes(labels, bank)
        first = {"text": texts, "text+proto": protos, "named other": remove_each_other(protos)}
        queries = torch.cat(list(first.values()))                       # [3 n, dim]
        with torch.no_grad():
            est = dev.model(mix[None], queries[None])[0]
        todo = dict(first)
        for a in alphas:
            second, _ = residual_queries(encoder, mix, est, queries, a)
            for b, name in enumerate(first):
                todo[f"{name} + residual a={a:g}"] = second[b * len(labels):(b + 1) * len(labels)]
            if args.no_projection:
                raw = encoder.embed_audio(mix[None] - est)
                plain = torch.stack([negative_query(q, r, a) for q, r in zip(queries, raw)])
                for b, name in enumerate(first):
                    todo[f"{name} + residual a={a:g}, no projection"] = \
                        plain[b * len(labels):(b + 1) * len(labels)]
        names = list(todo)
        with torch.no_grad():
            out = dev.model(mix[None], torch.cat([todo[n] for n in names])[None])[0]
        out = out.reshape(len(names), len(labels), -1)
        for i, lab in enumerate(labels):
            dev.score(lab, names, out[:, i], mix, sources[i])
    dev.print_table("query")


if __name__ == "__main__":
    main()
