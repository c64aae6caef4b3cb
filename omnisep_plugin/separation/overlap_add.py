"""Overlap-add separation of recordings of any length in bounded memory.

A recording flows as a stream of ``[channels, n]`` float32 blocks: read from the file,
resampled to the model's rate (:func:`omnisep_plugin.audio_io.resample_stream`), separated in overlapping windows
(:func:`separate_stream`), resampled back and written. Memory holds a few windows, never
the recording, so a one-hour file needs no more than a short one.

Windows: length ``window`` (default 131071 samples, 512 STFT frames: a whole number of
U-Net frames, so no window pays for padding), consecutive windows overlapping by
``overlap * window`` samples (default 12.5 %, 1 s), each estimate weighted by a flat-top
window with raised-cosine fades whose weights sum to exactly 1 at every sample, so the
overlap-add is seamless and costs ``1 / (1 - overlap)`` of a single pass. A recording no
longer than one window is separated in a single pass, equal to ``model(wav, query)``
(within float rounding: the query head is folded, :class:`~.backends.MaskNet`).
"""
import math
from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from ..config import SEPARATE
from .backends import as_separator

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


def separate_stream(blocks: Blocks, total: Optional[int], model, query: torch.Tensor,
                    window: int = SEPARATE.window, batch_windows: int = 1,
                    overlap: float = SEPARATE.overlap,
                    residual: bool = False) -> Iterator[np.ndarray]:
    """Separate a stream of ``[channels, n]`` blocks at the model's rate, of any length.

    The total length need not be known: ``blocks`` may be a live source (a microphone, a
    socket) that ends whenever it ends; windows are placed as samples arrive and the end is
    handled when the iterator stops. Latency: a sample's estimate is yielded once every
    window covering it has run, at most ``window`` samples after it arrived (plus one
    forward pass); a stream that ends within ``window`` samples is separated in one pass
    when it ends. The output does not depend on how the input is cut into blocks.

    Args:
        blocks: ``[channels, n]`` float32 blocks (any sizes; the same channel count).
        total: the stream's length in samples if known (checked), else None.
        model: an OmniSep, or a :class:`~.backends.BackendSeparator`.
        query: ``[dim]`` (one estimate) or ``[n_queries, dim]`` (one estimate per query from
            the same U-Net pass); already composed / negated; every channel uses it.
        window: window length in samples (``SEPARATE.window``: 512 STFT frames at hop 256).
        batch_windows: rows (windows x channels) per forward pass: memory follows
            ``batch_windows * window``, whatever the channel count.
        overlap: share of a window cross-faded with its neighbour (the model sees
            ``overlap * window`` samples of context beyond each hand-over).
        residual: yield everything but the query instead (the mixture minus the estimate,
            which is the complementary mask ``1 - M`` applied to the mixture's STFT since the
            inverse STFT is linear), so that estimate + residual = mixture.

    Yields:
        blocks ``[channels, n]`` (``[n_queries, channels, n]`` for a 2-D query) that add up
        to the stream's length.
    """
    fade = int(round(overlap * window))
    if not 0 < fade <= window // 2:
        raise ValueError(f"overlap must be in (0, 0.5], got {overlap}")
    model = as_separator(model)
    multi = query.dim() == 2
    queries = query.reshape(-1, query.shape[-1]).to(next(model.parameters()).device)
    emitted = 0
    for piece in _stream(iter(blocks), model, queries, window, fade, batch_windows, residual):
        emitted += piece.shape[-1]
        if total is not None and emitted > total:
            raise ValueError(f"The stream is longer than the {total} samples announced")
        yield piece if multi else piece[0]
    if total is not None and emitted != total:
        raise ValueError(f"The stream has {emitted} samples, {total} were announced")


@torch.inference_mode()
def _stream(source: Iterator[np.ndarray], model, queries: torch.Tensor, window: int, fade: int,
            batch_windows: int, residual: bool) -> Iterator[np.ndarray]:
    """:func:`separate_stream`'s work: yields ``[n_queries, channels, n]`` blocks."""
    head, seen = [], 0
    for b in source:
        head.append(b)
        seen += b.shape[-1]
        if seen > window:
            break
    else:  # the whole stream fits in one window: one pass
        if seen:
            wav = torch.from_numpy(np.concatenate(head, axis=-1))
            yield _run(model, wav, queries, batch_windows, residual).transpose(0, 1).cpu().numpy()
        return
    hop = window - fade
    device = queries.device
    weight = crossfade_window(window, fade, device)
    channels = head[0].shape[0]
    # Padded stream: `fade` zeros, the signal, zeros; window k covers [k hop, k hop + window);
    # once the signal's end is known the last window's flat part reaches past it.
    buf = np.concatenate([np.zeros((channels, fade), np.float32)] + head, axis=-1)
    buf_start, n_windows, k = 0, None, 0
    acc, acc_start, emitted = torch.zeros(len(queries), channels, 0, device=device), 0, 0
    while n_windows is None or k < n_windows:
        batch, starts = [], []
        while len(batch) < batch_windows and (n_windows is None or k < n_windows):
            start = k * hop
            need = start + window - buf_start
            while buf.shape[-1] < need:
                piece = next(source, None) if n_windows is None else None
                if piece is None and n_windows is None:  # the end: now the length is known
                    n_windows = max(1, math.ceil((seen + 2 * fade - window) / hop) + 1)
                if piece is None:
                    piece = np.zeros((channels, need - buf.shape[-1]), np.float32)
                else:
                    seen += piece.shape[-1]
                buf = np.concatenate([buf, piece], axis=-1)
            batch.append(buf[:, start - buf_start:start - buf_start + window])
            starts.append(start)
            k += 1
            drop = (start + hop) - buf_start  # window k+1 starts at (k+1) hop
            buf, buf_start = buf[:, drop:], buf_start + drop
        x = torch.from_numpy(np.stack(batch)).reshape(-1, window)  # [B * C, window]
        est = _run(model, x, queries, batch_windows, residual)  # [B * C, Q, window]
        est = est.reshape(len(batch), channels, len(queries), window).transpose(1, 2) * weight
        grow = starts[-1] + window - acc_start - acc.shape[-1]
        acc = torch.cat([acc, acc.new_zeros(len(queries), channels, grow)], dim=-1)
        for s, e in zip(starts, est):
            acc[..., s - acc_start:s - acc_start + window] += e
        last = n_windows is not None and k >= n_windows
        final = starts[-1] + window if last else starts[-1] + hop
        done, acc, done_start = acc[..., :final - acc_start], acc[..., final - acc_start:], acc_start
        acc_start = final
        # padded position p holds signal sample p - fade
        lo = max(0, fade - done_start)
        piece = done[..., lo:].cpu().numpy()[..., :seen - emitted if last else None]
        if piece.shape[-1]:
            emitted += piece.shape[-1]
            yield piece


def _run(model, wav: torch.Tensor, queries: torch.Tensor, max_rows: int = 0,
         residual: bool = False) -> torch.Tensor:
    """``model`` on ``[rows, time]`` with the same ``[n_queries, dim]`` for every row ->
    ``[rows, n_queries, time]`` (``wav`` minus it with ``residual``), at most ``max_rows``
    rows per forward pass (0: all at once), so that memory follows the window and the
    batch, not the channel count."""
    device = queries.device
    step = max_rows if max_rows > 0 else wav.shape[0]
    outs = []
    for part in wav.split(step):
        part = part.to(device)
        est = model(part, queries.expand(part.shape[0], -1, -1))
        outs.append(part[:, None] - est if residual else est)
    return torch.cat(outs) if len(outs) > 1 else outs[0]


def separate_array(model, wav: torch.Tensor, query: torch.Tensor,
                   window: Optional[int] = SEPARATE.window, batch_windows: int = 1,
                   overlap: float = SEPARATE.overlap, residual: bool = False) -> torch.Tensor:
    """In-memory front end of :func:`separate_stream`: ``[channels, time]`` -> same shape
    (``[n_queries, channels, time]`` for a ``[n_queries, dim]`` query); ``window=None``:
    one pass."""
    blocks = [wav.detach().cpu().numpy().astype(np.float32)]
    return torch.from_numpy(np.concatenate(list(separate_stream(
        blocks, wav.shape[-1], model, query, window or wav.shape[-1], batch_windows, overlap,
        residual)), -1))
