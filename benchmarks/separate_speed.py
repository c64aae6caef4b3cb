"""Separation speed (real-time factor) and peak memory against input length.

1. Batched 4-s clips: real-time factor of ``model(wav, query)`` on a batch of 65535-sample
   clips (bf16 autocast on a GPU, fp32 on the CPU).
2. Files of 1 min, 10 min and 1 h (16 kHz mono, generated): ``separate_file`` streaming in
   overlapping windows, each length in a fresh subprocess so that its peak RSS is its own.

Usage:
    python benchmarks/separate_speed.py                       # default model, all lengths
    python benchmarks/separate_speed.py --widths 16,32,64,128,128,128,128 --lengths 60,600
Writes ``benchmarks/results/separate_speed.json``.
"""
import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from omnisep_plugin.models import OmniSep


def build_model(widths):
    torch.manual_seed(0)
    return OmniSep(unet_widths=widths).eval()


def clip_rtf(model, batch: int, device) -> float:
    model = model.to(device)
    wav = 0.1 * torch.randn(batch, 65535, device=device)
    q = torch.randn(batch, model.query_dim, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    with torch.no_grad(), autocast:
        model(wav, q)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        reps = 3
        for _ in range(reps):
            model(wav, q)
        if device.type == "cuda":
            torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / reps
    return batch * 65535 / 16000 / seconds


def file_child(widths, path, out):
    """Run in a subprocess: separate one file, print wall seconds and peak RSS."""
    from omnisep_plugin.separation import separate_file

    model = build_model(widths)
    start = time.perf_counter()
    separate_file(model, Path(path), torch.randn(model.query_dim), Path(out))
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it does not carry the
    parent's high-water mark over fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_noise(path: Path, seconds: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="FLOAT") as f:
        for _ in range(0, seconds, 60):
            f.write((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,256,512,512,512,512")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", default="60,600,3600", help="file lengths in seconds")
    parser.add_argument("--out", default="benchmarks/results/separate_speed.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    if args.child:
        return file_child(widths, *args.child)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(widths)
    figures = {
        "device": torch.cuda.get_device_name() if device.type == "cuda"
        else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "params": sum(p.numel() for p in model.parameters()), "widths": widths,
        "clip_batch": args.batch, "clip_rtf": clip_rtf(model, args.batch, device), "files": [],
    }
    print(f"{figures['params'] / 1e6:.1f} M params on {figures['device']}: 4-s clips, batch "
          f"{args.batch}: {figures['clip_rtf']:.1f}x real time")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in [int(s) for s in args.lengths.split(",")]:
            src, dst = Path(tmp) / f"in{seconds}.wav", Path(tmp) / f"out{seconds}.wav"
            write_noise(src, seconds)
            out = subprocess.run([sys.executable, __file__, "--widths", args.widths, "--child",
                                  str(src), str(dst)], capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res.update(input_s=seconds, rtf=seconds / res["seconds"])
            figures["files"].append(res)
            print(f"file of {seconds} s: {res['seconds']:.1f} s wall ({res['rtf']:.1f}x real "
                  f"time), peak RSS {res['peak_rss_mb']:.0f} MB")
            src.unlink()
            dst.unlink()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    sys.exit(main())
