"""Give a model package a mask-temperature table by category (docs/results.md section 10):
at separation each query's mask is ``sigmoid(logits / T)`` with the temperature of its
nearest Query-Set label's category. The package is rewritten in place (atomically), its
weights in the precision they were stored in. Stage 7 of recipes/omni/run.sh runs it on the
exported bundle:

    python recipes/omni/local/set_mask_temperatures.py omnisep_plugin/pretrained/omni/omnisep.pth \\
        data/omni/embedded/omni_cuts_train_query_set.pt data/omni/corpus/classes.json \\
        --default 1.5 --category instrument=1

(chosen on the dev mixtures by ``choose_test_time.py --temperatures 1.5``: softer masks for
everyday sounds, the trained ones for instruments).
"""
import argparse

import torch

from omnisep_plugin.models.omnisep import TEMPERATURE_BUFFERS
from omnisep_plugin.models.routed import load_single
from omnisep_plugin.open_domain import category_temperatures, load_categories
from omnisep_plugin.query import QuerySet
from omnisep_plugin.utils import atomic_write


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="an OmniSep package (omnisep.pth), rewritten in place")
    ap.add_argument("query_set")
    ap.add_argument("classes", help="the corpus's classes.json (label -> category)")
    ap.add_argument("--default", type=float, default=1.0, help="temperature of other categories")
    ap.add_argument("--category", action="append", default=[], metavar="NAME=T")
    args = ap.parse_args()
    temps = {name: float(t) for name, t in (c.split("=") for c in args.category)}

    try:  # a missing file or a bad table: one line, and the package left as it was
        model = load_single(args.model, "set_mask_temperatures.py")
        keys, values = category_temperatures(QuerySet.load(args.query_set),
                                             load_categories(args.classes), temps, args.default)
        model.set_mask_temperatures(keys, values)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"set_mask_temperatures.py: {err}") from None
    pkg = torch.load(args.model, map_location="cpu", weights_only=True)
    dtype = pkg["state_dict"]["mask_bias"].dtype
    for name in TEMPERATURE_BUFFERS:
        pkg["state_dict"][name] = getattr(model, name).to(dtype)
    with atomic_write(args.model) as tmp:
        torch.save(pkg, tmp)
    print(f"{args.model}: {len(values)} labels, temperatures "
          f"{dict(sorted((t, int((values == t).sum())) for t in values.unique().tolist()))}")


if __name__ == "__main__":
    main()
