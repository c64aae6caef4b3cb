"""Training step of this project beside CLIPSep's own step, alternating in one process.

(a) Ours: the whole training step of ``OmniSepSystem``: the mixture and source waveforms
    go in; STFT, log-frequency warp, targets, U-Net, query head and weighted BCE on the
    device (``OmniSep.compute_loss``), one query per source from the cached embeddings by
    Query-Mixup (``OmniSepSystem.queries``), backward, grad-norm clip 1.0, the system's own
    Adam and schedule (``configure_optimizers``).
(b) Reference: CLIPSep's separation-model step as its public code runs it
    (``benchmarks/clipsep_reference.py``: its U-Net, InnerProd mask head, WBCE on warped
    magnitudes, Adam, clip), on magnitudes and queries precomputed outside the step, as
    CLIPSep's DataLoader workers and ``no_grad`` CLIP encoder provide them.

Same batch, same threads, same precision, same device; the two alternate (ABAB:
``--rounds`` rounds of ``--steps`` timed steps each, after ``--warmup`` untimed ones), and
the ratio of clips/s (a)/(b) is printed with its per-round spread. Precision ``auto`` is
what ``omnisep train`` picks: bf16 on a GPU that has it or a CPU with bf16 instructions
(``training.run.cpu_has_bf16``), fp32 elsewhere.

Usage:
    python benchmarks/train_throughput.py --batch-size 8 --precision fp32 --threads 2  # CPU
    python benchmarks/train_throughput.py --batch-size 128 --steps 10 --rounds 3      # GPU
    python benchmarks/train_throughput.py --skip-reference --rounds 1 --profile       # profile
    python benchmarks/train_throughput.py --malloc default   # glibc's allocator as it comes
    python benchmarks/train_throughput.py --reference-malloc default  # each side as shipped
Writes ``benchmarks/results/train_throughput.json`` (``--out``).
"""
import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from clipsep_reference import CLIPSep, ReferenceStep, stft_batch  # noqa: E402

from omnisep_plugin.allocator import keep_freed_memory  # noqa: E402
from omnisep_plugin.training.run import cpu_has_bf16  # noqa: E402
from omnisep_plugin.training.system import OmniSepSystem  # noqa: E402


def choose_precision(setting: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``; ``auto`` and an unsupported ``bf16`` never assume bf16 support."""
    has_bf16 = (torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_bf16())
    if setting == "bf16" and not has_bf16:
        sys.exit(f"--precision bf16: this {device.type} has no bf16 support "
                 "(CPU: avx512_bf16 or amx_bf16); use fp32")
    return ("bf16" if has_bf16 else "fp32") if setting == "auto" else setting


def make_batches(n: int, batch_size: int, n_samples: int, dim: int, device) -> list:
    """``n`` different batches: sources ``[B, 2, T]`` and, per modality, cached unit-norm
    embeddings ``[B, 2, dim]`` with every modality available."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        batch = {"sources": 0.3 * torch.randn(batch_size, 2, n_samples, generator=g)}
        for kind in ("text", "image", "audio"):
            batch[f"{kind}_emb"] = torch.nn.functional.normalize(
                torch.randn(batch_size, 2, dim, generator=g), dim=-1)
            batch[f"has_{kind}"] = torch.ones(batch_size, 2, dtype=torch.bool)
        batches.append({k: v.to(device) for k, v in batch.items()})
    return batches


class OurStep:
    """One training step of :class:`OmniSepSystem` outside a Trainer (what Lightning's
    automatic optimisation runs: zero_grad, training loss, backward, clip, step, schedule)."""

    def __init__(self, system: OmniSepSystem, autocast, grad_clip: float = 1.0):
        conf = system.configure_optimizers()
        self.system, self.autocast, self.grad_clip = system, autocast, grad_clip
        self.opt, self.sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]

    def __call__(self, batch) -> torch.Tensor:
        sources = batch["sources"]
        self.opt.zero_grad(set_to_none=True)
        with self.autocast:
            loss = self.system.model.compute_loss(sources.sum(1), sources,
                                                  self.system.queries(batch))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.system.parameters(), self.grad_clip)
        self.opt.step()
        self.sched.step()
        return loss.detach()


def build_reference(widths, n_masks, batch_size, n_samples, dim, device, bf16, threads):
    """CLIPSep's step (``clipsep_reference.py``) and its batches: magnitudes from the same
    sources as ours (:func:`make_batches`), 512-d CLIP-sized queries. Returns
    ``(step(batch), batches, params)``."""
    torch.set_num_threads(threads)
    device = torch.device(device)
    batches = make_batches(2, batch_size, n_samples, dim, device)
    model = CLIPSep(n_mix=2, layers=len(widths), channels=n_masks, ngf=widths[0]).to(device)
    g = torch.Generator().manual_seed(1)
    data = [(stft_batch(b["sources"]),
             [torch.randn(batch_size, 512, generator=g).to(device) for _ in range(2)])
            for b in batches]
    ref_step = ReferenceStep(model, autocast=torch.autocast(device.type, dtype=torch.bfloat16,
                                                            enabled=bf16))
    return (lambda b: ref_step(*b)), data, sum(p.numel() for p in model.parameters())


def _reference_worker(conn, spec):
    """The reference in a fresh interpreter (glibc's default allocator): ``n`` on the pipe
    runs ``n`` timed steps and answers ``(seconds, page faults, kernel seconds)``."""
    step, data, params = build_reference(**spec)
    device = torch.device(spec["device"])
    conn.send(params)
    while True:
        n = conn.recv()
        if n is None:
            return
        conn.send(timed_with_faults(step, data, n, device))


class ReferenceProcess:
    """CLIPSep's step run as its own code runs, in a child process with glibc's default
    allocator, driven step-for-step from this process (still ABAB: one side at a time)."""

    def __init__(self, spec):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_reference_worker, args=(child, spec), daemon=True)
        self.proc.start()
        self.params = self.conn.recv()

    def run(self, n):
        self.conn.send(n)
        return self.conn.recv()

    def close(self):
        self.conn.send(None)
        self.proc.join(timeout=30)


def timed(step, batches, n_steps, device) -> float:
    """Seconds for ``n_steps`` calls of ``step`` cycling through ``batches``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(n_steps):
        step(batches[i % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed_with_faults(step, batches, n_steps, device) -> tuple:
    """:func:`timed`, with this process's minor page faults and kernel seconds meanwhile."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = timed(step, batches, n_steps, device)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return seconds, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime


def peak_gb(step, batch, device):
    """Peak GPU memory of one step in GiB (``None`` on the CPU)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step(batch)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def print_profile(name, step, batch, rows: int = 25) -> None:
    """torch.profiler's operators of one step, by self time, per input shape."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities, record_shapes=True) as prof:
        step(batch)
    print(f"profile of one step of {name}:")
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=rows, max_shapes_column_width=60))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="Timed steps per side per round.")
    parser.add_argument("--rounds", type=int, default=3, help="ABAB rounds.")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--widths", default="64,128,256,512,512,512,512")
    parser.add_argument("--n-samples", type=int, default=65535, help="Samples per source crop.")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--malloc", default="keep", choices=["keep", "default"],
                        help="keep: glibc keeps freed memory, as omnisep train does "
                             "(training.keep_freed_memory); default: glibc's own behaviour. "
                             "Process-wide: both sides get the same.")
    parser.add_argument("--reference-malloc", default="same", choices=["same", "default"],
                        help="same: the reference shares this process (and --malloc); default: "
                             "it runs in a child process with glibc's default allocator, as "
                             "CLIPSep's own code runs (still alternating one step at a time).")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile our U-Net (measured slower on the CPU: not used by omnisep "
                             "train); compile time is paid in the untimed warm-up steps.")
    parser.add_argument("--profile", action="store_true",
                        help="Also print torch.profiler's table of one step of each side.")
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = args.malloc == "keep" and keep_freed_memory()
    device = torch.device(args.device)
    precision = choose_precision(args.precision, device)
    widths = [int(w) for w in args.widths.split(",")]
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    figures = {"device": torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
               "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
               "torch": torch.__version__, "batch_size": args.batch_size, "n_samples": args.n_samples,
               "precision": precision, "threads": torch.get_num_threads(),
               "rounds": args.rounds, "steps_per_round": args.steps,
               "malloc": "keep" if kept else "default"}
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16,  # noqa: E731
                                      enabled=precision == "bf16")

    torch.manual_seed(0)
    system = OmniSepSystem(model_args={"unet_widths": widths}).to(device)
    if args.compile:
        system.model.masker = torch.compile(system.model.masker)
    ours = OurStep(system, autocast())
    batches = make_batches(2, args.batch_size, args.n_samples, system.model.query_dim, device)
    sides = {"ours": (ours, batches)}
    figures["params"] = sum(p.numel() for p in system.model.parameters())
    if not args.skip_reference:
        ngf = widths[0]
        if widths != [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (len(widths) - 3) or len(widths) < 5:
            sys.exit("the reference is CLIPSep's U-Net (widths ngf, 2 ngf, 4 ngf, 8 ngf, ...; "
                     ">= 5 levels): give such --widths or --skip-reference")
        spec = dict(widths=widths, n_masks=system.model.n_masks, batch_size=args.batch_size,
                    n_samples=args.n_samples, dim=system.model.query_dim, device=str(device),
                    bf16=precision == "bf16", threads=torch.get_num_threads())
        if args.reference_malloc == "default" and kept:
            sides["reference"] = (ReferenceProcess(spec), None)
            figures["reference_params"] = sides["reference"][0].params
        else:
            step, data, figures["reference_params"] = build_reference(**spec)
            sides["reference"] = (step, data)
        figures["reference_malloc"] = ("default" if args.reference_malloc == "default" or not kept
                                       else "keep")

    def run_side(step, data, n):
        """``(seconds, page faults, kernel seconds)`` of ``n`` steps of one side."""
        return step.run(n) if data is None else timed_with_faults(step, data, n, device)

    for name, (step, data) in sides.items():
        figures[f"{name}_warmup_s"] = run_side(step, data, args.warmup)[0]
        figures[f"{name}_peak_gpu_gb"] = None if data is None else peak_gb(step, data[0], device)
    seconds = {name: [] for name in sides}
    faults = {name: [0, 0.0] for name in sides}  # minor page faults, kernel seconds
    for _ in range(args.rounds):
        for name, (step, data) in sides.items():
            took, n_faults, kernel_s = run_side(step, data, args.steps)
            seconds[name].append(took)
            faults[name][0] += n_faults
            faults[name][1] += kernel_s
    for step, data in sides.values():
        if data is None:
            step.close()
    clips = args.steps * args.batch_size
    for name in sides:
        figures[f"{name}_clips_per_s"] = clips * args.rounds / sum(seconds[name])
        figures[f"{name}_clips_per_s_rounds"] = [round(clips / s, 3) for s in seconds[name]]
        figures[f"{name}_page_faults_per_step"] = faults[name][0] / (args.rounds * args.steps)
        figures[f"{name}_kernel_s_per_step"] = faults[name][1] / (args.rounds * args.steps)
    line = (f"batch {args.batch_size}, {args.n_samples} samples, {precision}, "
            f"{figures['device']}: (a) ours {figures['ours_clips_per_s']:.2f} clips/s")
    if "reference" in sides:
        ratios = [r / s for r, s in zip(seconds["reference"], seconds["ours"])]
        figures["ratio"] = figures["ours_clips_per_s"] / figures["reference_clips_per_s"]
        figures["ratio_rounds"] = [round(r, 3) for r in ratios]
        line += (f", (b) CLIPSep's step {figures['reference_clips_per_s']:.2f} clips/s: ratio "
                 f"{figures['ratio']:.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}, "
                 f"median {statistics.median(ratios):.2f})")
    print(line)
    print("page faults / kernel seconds per step (ours: "
          + ("glibc keeps freed memory" if kept else "glibc's default allocator")
          + (f"; reference: {figures['reference_malloc']}" if "reference" in sides else "") + "): "
          + ", ".join(f"{name} {figures[f'{name}_page_faults_per_step']:.0f} / "
                      f"{figures[f'{name}_kernel_s_per_step']:.2f} s" for name in sides))
    if args.profile:
        for name, (step, data) in sides.items():
            print_profile(name, step, data[0])
    figures["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    figures["hours_for_200k_steps_x128"] = 200000 * 128 / figures["ours_clips_per_s"] / 3600
    print(f"peak RSS {figures['peak_rss_gb']:.2f} GB; the paper's 200k x 128 schedule at (a)'s "
          f"rate would take {figures['hours_for_200k_steps_x128']:.1f} h")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
