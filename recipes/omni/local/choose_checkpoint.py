"""Choose among the checkpoints of omni runs on instruments of a soundfont no model heard.

The valid split shares the training soundfonts, so it cannot tell which checkpoint
generalises to other timbres: checkpoints 1,000 steps apart swing by up to 1 dB on the
held-out soundfont (docs/results.md section 11). ``valid_loso`` (stage 0 with
``dev_soundfont``: freepats, rendered into no other split) is a second unheard soundfont to
choose on, so that ``test_loso`` is only reported. For each model (Lightning checkpoints of
``omnisep train``, ``.ckpt``, or model packages; comma-separated, globs allowed) print the
SDRi and SI-SDRi (fast_bss_eval, mean per category and over categories) of what
``--model omni --text`` does: text + prototype, one pass and with the residual-negative
second pass (alpha 0.5); then name the best by the latter.

    python recipes/omni/local/choose_checkpoint.py \
        "omnisep_plugin/pretrained/omni/omnisep.pth,exp/omni_ta/ta/checkpoints/step*000.ckpt" \
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \
        data/omni/embedded/omni_cuts_valid_loso_embedded.jsonl.gz \
        data/omni/embedded/valid_loso_mixtures.json \
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json \
        --encoder omnisep_plugin/pretrained/omni/audio_encoder.pth

A checkpoint is scored without a mask-temperature table (T = 1, as its run trained it); a
package with its own (the shipped omni's gives instruments T = 1 too).
"""
import glob
from statistics import mean
from typing import List

import torch

from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.models import OmniSep
from omnisep_plugin.query.offline import OfflineEncoder
from omnisep_plugin.training import model_from_checkpoint

from dev_mixtures import DevSet, parser, two_passes

ALPHA = 0.5


def expand(models: str) -> List[str]:
    """The comma-separated models, each glob expanded in sorted order (a name or path that
    matches no file is kept as it is: a package name such as ``omni``)."""
    out: List[str] = []
    for item in (m.strip() for m in models.split(",") if m.strip()):
        out += sorted(glob.glob(item)) or [item]
    return out


def load(model: str) -> OmniSep:
    return model_from_checkpoint(model) if model.endswith(".ckpt") else OmniSep.from_pretrained(model).eval()


def main():
    ap = parser(__doc__)
    ap.add_argument("--encoder", required=True, help="the bound audio encoder that embeds residuals")
    args = ap.parse_args()
    models = expand(args.model)
    first_model = load(models[0])
    dev = DevSet(args, model=first_model)
    encoder = OfflineEncoder(args.encoder)
    bank = build_audio_query_bank(dev.train, 5)
    mixtures = list(dev.mixtures())
    protos = [dev.text_prototypes(labels, bank) for labels, _, _ in mixtures]
    names = []
    for n, model in enumerate(models):
        net = first_model if n == 0 else load(model)
        one, two = f"{model}: one pass", f"{model}: + residual"
        names += [one, two]
        for (labels, mix, sources), queries in zip(mixtures, protos):
            est, est2 = two_passes([net], encoder, mix, queries, ALPHA)
            for i, lab in enumerate(labels):
                dev.score(lab, [one, two], torch.stack([est[i], est2[i]]), mix, sources[i], si=True)
    dev.print_table("model (text + prototype)", names, dev.si_column())
    cats = sorted({c for c, _ in dev.cells})
    final = {m: mean(mean(dev.cells[c, f"{m}: + residual"]) for c in cats) for m in models}
    best = max(final, key=final.get)
    print(f"\nbest: {best} ({final[best]:.2f} dB SDRi with the residual pass)")


if __name__ == "__main__":
    main()
