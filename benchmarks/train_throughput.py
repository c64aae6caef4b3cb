"""Training throughput of OmniSep: this project's pipeline vs. a CLIPSep-style reference loop.

(a) This project: sources from a DataLoader, mixing, STFT, log-frequency warp, targets and
    loss on the device inside the step, cached query embeddings, Query-Mixup; bf16
    autocast and a fused Adam on a GPU (fp32 on the CPU unless --precision bf16).
(b) Reference, as CLIPSep's public code does it: the STFT, warp, ground-truth masks and
    weights computed in the DataLoader workers on the CPU, fp32, and the query encoder run
    on every step (here the offline MiniLM text encoder on the class labels; ImageBind-huge
    in the real thing, which costs far more).
Both train the same model (default: paper-size) on random sources (default: 65535 samples),
same batch, same machine, same run; clips/s, peak memory and the ratio are printed.

Usage:
    python benchmarks/train_throughput.py --batch-size 4 --steps 5            # CPU
    python benchmarks/train_throughput.py --batch-size 128 --steps 50         # GPU
    python benchmarks/train_throughput.py --widths 16,32,64,128,128,128,128 --batch-size 8 \
        --n-samples 32767 --precision bf16 --skip-reference --steps 10        # small.yaml's step
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


class SourceBatches(torch.utils.data.Dataset):
    """Random sources ``[B, 2, T]`` (and, for the reference loop, everything the CPU
    computes from them: warped magnitudes, targets and weights), one batch per item."""

    def __init__(self, batch_size, n_samples, dim, reference_model=None):
        self.batch_size, self.n_samples, self.dim = batch_size, n_samples, dim
        self.reference_model = reference_model

    def __len__(self):
        return 10 ** 6

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        sources = 0.3 * torch.randn(self.batch_size, 2, self.n_samples, generator=g)
        if self.reference_model is None:
            return {"sources": sources}
        from omnisep_plugin.losses import bce_weight, ideal_binary_mask
        m = self.reference_model
        with torch.no_grad():
            mix = sources.sum(1)
            lin = m.stft(torch.cat([mix[:, None], sources], 1).flatten(0, 1)).abs()
            lin = lin.reshape(self.batch_size, 3, *lin.shape[-2:])
            warped = m.to_mask_domain(lin)
        return {"mix_mag": lin[:, :1], "target": ideal_binary_mask(warped[:, 1:], warped[:, :1]),
                "weight": bce_weight(warped[:, :1])}


def run(system, loader, steps, warmup, device, step_fn):
    it = iter(loader)
    for _ in range(warmup):
        step_fn(next(it))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step_fn(next(it))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--widths", default="64,128,256,512,512,512,512")
    parser.add_argument("--n-samples", type=int, default=65535, help="Samples per source crop.")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="(a)'s precision; auto: bf16 autocast on a GPU, fp32 on the CPU.")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    widths = [int(w) for w in args.widths.split(",")]
    n = args.n_samples
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    figures = {"device": torch.cuda.get_device_name() if device.type == "cuda"
               else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
               "batch_size": args.batch_size, "steps": args.steps, "n_samples": n,
               "precision": "bf16" if bf16 else "fp32"}

    # (a) this project
    system = OmniSepSystem(model_args={"unet_widths": widths}).to(device)
    dim = system.model.query_dim
    opt = torch.optim.Adam(system.parameters(), lr=1e-3, fused=device.type == "cuda" or None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    embs = fake_batch(args.batch_size, 8, dim, device)  # cached embeddings (only *_emb used)
    loader = torch.utils.data.DataLoader(SourceBatches(args.batch_size, n, dim), batch_size=None,
                                         num_workers=args.workers, pin_memory=device.type == "cuda")

    def ours(batch):
        sources = batch["sources"].to(device, non_blocking=True)
        b = {**embs, "sources": sources}
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = system.model.compute_loss(sources.sum(1), sources, system.queries(b))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), 1.0)
        opt.step()

    seconds = run(system, loader, args.steps, args.warmup, device, ours)
    figures["ours_clips_per_s"] = args.steps * args.batch_size / seconds
    figures["ours_peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    figures["params"] = sum(p.numel() for p in system.model.parameters())
    print(f"(a) this project ({figures['params'] / 1e6:.1f} M params, batch {args.batch_size}, "
          f"{n} samples, {figures['precision']}, {figures['device']}): "
          f"{figures['ours_clips_per_s']:.2f} clips/s")
    del loader

    if not args.skip_reference:
        from omnisep_plugin.query.offline import OfflineEncoder
        from omnisep_plugin.losses import multisrc_weighted_bce
        encoder = OfflineEncoder(device=device)
        ref = OmniSepSystem(model_args={"unet_widths": widths, "query_dim": encoder.dim}).to(device)
        ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
        cpu_model = OmniSepSystem(model_args={"unet_widths": widths[:1], "query_dim": encoder.dim}).model
        ref_loader = torch.utils.data.DataLoader(
            SourceBatches(args.batch_size, n, dim, reference_model=cpu_model), batch_size=None,
            num_workers=args.workers)
        labels = ["violin", "flute", "cello", "trumpet"]

        def reference(batch):
            q = encoder.embed_text([labels[i % 4] for i in range(2 * args.batch_size)])
            q = q.reshape(args.batch_size, 2, -1).to(device)
            ref_opt.zero_grad(set_to_none=True)
            masks = ref.model.forward_masker(batch["mix_mag"].to(device))
            logits = ref.model.apply_query(masks, q)
            loss = multisrc_weighted_bce(logits, batch["target"].to(device), batch["weight"].to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
            ref_opt.step()

        seconds = run(ref, ref_loader, args.steps, args.warmup, device, reference)
        figures["reference_clips_per_s"] = args.steps * args.batch_size / seconds
        figures["ratio"] = figures["ours_clips_per_s"] / figures["reference_clips_per_s"]
        print(f"(b) CLIPSep-style reference loop (CPU features in workers, fp32, query encoder "
              f"every step): {figures['reference_clips_per_s']:.2f} clips/s; ratio (a)/(b) "
              f"{figures['ratio']:.2f}")
    figures["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    figures["hours_for_200k_steps_x128"] = 200000 * 128 / figures["ours_clips_per_s"] / 3600
    print(f"peak RSS {figures['peak_rss_gb']:.2f} GB; the paper's 200k x 128 schedule at (a)'s "
          f"rate would take {figures['hours_for_200k_steps_x128']:.0f} h")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
