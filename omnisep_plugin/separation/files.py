"""Files in, files out: the separator behind ``omnisep separate``.

:func:`separate_file` streams a recording of any length, rate and channel count through the
model (:mod:`~omnisep_plugin.separation.overlap_add`) and writes the estimate;
:func:`plan_outputs` names every output (``<name>_est1.wav``, ``.json``, ``.png``) and
refuses, before any work, an output that would overwrite an input (even with ``force``), an
existing file (without ``force``), a name too long for the file system, or a folder that
cannot be written.
"""
import contextlib
import errno
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import soundfile as sf
import torch

from ..audio_io import check_input_file, read_blocks, resample_stream
from ..config import SEPARATE
from ..utils import NAME_MAX, atomic_write
from .overlap_add import separate_stream

OUTPUT_KINDS = ("wav", "json", "png")
_ZERO_BLOCK = 1 << 16


def write_error(target, err: Exception) -> OSError:
    """An OSError for a failed write of ``target``: ENOSPC when the disk is full
    (libsndfile reports a full disk as a bare system error)."""
    if isinstance(err, OSError):
        return err
    try:
        full = shutil.disk_usage(Path(target).parent).free < (1 << 20)
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
    return OSError(errno.EIO, f"Cannot write {target} ({err or type(err).__name__})")


class _WavWriter:
    """A 32-bit float WAV writer whose write errors (a full disk) are OSErrors naming the file."""

    def __init__(self, target, sample_rate: int, channels: int):
        self.target = target
        try:
            self.file = sf.SoundFile(str(target), "w", samplerate=sample_rate, channels=channels,
                                     format="WAV", subtype="FLOAT")
        except (sf.LibsndfileError, OSError) as err:
            raise write_error(target, err) from None

    def write(self, data: np.ndarray) -> None:
        try:
            self.file.write(data)
        except (sf.LibsndfileError, OSError) as err:
            raise write_error(self.target, err) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.file.close()
        except (sf.LibsndfileError, OSError) as err:
            if exc[0] is None:
                raise write_error(self.target, err) from None


def separate_file(model, path: Path, query: torch.Tensor, out_path, mono: bool = False,
                  window: int = SEPARATE.window, batch_windows: Optional[int] = None,
                  overlap: float = SEPARATE.overlap, progress=None, atomic: bool = True,
                  residual: bool = False) -> dict:
    """Stream ``path`` through ``model`` and write the estimate to ``out_path``.

    Other sample rates are resampled to the model's and back (bounded-memory resampler);
    channels are separated one by one (or averaged first with ``mono``); the estimate has
    the input's rate, length and channel count (1 with ``mono``), as 32-bit float WAV.
    ``query`` is ``[dim]``, or ``[n_queries, dim]`` with ``out_path`` a list of as many
    paths: one estimate per query from one U-Net pass per window. ``residual`` writes
    everything but the query (mixture minus estimate). ``progress`` is called with the
    number of input samples consumed. ``batch_windows`` (rows per forward pass) defaults
    to 8 on a GPU and 1 on the CPU. With ``atomic`` the files are written under temporary
    names and renamed (pass False when the paths are already staged temporary names).
    Returns facts for the sidecar.
    """
    if batch_windows is None:
        batch_windows = 8 if next(model.parameters()).is_cuda else 1
    if batch_windows < 1:
        raise ValueError(f"batch_windows must be at least 1, got {batch_windows}")
    targets = [out_path] if query.dim() == 1 else list(out_path)
    queries = query.reshape(-1, query.shape[-1])
    if len(targets) != len(queries):
        raise ValueError(f"{len(queries)} queries but {len(targets)} output paths")
    path = Path(path)
    info = check_input_file(path)
    sr, model_sr, frames = info.samplerate, int(model.sample_rate), info.frames
    total = math.ceil(frames * model_sr / sr)
    peak = [0.0]
    start = time.perf_counter()

    def watched(blocks):
        for b in blocks:
            peak[0] = max(peak[0], float(np.abs(b).max()))
            if progress is not None:
                progress(b.shape[-1])
            yield b

    def write(names):
        with sf.SoundFile(str(path)) as f, contextlib.ExitStack() as stack:
            channels = 1 if mono else f.channels
            blocks = resample_stream(watched(read_blocks(f, mono=mono)), sr, model_sr, frames)
            est = separate_stream(blocks, total, model, queries, window, batch_windows, overlap,
                                  residual)  # [n_queries, channels, n] blocks
            est = resample_stream((e.reshape(-1, e.shape[-1]) for e in est), model_sr, sr, total)
            outs = [stack.enter_context(_WavWriter(n, sr, channels)) for n in names]
            written = 0
            for block in est:
                block = block[:, :frames - written].reshape(len(outs), channels, -1)
                for out, stem in zip(outs, block):
                    out.write(stem.T)
                written += block.shape[-1]
            while written < frames:  # a short resampled tail: pad in bounded blocks
                n = min(_ZERO_BLOCK, frames - written)
                for out in outs:
                    out.write(np.zeros((n, channels), np.float32))
                written += n
        return channels

    if atomic:
        with contextlib.ExitStack() as stack:
            channels = write([stack.enter_context(atomic_write(t)) for t in targets])
    else:
        channels = write([str(t) for t in targets])
    if peak[0] == 0.0:
        logging.warning("%s is all zeros: the estimate is silent too", path)
    return {"input": str(path), "output": str(out_path) if query.dim() == 1 else
            [str(t) for t in targets], "sample_rate": sr, "channels": channels,
            "duration_s": frames / sr, "silent_input": peak[0] == 0.0, "residual": residual,
            "seconds": time.perf_counter() - start, "window": window, "overlap": overlap}


def write_sidecar(path: Path, record: dict, atomic: bool = True) -> None:
    """The JSON sidecar of one estimate (``atomic``: temporary name, then renamed)."""
    text = json.dumps(record, indent=1)
    if not atomic:
        Path(path).write_text(text)
        return
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)


def plot_file_spectrograms(mix_path: Path, est_path: Path, png_path: Path,
                           max_seconds: float = 30.0, atomic: bool = True) -> None:
    """PNG of mixture / estimate spectrograms (first channel, first ``max_seconds``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for ax, (title, path) in zip(axes, (("mixture", mix_path), ("estimate", est_path))):
        with sf.SoundFile(str(path)) as f:
            wav = f.read(int(max_seconds * f.samplerate), dtype="float32", always_2d=True)[:, 0]
            sr = f.samplerate
        ax.specgram(wav, NFFT=1024, Fs=sr, noverlap=768, cmap="magma")
        ax.set_title(f"{title}: {Path(path).name}", fontsize=9)
        ax.set_ylabel("Hz")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    try:
        if atomic:
            with atomic_write(png_path) as tmp:
                fig.savefig(tmp, dpi=90, format="png")
        else:
            fig.savefig(str(png_path), dpi=90, format="png")
    finally:
        plt.close(fig)


def output_paths(mix: Path, out_dir: Path, stem: str = "est1") -> Dict[str, Path]:
    """``<out_dir>/<mix stem>_<stem>.{wav,json,png}`` (``est1``, ``est2``... one per query;
    ``residual`` for everything but the query)."""
    base = Path(out_dir) / f"{Path(mix).stem}_{stem}"
    return {kind: base.with_name(f"{base.name}.{kind}") for kind in OUTPUT_KINDS}


def unique_stems(paths: List[Path]) -> None:
    """ValueError when two inputs share a name (their outputs would collide)."""
    seen = {}
    for p in paths:
        if p.stem in seen:
            raise ValueError(f"Two inputs share the name {p.stem!r} ({seen[p.stem]}, {p}): "
                             "their outputs would collide")
        seen[p.stem] = p


def check_output_dir(out: Path) -> None:
    """ValueError unless ``out`` is (or can be created as) a writable folder."""
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise ValueError(f"Output directory {out} is a dangling symbolic link")
    if out.exists() and not out.is_dir():
        raise ValueError(f"Output directory {out} is not writable (it is a file)")
    probe = out
    while not probe.exists():
        if probe.is_symlink():
            raise ValueError(f"Output directory {out} is not writable ({probe} is a dangling "
                             "symbolic link)")
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"Output directory {out} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.lexists(a) and os.path.lexists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def plan_outputs(inputs: List[Path], out_dir: Path, kinds: Iterable[str] = ("wav", "json"),
                 force: bool = False, protected: Iterable[Path] = (),
                 stems: Sequence[str] = ("est1",)) -> List[List[Dict[str, Path]]]:
    """The output files of every input (one ``{kind: path}`` per stem name, see
    :func:`output_paths`), checked before any work is done.

    Refused (ValueError naming the file): an output that is one of ``inputs`` or
    ``protected`` (the query files, the model...) even with ``force``; an existing output
    without ``force``; an existing output that is not a file; a name longer than the file
    system allows; two inputs with the same name; an output folder that cannot be written.
    """
    inputs = [Path(p) for p in inputs]
    unique_stems(inputs)
    check_output_dir(out_dir)
    kinds = list(kinds)
    guarded = inputs + [Path(p) for p in protected if p is not None]
    plans = []
    for mix in inputs:
        plan = [{k: v for k, v in output_paths(mix, out_dir, stem).items() if k in kinds}
                for stem in stems]
        for target in (t for stem in plan for t in stem.values()):
            if len(target.name.encode()) > NAME_MAX:
                raise ValueError(f"The output name for {mix} would be {len(target.name.encode())} "
                                 f"bytes long (the file system allows {NAME_MAX}); rename the input")
            for other in guarded:
                if _same_file(target, other):
                    raise ValueError(f"Refusing to write {target}: it is an input ({other}); "
                                     "choose another --out")
            if os.path.lexists(target):
                if not force:
                    raise ValueError(f"{target} exists; pass --force to overwrite")
                if target.is_dir() or (target.exists() and not target.is_file()):
                    raise ValueError(f"{target} exists and is not a file")
        plans.append(plan)
    return plans
