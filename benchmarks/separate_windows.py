"""Separation quality and cost against the window length (choosing ``SEPARATE.window``).

Test mixtures in the style of the shipped example: two instruments of the synth_music test
split, each source the concatenation of ``--clips`` test clips (every clip peak-normalised to
0.45, as ``omnisep export-bundle`` makes the example), summed. Every source of every mixture
is separated with its label as the text query (the default model and its offline encoder),
once per window (``whole``: one pass over the file) and scored with fast_bss_eval's SDR.
The cost column is the share of U-Net frames a window pays for beyond the signal's (padding
to the U-Net's multiple plus the cross-faded overlap).

Usage:
    omnisep render synth_music data/synth_music/corpus && omnisep prepare synth_music ...
    python benchmarks/separate_windows.py --cuts data/synth_music/manifests/synth_music_cuts_test.jsonl.gz
Writes ``benchmarks/results/separate_windows.json``.
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from omnisep_plugin.data import load_cuts
from omnisep_plugin.data.embed import cut_label
from omnisep_plugin.pipelines import DEFAULT
from omnisep_plugin.scoring.metrics import fast_sdr
from omnisep_plugin.separation.overlap_add import separate_array


def make_mixtures(cuts, n_pairs: int, clips: int):
    """``n_pairs`` two-instrument mixtures ``(labels, sources [2, n], mixture [n])``."""
    by_label = {}
    for cut in sorted(cuts, key=lambda c: c.id):
        by_label.setdefault(cut_label(cut), []).append(cut)
    labels = sorted(by_label)
    out = []
    for p in range(n_pairs):
        pair = (labels[p % len(labels)], labels[(p + 1 + p // len(labels)) % len(labels)])
        sources = []
        for i, lab in enumerate(pair):
            chosen = by_label[lab][(p * clips + i) % len(by_label[lab]):][:clips]
            parts = [c.load_audio()[0] for c in chosen]
            sources.append(np.concatenate([0.45 * x / max(np.abs(x).max(), 1e-8) for x in parts]))
        n = min(len(s) for s in sources)
        sources = np.stack([s[:n] for s in sources]).astype(np.float32)
        out.append((pair, sources, sources.sum(0)))
    return out


def frames_paid(window: int, overlap: float, hop_length: int, multiple: int) -> float:
    """U-Net frames computed per signal frame on a long file (padding and overlap)."""
    frames = window // hop_length + 1
    padded = math.ceil(frames / multiple) * multiple
    return padded / (frames * (1 - overlap))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", required=True, help="synth_music test cuts")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--clips", default="1,10", help="clips per source (6 s each), per set")
    parser.add_argument("--windows", default="65536,65535,131071,262143,524287,whole")
    parser.add_argument("--overlaps", default="0.25")
    parser.add_argument("--out", default="benchmarks/results/separate_windows.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model, encoder = DEFAULT.get_model(), DEFAULT.get_encoder()
    cuts = load_cuts(args.cuts)
    rows = []
    for clips in [int(c) for c in args.clips.split(",")]:
        mixtures = make_mixtures(cuts, args.pairs, clips)
        for window in args.windows.split(","):
            for overlap in [float(o) for o in args.overlaps.split(",")]:
                win = None if window == "whole" else int(window)
                sdrs = []
                for labels, sources, mix in mixtures:
                    for label, ref in zip(labels, sources):
                        query = encoder.embed_text([label.replace("_", " ")])[0]
                        est = separate_array(model, torch.from_numpy(mix)[None], query, win,
                                             overlap=overlap)[0].numpy()
                        sdrs.append(fast_sdr(ref, est))
                row = {"seconds": mix.shape[-1] / 16000, "window": window, "overlap": overlap,
                       "targets": len(sdrs), "sdr_mean": float(np.mean(sdrs)),
                       "sdr_median": float(np.median(sdrs)),
                       "frames_paid": None if win is None else frames_paid(
                           win, overlap, model.stft.hop_length, model.masker.size_multiple)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
