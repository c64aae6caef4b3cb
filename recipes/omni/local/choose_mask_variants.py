"""Measure separation-time variants of what `omnisep separate --model omni --text` does (text
+ prototype, then the residual second pass) that need no other network: the residual as a
competing source, shifted STFT framings, and other audio prototypes. Prints the SDRi and
SI-SDRi (fast_bss_eval) of each, mean per category and over categories. docs/results.md
section 12 (session 18) was measured with, on the dev mixtures and on the held-out soundfont's
(``omni_cuts_test_loso_embedded.jsonl.gz test_loso_mixtures.json``):

    python recipes/omni/local/choose_mask_variants.py omnisep_plugin/pretrained/omni/omnisep.pth \\
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \\
        data/omni/embedded/omni_cuts_valid_embedded.jsonl.gz \\
        data/omni/embedded/presence_dev_mixtures.json \\
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json \\
        --encoder omnisep_plugin/pretrained/omni/audio_encoder.pth

The variants (the model keeps its mask-temperature table throughout):
- ``compete``: the second pass's mask ``m_t`` against the mask ``m_r`` of the first pass's
  residual embedding as a query of its own (``raw``; ``less query``: ``(1 + a) R - a Q``), as
  ``m_t / (m_t + m_r)``, ``m_t^2 / (m_t^2 + m_r^2)`` or ``sigmoid(z_t - z_r)``;
- ``shifts``: the mixture delayed by 0, 1/4, 1/2, 3/4 of a hop, each pass's estimates
  averaged;
- ``banks``: the mean of the masks of four prototypes (5-clip banks drawn with seeds 0-3);
  ``20-clip prototype``: one prototype of 20 clips.
The U-Net runs once per mixture (its masks do not depend on the query) except for shifts.
"""
import torch
import torch.nn.functional as F

from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.query import residual_queries
from omnisep_plugin.query.offline import OfflineEncoder
from omnisep_plugin.query.residual import residual_negative

from dev_mixtures import DevSet, parser

N_SHIFTS = 4


def main():
    ap = parser(__doc__)
    ap.add_argument("--encoder", required=True, help="the bound audio encoder that embeds residuals")
    args = ap.parse_args()
    dev = DevSet(args)
    model = dev.model
    encoder = OfflineEncoder(args.encoder)
    banks = [build_audio_query_bank(dev.train, 5, seed=s) for s in range(4)]
    bank20 = build_audio_query_bank(dev.train, 20)
    hop = model.stft.hop_length

    for labels, mix, sources in dev.mixtures():
        length = mix.shape[-1]

        def prototypes(bank):
            return dev.text_prototypes(labels, bank)

        with torch.no_grad():
            spec, mag = model.forward_encoder(mix[None])
            masks = model.forward_masker(mag)

            def logits(q):                                             # [n, F', T]
                return model.temper(model.apply_query(masks, q[None]), q[None])[0]

            def decode(mask):                                          # [n, time]
                return model.forward_decoder(mask[None], spec, length)[0, :, :length]

            def two_passes(queries):
                """Both passes with the masks of ``queries`` (a list) averaged."""
                first = decode(torch.stack([torch.sigmoid(logits(q)) for q in queries]).mean(0))
                second = [residual_queries(encoder, mix, first, q)[0] for q in queries]
                return first, second, decode(torch.stack([torch.sigmoid(logits(q))
                                                          for q in second]).mean(0))

            query = prototypes(banks[0])
            first, (second_q,), second = two_passes([query])
            out = {"one pass": first, "+ residual (what ships)": second}
            residual = encoder.embed_audio(mix[None] - first).float()
            z_t = logits(second_q)
            for name, r in (("raw", residual), ("less query", residual_negative(residual, query))):
                z_r = logits(r)
                m_t, m_r = torch.sigmoid(z_t), torch.sigmoid(z_r)
                out[f"compete ({name}): m_t / (m_t + m_r)"] = decode(m_t / (m_t + m_r + 1e-8))
                out[f"compete ({name}): m_t^2 / (m_t^2 + m_r^2)"] = \
                    decode(m_t ** 2 / (m_t ** 2 + m_r ** 2 + 1e-8))
                out[f"compete ({name}): sigmoid(z_t - z_r)"] = decode(torch.sigmoid(z_t - z_r))

            def shifted(q):
                ests = [model(F.pad(mix, (o, 0))[None], q[None])[0][:, o:o + length]
                        for o in (i * hop // N_SHIFTS for i in range(N_SHIFTS))]
                return torch.stack(ests).mean(0)
            first_s = shifted(query)
            out[f"{N_SHIFTS} shifts, one pass"] = first_s
            out[f"{N_SHIFTS} shifts, + residual"] = shifted(residual_queries(encoder, mix, first_s, query)[0])
            out["4 banks, one pass"], _, out["4 banks, + residual"] = \
                two_passes([prototypes(b) for b in banks])
            out["20-clip prototype, + residual"] = two_passes([prototypes(bank20)])[2]

        names = list(out)
        for i, lab in enumerate(labels):
            dev.score(lab, names, torch.stack([out[n][i] for n in names]), mix, sources[i], si=True)
    dev.print_table("variant (SDRi)", extra=dev.si_column())


if __name__ == "__main__":
    main()
