"""Throughput of the training mixture dataset (mixtures per second) on this machine.

Builds a fake MUSIC-layout corpus (11 classes, 10-s clips) unless ``--cuts`` names embedded
cuts, embeds it with a tiny ImageBind (the arrays are what training reads), then times
``MixtureDataset`` behind Lhotse's ``SimpleCutSampler``
and a ``DataLoader`` with ``--workers`` processes, 2 sources per mixture, 65535-sample crops.

Usage:
    python benchmarks/mixture_throughput.py --workers 2 --batches 40 --batch-size 32
Writes the figures to ``benchmarks/results/mixture_throughput.json`` too.
"""
import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from lhotse import CutSet
from lhotse.dataset import SimpleCutSampler

from omnisep_plugin.data.embed import embed_cuts
from omnisep_plugin.data.mixtures import MixtureDataset
from omnisep_plugin.data.recipes import prepare_music
from omnisep_plugin.data.descriptions import MUSIC_INSTRUMENTS
from omnisep_plugin.query import ImageBindEncoder
from omnisep_plugin.testing.dummies import save_tiny_imagebind_checkpoint
from omnisep_plugin.testing.fake_corpus import make_fake_music


def fake_embedded_cuts(workdir: Path) -> CutSet:
    make_fake_music(workdir / "corpus", instruments=MUSIC_INSTRUMENTS, per_class=6, seconds=10)
    cuts = prepare_music(workdir / "corpus")["train"]["cuts"]
    save_tiny_imagebind_checkpoint(workdir / "tiny.pth")
    return embed_cuts(cuts, ImageBindEncoder(workdir / "tiny.pth"), workdir / "arrays")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", help="embedded cuts manifest (default: a fake corpus)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/mixture_throughput.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cuts = (CutSet.from_file(args.cuts).to_eager() if args.cuts
                else fake_embedded_cuts(Path(tmp)))
        dataset = MixtureDataset(cuts, n_src=2)
        sampler = SimpleCutSampler(cuts, max_cuts=args.batch_size, shuffle=True,
                                   drop_last=True)
        sampler.set_epoch(0)
        loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None,
                                             num_workers=args.workers,
                                             persistent_workers=args.workers > 0)
        n_mix, batches, start = 0, 0, None
        while batches < args.batches:
            for batch in loader:
                if start is None:  # the first batch pays for worker start-up
                    start = time.perf_counter()
                    continue
                n_mix += batch["mixture"].shape[0]
                batches += 1
                if batches >= args.batches:
                    break
        seconds = time.perf_counter() - start
    figures = {
        "mixtures_per_s": n_mix / seconds, "batches": batches, "batch_size": args.batch_size,
        "workers": args.workers, "crop_samples": 65535, "n_src": 2, "seconds": seconds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cuts": len(cuts),
    }
    print(f"MixtureDataset: {figures['mixtures_per_s']:.1f} mixtures/s "
          f"({n_mix} mixtures of 2 x 65535 samples in {seconds:.2f} s, "
          f"{args.workers} workers, batch {args.batch_size}, {figures['machine']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
