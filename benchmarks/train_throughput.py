"""Training throughput of OmniSep: clips per second and peak memory of full training steps.

Times this project's training step (``OmniSepSystem``: mixing, STFT, log-frequency warp,
targets and loss on the device, cached query embeddings, Query-Mixup) on random sources of
65535 samples with the default (paper) model, after warm-up steps. On a GPU it runs in
bf16 autocast and reports peak GPU memory; on the CPU in fp32 with peak RSS.

Usage:
    python benchmarks/train_throughput.py --batch-size 4 --steps 5            # CPU
    python benchmarks/train_throughput.py --batch-size 128 --steps 50         # GPU
Writes ``benchmarks/results/train_throughput.json``.
"""
import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from omnisep_plugin.training.system import OmniSepSystem


def fake_batch(batch_size: int, n_samples: int, dim: int, device) -> dict:
    sources = 0.3 * torch.randn(batch_size, 2, n_samples, device=device)
    batch = {"sources": sources}
    for kind in ("text", "image", "audio"):
        batch[f"{kind}_emb"] = torch.nn.functional.normalize(
            torch.randn(batch_size, 2, dim, device=device), dim=-1)
        batch[f"has_{kind}"] = torch.ones(batch_size, 2, dtype=torch.bool, device=device)
    return batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--widths", default="64,128,256,512,512,512,512")
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    widths = [int(w) for w in args.widths.split(",")]
    system = OmniSepSystem(model_args={"unet_widths": widths}).to(device)
    system.log = lambda *a, **k: None  # no trainer attached: logging is a no-op here
    opt = torch.optim.Adam(system.parameters(), lr=1e-3, fused=device.type == "cuda" or None)
    batch = fake_batch(args.batch_size, 65535, system.model.query_dim, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = system.model.compute_loss(batch["sources"].sum(1), batch["sources"],
                                             system.queries(batch))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), 1.0)
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    clips = args.steps * args.batch_size
    figures = {
        "clips_per_s": clips / seconds, "batch_size": args.batch_size, "steps": args.steps,
        "device": torch.cuda.get_device_name() if device.type == "cuda"
        else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "params": sum(p.numel() for p in system.model.parameters()),
        "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "hours_for_200k_steps_x128": 200000 * 128 / (clips / seconds) / 3600,
    }
    print(f"OmniSep training ({figures['params'] / 1e6:.1f} M params, batch {args.batch_size}, "
          f"{figures['precision']}, {figures['device']}): {figures['clips_per_s']:.2f} clips/s; "
          f"peak RSS {figures['peak_rss_gb']:.2f} GB"
          + (f", peak GPU memory {figures['peak_gpu_memory_gb']:.1f} GB"
             if figures["peak_gpu_memory_gb"] is not None else "")
          + f"; the paper's 200k x 128 schedule would take {figures['hours_for_200k_steps_x128']:.0f} h")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
