"""Overlap-add separation of recordings of any length in bounded memory.

A recording flows as a stream of ``[channels, n]`` float32 blocks: read from the file,
resampled to the model's rate (:func:`omnisep_plugin.audio_io.resample_stream`), separated in overlapping windows
(:func:`separate_stream`), resampled back and written. Memory holds a few windows, never
the recording, so a one-hour file needs no more than a short one.

Windows: length ``window``, consecutive windows overlapping by ``overlap * window`` samples
(default 25 %), each estimate weighted by a flat-top window with raised-cosine fades whose
weights sum to exactly 1 at every sample, so the overlap-add is seamless and costs
``1 / (1 - overlap)`` of a single pass. A recording no longer than one window is separated
in a single pass, identical to ``model(wav, query)``.
"""
import math
from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from ..config import SEPARATE

Blocks = Iterable[np.ndarray]


def rechunk(blocks: Blocks, size: int) -> Iterator[np.ndarray]:
    """Re-cut a block stream into blocks of exactly ``size`` samples (the last may be shorter)."""
    pending, n = [], 0
    for b in blocks:
        pending.append(b)
        n += b.shape[-1]
        while n >= size:
            joined = np.concatenate(pending, axis=-1)
            yield joined[:, :size]
            rest = joined[:, size:]
            pending, n = ([rest] if rest.shape[-1] else []), rest.shape[-1]
    if n:
        yield np.concatenate(pending, axis=-1)



def crossfade_window(window: int, fade: int, device=None) -> torch.Tensor:
    """Flat-top window: raised-cosine rise over ``fade`` samples, 1, raised-cosine fall.

    Windows placed every ``window - fade`` samples sum to exactly 1 where they overlap.
    """
    w = torch.ones(window, device=device)
    if fade:
        t = torch.arange(fade, device=device, dtype=torch.float64)
        rise = (0.5 - 0.5 * torch.cos(torch.pi * (t + 0.5) / fade)).float()
        w[:fade] = rise
        w[window - fade:] = 1 - rise
    return w


@torch.no_grad()
def separate_stream(blocks: Blocks, total: int, model, query: torch.Tensor,
                    window: int = SEPARATE.window, batch_windows: int = 8,
                    overlap: float = SEPARATE.overlap) -> Iterator[np.ndarray]:
    """Separate a ``[channels, n]`` block stream of ``total`` samples at the model's rate.

    Args:
        query: ``[dim]`` (already composed / negated); every channel uses it.
        window: window length in samples (65536 = 4.1 s at 16 kHz).
        batch_windows: rows (windows x channels) per forward pass: memory follows
            ``batch_windows * window``, whatever the channel count.
        overlap: share of a window cross-faded with its neighbour (the model sees
            ``overlap * window`` samples of context beyond each hand-over).

    Yields:
        estimate blocks ``[channels, n]``, ``total`` samples in all.
    """
    fade = int(round(overlap * window))
    if not 0 < fade <= window // 2:
        raise ValueError(f"overlap must be in (0, 0.5], got {overlap}")
    device = next(model.parameters()).device
    query = query.to(device)
    if total <= window:
        wav = np.concatenate(list(blocks), axis=-1)
        yield _run(model, torch.from_numpy(wav), query, batch_windows).cpu().numpy()
        return
    hop = window - fade
    weight = crossfade_window(window, fade, device)
    # Padded stream: `fade` zeros, the signal, zeros; window k covers [k hop, k hop + window)
    # and the last window's flat part reaches past the signal's end.
    n_windows = max(1, math.ceil((total + 2 * fade - window) / hop) + 1)
    right = (n_windows - 1) * hop + window - fade - total
    source = rechunk(_padded(blocks, fade, right), hop)
    buf, buf_start = np.zeros((0, 0), np.float32), 0
    acc, acc_start, emitted, k = None, 0, 0, 0
    while k < n_windows:
        batch, starts = [], []
        while len(batch) < batch_windows and k < n_windows:
            start = k * hop
            while buf.shape[-1] < start + window - buf_start:
                piece = next(source, None)
                if piece is None:
                    piece = np.zeros((max(1, buf.shape[0]), hop), np.float32)
                buf = piece if buf.size == 0 else np.concatenate([buf, piece], axis=-1)
            batch.append(buf[:, start - buf_start:start - buf_start + window])
            starts.append(start)
            k += 1
            drop = (start + hop) - buf_start  # window k+1 starts at (k+1) hop
            buf, buf_start = buf[:, drop:], buf_start + drop
        channels = batch[0].shape[0]
        x = torch.from_numpy(np.stack(batch)).reshape(-1, window)  # [B * C, window]
        est = _run(model, x, query, batch_windows).reshape(len(batch), channels, window) * weight
        if acc is None:
            acc = torch.zeros(channels, 0, device=device)
        grow = starts[-1] + window - acc_start - acc.shape[-1]
        acc = torch.cat([acc, torch.zeros(channels, grow, device=device)], dim=-1)
        for s, e in zip(starts, est):
            acc[:, s - acc_start:s - acc_start + window] += e
        final = starts[-1] + hop if k < n_windows else starts[-1] + window
        done, acc, done_start = acc[:, :final - acc_start], acc[:, final - acc_start:], acc_start
        acc_start = final
        # padded position p holds signal sample p - fade
        lo = max(0, fade - done_start)
        piece = done[:, lo:].cpu().numpy()[:, :total - emitted]
        if piece.shape[-1]:
            emitted += piece.shape[-1]
            yield piece


def _run(model, wav: torch.Tensor, query: torch.Tensor, max_rows: int = 0) -> torch.Tensor:
    """``model`` on ``[rows, time]`` with one query for all -> ``[rows, time]``, at most
    ``max_rows`` rows per forward pass (0: all at once), so that memory follows the window
    and the batch, not the channel count."""
    device = query.device
    step = max_rows if max_rows > 0 else wav.shape[0]
    outs = [model(part.to(device), query.expand(part.shape[0], -1))[:, 0]
            for part in wav.split(step)]
    return torch.cat(outs) if len(outs) > 1 else outs[0]


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[-1] >= n:
        return x[:, :n]
    return np.concatenate([x, np.zeros((x.shape[0], n - x.shape[-1]), x.dtype)], axis=-1)


def _padded(blocks: Blocks, left: int, right: int) -> Iterator[np.ndarray]:
    """The block stream with ``left`` zeros before and (at least) ``right`` zeros after."""
    channels = None
    for b in blocks:
        if channels is None:
            channels = b.shape[0]
            yield np.zeros((channels, left), np.float32)
        yield b
    if channels is not None and right > 0:
        yield np.zeros((channels, right), np.float32)


def separate_array(model, wav: torch.Tensor, query: torch.Tensor,
                   window: Optional[int] = SEPARATE.window, batch_windows: int = 8,
                   overlap: float = SEPARATE.overlap) -> torch.Tensor:
    """In-memory front end of :func:`separate_stream`: ``[channels, time]`` -> same shape."""
    if window is None or wav.shape[-1] <= window:
        return _run(model, wav, query.to(next(model.parameters()).device)).cpu()
    blocks = [wav.cpu().numpy().astype(np.float32)]
    return torch.from_numpy(np.concatenate(
        list(separate_stream(blocks, wav.shape[-1], model, query, window, batch_windows,
                             overlap)), -1))
