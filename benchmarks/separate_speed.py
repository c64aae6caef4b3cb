"""Separation speed (real-time factor) and peak memory against input length.

1. Batched 4-s clips: real-time factor of ``model(wav, query)`` on a batch of 65535-sample
   clips (bf16 autocast on a GPU, fp32 on the CPU).
2. Files of 1 min, 10 min and 1 h (16 kHz mono, generated): ``separate_file`` streaming in
   overlapping windows (``--window``, ``--overlap``, ``--batch-windows``) with the mask network
   run by ``--backend`` (eager, torchscript, onnxruntime), each length in a fresh subprocess
   so that its peak RSS is its own; the time includes the backend's conversion.
3. ``--queries N``: N stems from one call (one U-Net pass per window) against N calls, on
   the first file length.
4. ``--compare-backends SECONDS``: unfolded eager / eager / torchscript / onnxruntime on the
   same audio in one process, alternating.

Usage:
    python benchmarks/separate_speed.py --model paper --backend onnxruntime    # 30.3 M params
    python benchmarks/separate_speed.py --model default --lengths 60,3600      # shipped model
Writes ``benchmarks/results/separate_speed.json`` (with the processor's flags).
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

from omnisep_plugin.config import BACKENDS, SEPARATE
from omnisep_plugin.models import OmniSep


def build_model(name):
    """A shipped model (``default``: routed, a query runs the network of its label; ``omni``,
    ``instruments``: one network); ``paper``: the paper's size (random weights); else
    comma-separated U-Net widths."""
    from omnisep_plugin.pipelines import BUNDLES
    if name in BUNDLES:
        return OmniSep.from_pretrained(name)
    torch.manual_seed(0)
    widths = None if name == "paper" else [int(w) for w in name.split(",")]
    return OmniSep(unet_widths=widths).eval()


def cpu_flags() -> list:
    """The processor's vector / matrix extensions that matter to PyTorch and ONNX Runtime."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))


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


def compare_backends(model, seconds: int, rounds: int, window: int, overlap: float) -> dict:
    """Real-time factor of every backend on the same ``seconds`` of noise, in one process,
    alternating (ABAB...) so that a shared CPU's load falls on all alike; best of ``rounds``.
    ``unfolded`` is the model's own forward (the query head not folded)."""
    from omnisep_plugin.separation import separate_array
    from omnisep_plugin.separation.backends import separator_for

    class Unfolded(torch.nn.Module):  # OmniSep.forward itself (separate_stream would fold it)
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, wav, query):
            return self.model(wav, query)

    runners = {"unfolded": Unfolded(model), **{b: separator_for(model, b) for b in BACKENDS}}
    wav, query = 0.1 * torch.randn(1, 16000 * seconds), torch.randn(model.query_dim)
    rtf = {name: 0.0 for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            separate_array(runner, wav, query, window=window, overlap=overlap)
            rtf[name] = max(rtf[name], seconds / (time.perf_counter() - start))
    return rtf


def file_child(args, path, out):
    """Run in a subprocess: separate one file, print wall seconds and peak RSS."""
    from omnisep_plugin.separation import separate_file
    from omnisep_plugin.separation.backends import resolve_backend, separator_for

    model = build_model(args.model)
    queries = torch.randn(args.queries, model.query_dim)
    cpu = cpu_seconds()
    start = time.perf_counter()
    backend = resolve_backend(args.backend, "cpu", sf.info(path).duration)
    sep = separator_for(model, backend)
    ready = time.perf_counter() - start
    kw = dict(window=args.window, overlap=args.overlap, batch_windows=args.batch_windows)
    outs = [Path(f"{out}.{i}.wav") for i in range(args.queries)]
    separate_file(sep, Path(path), queries, outs, **kw)
    seconds = time.perf_counter() - start
    res = {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "backend": backend,
           "backend_setup_s": ready, "peak_rss_mb": peak_rss_mb()}
    if args.queries > 1:  # the same stems by separate calls, one query each
        start = time.perf_counter()
        for q, o in zip(queries, outs):
            separate_file(sep, Path(path), q, o, **kw)
        res["separate_calls_seconds"] = time.perf_counter() - start + ready
    print(json.dumps(res))


def cpu_seconds() -> float:
    """User + system CPU time of this process (on a shared machine the wall time also
    counts the time other processes hold the cores)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


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
    parser.add_argument("--model", default="paper",
                        help="default (shipped), paper (30.3 M) or comma-separated U-Net widths")
    parser.add_argument("--backend", default=SEPARATE.backend, choices=("auto",) + BACKENDS)
    parser.add_argument("--window", type=int, default=SEPARATE.window)
    parser.add_argument("--overlap", type=float, default=SEPARATE.overlap)
    parser.add_argument("--batch-windows", type=int, default=1)
    parser.add_argument("--queries", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--skip-clips", action="store_true", help="only the file lengths")
    parser.add_argument("--compare-backends", type=int, default=0, metavar="SECONDS",
                        help="also compare the backends in one process on this much audio")
    parser.add_argument("--lengths", default="60,600,3600", help="file lengths in seconds")
    parser.add_argument("--out", default="benchmarks/results/separate_speed.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return file_child(args, *args.child)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(args.model)
    figures = {
        "device": torch.cuda.get_device_name() if device.type == "cuda"
        else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "cpu_flags": cpu_flags(), "params": sum(p.numel() for p in model.parameters()),
        "model": args.model, **{k: getattr(args, k) for k in (
            "backend", "window", "overlap", "batch_windows", "queries")}, "files": []}
    print(json.dumps({k: v for k, v in figures.items() if k != "files"}))
    if args.compare_backends:
        figures["backends_rtf"] = compare_backends(model, args.compare_backends, 3, args.window,
                                                   args.overlap)
        print("backends, best of 3 alternating rounds on "
              f"{args.compare_backends} s: " + ", ".join(
                  f"{k} {v:.1f}x" for k, v in figures["backends_rtf"].items()))
    if not args.skip_clips:
        figures.update(clip_batch=args.batch, clip_rtf=clip_rtf(model, args.batch, device))
        print(f"4-s clips, batch {args.batch}: {figures['clip_rtf']:.1f}x real time")
    child = [sys.executable, __file__, *[a for k in ("model", "backend", "window", "overlap",
             "batch_windows", "queries") for a in (f"--{k.replace('_', '-')}",
                                                    str(getattr(args, k)))]]
    with tempfile.TemporaryDirectory() as tmp:
        for i, seconds in enumerate(int(s) for s in args.lengths.split(",")):
            src, dst = Path(tmp) / f"in{seconds}.wav", Path(tmp) / f"out{seconds}"
            write_noise(src, seconds)
            if i:
                child[child.index("--queries") + 1] = "1"
            out = subprocess.run([*child, "--child", str(src), str(dst)], capture_output=True,
                                 text=True)
            if out.returncode:
                raise SystemExit(out.stderr)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res.update(input_s=seconds, rtf=seconds / res["seconds"],
                       rtf_cpu_time=seconds / res["cpu_seconds"])
            figures["files"].append(res)
            print(f"file of {seconds} s, {res['backend']}: {res['seconds']:.1f} s wall "
                  f"({res['rtf']:.1f}x real time; {res['cpu_seconds']:.1f} CPU s), peak RSS "
                  f"{res['peak_rss_mb']:.0f} MB" + (
                      f"; {args.queries} stems in one call vs {args.queries} calls: "
                      f"{res['seconds']:.1f} s vs {res['separate_calls_seconds']:.1f} s"
                      if "separate_calls_seconds" in res else ""))
            for p in Path(tmp).iterdir():
                p.unlink()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    sys.exit(main())
