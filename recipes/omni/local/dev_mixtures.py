"""What the choice scripts of recipes/omni/local share: their six arguments (a model, the
training cuts, the dev cuts and mixtures, the Query-Set, the corpus's classes), the dev
mixtures rendered one at a time, the text + prototype query of `--model omni --text` and its
two passes, SDRi (and, if asked, SI-SDRi) per target, and the Markdown table of its mean per
category and over categories. SDR is fast_bss_eval's unless a script is given ``--backend
museval`` (BSS Eval v4 as the recipe's tables score: for a mono estimate the plain SNR,
docs/results.md section 15)."""
import argparse
from collections import defaultdict
from statistics import mean
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import fast_bss_eval
import torch
from tqdm.auto import tqdm

from omnisep_plugin.config import SEPARATE
from omnisep_plugin.data import load_cuts
from omnisep_plugin.data.mixtures import load_test_mixtures, render_mixture
from omnisep_plugin.models import OmniSep
from omnisep_plugin.open_domain import load_categories
from omnisep_plugin.query import QuerySet, residual_queries
from omnisep_plugin.query.offline import OfflineEncoder
from omnisep_plugin.query.spec import text_with_prototype
from omnisep_plugin.scoring.metrics import SDR_BACKENDS

ARGUMENTS = ("model", "train_cuts", "dev_cuts", "dev_mixtures", "query_set", "classes")


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the six positional arguments, described by ``doc``'s first
    paragraph."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    for name in ARGUMENTS:
        ap.add_argument(name)
    ap.add_argument("--backend", choices=sorted(SDR_BACKENDS), default="fast",
                    help="the SDR of SDRi: fast_bss_eval, or museval as the recipe's tables")
    return ap


class DevSet:
    """The model (eval mode), Query-Set, label -> category map, training cuts and scores
    ``cells[category, query name] -> [SDRi, ...]`` (``si_cells``: SI-SDRi) of a choice run."""

    def __init__(self, args: argparse.Namespace, model: Optional[OmniSep] = None):
        self.args = args
        self.model = (OmniSep.from_pretrained(args.model) if model is None else model).eval()
        self.query_set = QuerySet.load(args.query_set)
        self.categories = load_categories(args.classes)
        self.train = load_cuts(args.train_cuts)
        self.cells: Dict[Tuple[str, str], List[float]] = defaultdict(list)
        self.si_cells: Dict[Tuple[str, str], List[float]] = defaultdict(list)

    def mixtures(self) -> Iterator[Tuple[List[str], torch.Tensor, torch.Tensor]]:
        """Each dev mixture in turn: its labels, the mixture ``[time]`` and its sources
        ``[n_src, time]``."""
        dev = load_cuts(self.args.dev_cuts)
        n_samples, entries = load_test_mixtures(self.args.dev_mixtures)
        for entry in tqdm(entries, desc="dev mixtures"):
            mix, sources = render_mixture(entry, dev, n_samples)
            yield [s["label"] for s in entry["sources"]], mix, sources

    def text_prototypes(self, labels: Sequence[str], bank: QuerySet) -> torch.Tensor:
        """What ``--model omni --text LABEL`` asks for each label: its Query-Set text with the
        prototype of ``bank`` (:func:`text_with_prototype`), ``[len(labels), dim]``."""
        return torch.stack([text_with_prototype(self.query_set.lookup(lab), self.query_set, bank)
                            for lab in labels])

    def score(self, label: str, names: Sequence[str], estimates: torch.Tensor,
              mix: torch.Tensor, source: torch.Tensor, si: bool = False) -> None:
        """Record the SDRi (``si``: and the SI-SDRi) of each estimate ``[len(names), time]``
        of one target."""
        base = self._sdr(mix, source)
        si_base = _si_sdr(mix, source) if si else 0.0
        for name, est in zip(names, estimates):
            self.cells[self.categories[label], name].append(self._sdr(est, source) - base)
            if si:
                self.si_cells[self.categories[label], name].append(_si_sdr(est, source) - si_base)

    def _sdr(self, est: torch.Tensor, ref: torch.Tensor) -> float:
        return SDR_BACKENDS[self.args.backend](ref.double().numpy(), est.double().numpy())

    def si_column(self) -> Tuple[str, Dict[str, str]]:
        """:meth:`print_table`'s ``extra`` column: the mean SI-SDRi over categories per name."""
        cats = sorted({c for c, _ in self.si_cells})
        names = dict.fromkeys(n for _, n in self.si_cells)
        return "SI-SDRi", {n: f"{mean(mean(self.si_cells[c, n]) for c in cats):.2f}" for n in names}

    def print_table(self, first: str, names: Optional[Sequence[str]] = None,
                    extra: Optional[Tuple[str, Dict[str, str]]] = None) -> None:
        """The mean SDRi per category and over categories, a row per query name (``names``:
        in this order; default: as first scored); ``extra``: one more column (header,
        name -> cell)."""
        cats = sorted({c for c, _ in self.cells})
        names = list(names or dict.fromkeys(n for _, n in self.cells))
        head = f"| {first} | {' | '.join(cats)} | mean over categories |"
        print(head + (f" {extra[0]} |" if extra else ""))
        print("| --- " * (len(cats) + 2 + bool(extra)) + "|")
        for name in names:
            per_cat = [mean(self.cells[c, name]) for c in cats]
            row = f"| {name} | {' | '.join(f'{v:.2f}' for v in per_cat)} | {mean(per_cat):.2f} |"
            print(row + (f" {extra[1].get(name, '')} |" if extra else ""))


def two_passes(networks: Sequence[OmniSep], encoder: OfflineEncoder, mix: torch.Tensor,
               query: torch.Tensor, alpha: float = SEPARATE.residual_alpha
               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first pass of ``query [n, dim]`` on ``mix [time]`` and the residual-negative
    second pass (:func:`residual_queries`, ``alpha``), each the mean of the estimates of
    ``networks`` (one network: its own): two ``[n, time]``."""
    with torch.no_grad():
        first = torch.stack([net(mix[None], query[None])[0] for net in networks]).mean(0)
        second_q, _ = residual_queries(encoder, mix, first, query, alpha)
        second = torch.stack([net(mix[None], second_q[None])[0] for net in networks]).mean(0)
    return first, second


def _si_sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    return float(fast_bss_eval.si_sdr(ref.double().numpy()[None], est.double().numpy()[None])[0])
