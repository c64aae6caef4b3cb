"""Measure test-time variants of what `omnisep separate --model omni --text` does (text +
prototype, then the residual second pass) on the dev mixtures: other networks, their
weight average (a "soup" of fine-tunes of one model), the mean of several networks'
estimates (an output ensemble), and a mask temperature ``sigmoid(logits / T)`` (``T`` > 1:
softer masks). Prints the SDRi and SI-SDRi (fast_bss_eval) of each variant's first and
second pass, mean per category and over categories. Choose on the dev mixtures (validation
recordings); the same command on a test set's cuts and mixtures reports. docs/results.md
section 10 (session 16) was measured with:

    python recipes/omni/local/choose_test_time.py omni \
        data/omni/embedded/omni_cuts_train_embedded.jsonl.gz \
        data/omni/embedded/omni_cuts_valid_embedded.jsonl.gz \
        data/omni/embedded/presence_dev_mixtures.json \
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json \
        --encoder omnisep_plugin/pretrained/omni/audio_encoder.pth \
        --networks "soup=omni+exp/omni_fm/fm_c/omnisep.pth,gpu=exp/omni/gpu2_clean/omnisep.pth" \
        --ensembles "model+gpu" --temperatures 1.5

The positional model is ``model``; ``--networks`` adds ``name=path`` (``a+b``: the mean of
the weights of networks of one architecture). ``--temperatures`` adds the positional model
at each temperature, both passes (``model T=...``). Every network is otherwise measured as
trained: a package's own mask-temperature table (set_mask_temperatures.py) is left out.
"""
import copy
from typing import Dict, List

import torch

from omnisep_plugin.data.embed import build_audio_query_bank
from omnisep_plugin.models import OmniSep
from omnisep_plugin.query.offline import OfflineEncoder

from dev_mixtures import DevSet, parser, two_passes


def load(path: str) -> OmniSep:
    """The network of ``path`` without its package's mask-temperature table."""
    model = OmniSep.from_pretrained(path).eval()
    model.clear_mask_temperatures()
    return model


def weight_average(paths: List[str]) -> OmniSep:
    """The mean of the floating-point weights (and running statistics) of ``paths``."""
    models = [load(p) for p in paths]
    states = [m.state_dict() for m in models]
    out = copy.deepcopy(models[0])
    out.load_state_dict({k: sum(s[k] for s in states) / len(states) if v.is_floating_point()
                         else v for k, v in states[0].items()})
    return out.eval()


def at_temperature(model: OmniSep, temperature: float) -> OmniSep:
    """A copy of ``model`` whose every mask is ``sigmoid(logits / temperature)`` (a
    mask-temperature table of one key, which every query is nearest)."""
    out = copy.deepcopy(model)
    out.set_mask_temperatures(torch.ones(1, model.query_dim), torch.tensor([temperature]))
    return out.eval()


def main():
    ap = parser(__doc__)
    ap.add_argument("--encoder", required=True, help="the bound audio encoder that embeds residuals")
    ap.add_argument("--networks", default="", help="comma-separated name=path[+path...]")
    ap.add_argument("--ensembles", default="", help="semicolon-separated name+name[+...]")
    ap.add_argument("--temperatures", default="", help="comma-separated mask temperatures")
    args = ap.parse_args()

    dev = DevSet(args)
    encoder = OfflineEncoder(args.encoder)
    bank = build_audio_query_bank(dev.train, 5)
    dev.model.clear_mask_temperatures()
    nets: Dict[str, OmniSep] = {"model": dev.model}
    for item in filter(None, args.networks.split(",")):
        name, spec = item.split("=")
        paths = [args.model if p == "omni" else p for p in spec.split("+")]
        nets[name] = weight_average(paths) if len(paths) > 1 else \
            load(paths[0])
    for t in filter(None, args.temperatures.split(",")):
        nets[f"model T={t}"] = at_temperature(dev.model, float(t))
    # variant name -> the networks whose estimates are averaged
    variants = {name: [name] for name in nets}
    variants.update({e: e.split("+") for e in filter(None, args.ensembles.split(";"))})

    for labels, mix, sources in dev.mixtures():
        query = dev.text_prototypes(labels, bank)
        names, estimates = [], []
        for name, members in variants.items():
            first, second = two_passes([nets[m] for m in members], encoder, mix, query)
            names += [f"{name}, one pass", f"{name}, + residual"]
            estimates += [first, second]
        out = torch.stack(estimates)                                   # [names, n_src, time]
        for i, lab in enumerate(labels):
            dev.score(lab, names, out[:, i], mix, sources[i], si=True)
    dev.print_table("variant (SDRi)", extra=dev.si_column())


if __name__ == "__main__":
    main()
