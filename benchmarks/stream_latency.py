"""Latency of live separation (``separate_stream`` with no total length).

A recording is fed in blocks of ``--block`` samples, as a live source would deliver them, to
``separate_stream(blocks, None, ...)``. For each yielded estimate block the script records
how many input samples had arrived and how much had come out: the largest gap is the
algorithmic latency (at most one ``--window``); the forward pass time per window is the
compute latency added to it on this machine.

Usage:
    python benchmarks/stream_latency.py --window 32767 --block 1600 --seconds 30
"""
import argparse
import json
import sys
import time

import numpy as np
import torch

from omnisep_plugin.pipelines import DEFAULT
from omnisep_plugin.separation import separate_stream
from omnisep_plugin.separation.backends import separator_for


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=32767)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--block", type=int, default=1600)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", default="eager")
    args = parser.parse_args()
    model = separator_for(DEFAULT.get_model(), args.backend)
    sr = int(model.sample_rate)
    wav = (0.1 * np.random.default_rng(0).standard_normal((1, int(args.seconds * sr)))).astype(
        np.float32)
    fed, gaps, passes = [0], [], []

    def live():
        for start in range(0, wav.shape[-1], args.block):
            fed[0] = min(wav.shape[-1], start + args.block)
            yield wav[:, start:start + args.block]

    out, last = 0, time.perf_counter()
    for piece in separate_stream(live(), None, model, torch.randn(model.model.query_dim),
                                 window=args.window, overlap=args.overlap):
        now = time.perf_counter()
        passes.append(now - last)
        last = now
        if fed[0] < wav.shape[-1]:
            gaps.append(fed[0] - out)
        out += piece.shape[-1]
    res = {"window_s": args.window / sr, "block_s": args.block / sr,
           "algorithmic_latency_max_s": max(gaps) / sr, "outputs": len(passes),
           "compute_per_window_s": float(np.median(passes[1:] or passes))}
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
