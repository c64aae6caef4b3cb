"""Scoring speed: museval (BSS Eval v4) vs fast_bss_eval on the same pairs, and their gap.

Builds ``--pairs`` reference / estimate pairs of 4-s clips at SNRs from -5 to 25 dB
(a harmonic reference plus noise), times both SDR backends over all of them (fast_bss_eval
also batched, on a GPU when present) and prints the speed ratio and max |dSDR|. The
results table uses the fast path only where |dSDR| <= 0.01 dB (``omnisep score --backend
fast`` checks this itself).

Usage:
    python benchmarks/score_speed.py --pairs 200
Writes ``benchmarks/results/score_speed.json``.
"""
import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from omnisep_plugin.scoring import FAST_TOLERANCE_DB, bss_sdr, fast_sdr


def make_pairs(n: int, seconds: float = 4.0, sr: int = 16000, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    refs, ests = [], []
    for i in range(n):
        f0 = rng.uniform(100, 800)
        ref = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 6))
        ref *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t)
        snr = rng.uniform(-5, 25)
        noise = rng.standard_normal(len(t))
        noise *= np.sqrt(np.mean(ref ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
        refs.append(ref)
        ests.append(ref + noise)
    return np.array(refs), np.array(ests)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/results/score_speed.json")
    args = parser.parse_args()
    refs, ests = make_pairs(args.pairs)
    start = time.perf_counter()
    slow = np.array([bss_sdr(r, e) for r, e in zip(refs, ests)])
    t_museval = time.perf_counter() - start
    start = time.perf_counter()
    fast = np.array([fast_sdr(r, e) for r, e in zip(refs, ests)])
    t_fast = time.perf_counter() - start
    import fast_bss_eval
    device = "cuda" if torch.cuda.is_available() else "cpu"
    batch_r, batch_e = torch.from_numpy(refs).to(device), torch.from_numpy(ests).to(device)
    start = time.perf_counter()
    batched = fast_bss_eval.sdr(batch_r[:, None], batch_e[:, None], filter_length=512)
    if device == "cuda":
        torch.cuda.synchronize()
    t_batched = time.perf_counter() - start
    delta = float(np.abs(fast - slow).max())
    batched_delta = float(np.abs(batched.cpu().numpy()[:, 0] - slow).max())
    figures = {
        "pairs": args.pairs, "machine": f"{platform.machine()}, {device}",
        "museval_s": t_museval, "fast_s": t_fast, "fast_batched_s": t_batched,
        "speedup": t_museval / t_fast, "speedup_batched": t_museval / t_batched,
        "max_abs_delta_db": delta, "max_abs_delta_batched_db": batched_delta,
        "fast_path_allowed": delta <= FAST_TOLERANCE_DB,
    }
    print(f"{args.pairs} pairs of 4 s: museval {t_museval:.2f} s, fast_bss_eval {t_fast:.2f} s "
          f"({figures['speedup']:.1f}x), batched on {device} {t_batched:.2f} s "
          f"({figures['speedup_batched']:.1f}x); max |dSDR| {delta:.3f} dB -> fast path "
          f"{'allowed' if figures['fast_path_allowed'] else 'NOT allowed (museval stays)'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
