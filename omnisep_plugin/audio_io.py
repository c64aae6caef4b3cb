"""Reading and resampling audio: the one module everything that reads a sound file uses.

Memory follows the window, never the header: :func:`check_input_file` refuses sample
rates outside ``[MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]`` and more than ``MAX_CHANNELS``
channels before anything is allocated, and :class:`Resampler` evaluates a fixed-length
windowed-sinc filter per output sample, so its cost and memory do not depend on how the
two rates reduce (torchaudio's polyphase kernel has ``new / gcd`` rows of ``orig / gcd``
taps: 16,000 x 11,003 for 11,003 Hz, gigabytes).

The filter is torchaudio's (``sinc_interp_hann``, ``lowpass_filter_width`` 6, rolloff 0.99):
output ``n`` is ``sum_k x[k] h((k / orig - n / new) * base)`` with ``base = 0.99 min(orig,
new)``, ``h(u) = sinc(u) cos^2(pi u / 12) base / orig`` for ``|u| <= 6``, so for any rate
pair the result equals ``torchaudio.functional.resample`` to float precision (tested), only
computed in bounded blocks.
"""
import math
from pathlib import Path
from typing import Iterable, Iterator, Optional, Tuple

import numpy as np
import soundfile as sf
import torch

#: Sample rates accepted from a file header (Hz); anything else is refused as corrupt.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000
#: Most channels accepted from a file (7th-order ambisonics has 64).
MAX_CHANNELS = 64
#: Frames read per block (times the channel count: bounded by ``MAX_CHANNELS``).
BLOCK_FRAMES = 1 << 16
LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99
#: Elements of one ``[channels, outputs, taps]`` gather (16 MB of float32).
_GATHER_ELEMENTS = 1 << 22
_MAX_PHASE_LOOP = 1024

Blocks = Iterable[np.ndarray]


def check_format(sample_rate: int, channels: int, name) -> None:
    """ValueError naming ``name`` for a sample rate or channel count outside the limits."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"{name} has a sample rate of {sample_rate} Hz; supported: "
                         f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz (a corrupt header?)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"{name} has {channels} channels; supported: 1 to {MAX_CHANNELS}")


def check_input_file(path) -> sf._SoundFileInfo:
    """soundfile info of an audio file, or FileNotFoundError / ValueError saying what is
    wrong with it (missing, unreadable header, empty, absurd rate or channel count)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No audio file at {path}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"Cannot read audio file {path}: {err}") from None
    check_format(info.samplerate, info.channels, f"Audio file {path}")
    if info.frames == 0:
        raise ValueError(f"Audio file {path} is empty")
    return info


def read_audio(path, max_seconds: Optional[float] = None) -> Tuple[np.ndarray, int]:
    """Read an audio file (its first ``max_seconds`` when given) as float32
    ``[channels, time]`` and its rate.

    ValueError / FileNotFoundError naming the file when it is unusable, including NaN or
    Inf samples."""
    path = Path(path)
    info = check_input_file(path)
    frames = -1 if max_seconds is None else min(info.frames, int(max_seconds * info.samplerate))
    try:
        wav, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:  # e.g. truncated data
        raise ValueError(f"Cannot read audio file {path}: {err}") from None
    if not np.isfinite(wav).all():
        raise ValueError(f"Audio file {path} contains NaN or Inf samples")
    return wav.T, sr


def read_blocks(sf_file, block: int = BLOCK_FRAMES, mono: bool = False) -> Iterator[np.ndarray]:
    """``[channels, n]`` float32 blocks of an open ``soundfile.SoundFile`` (or ``[1, n]``
    averaged over channels with ``mono``). Raises ValueError on NaN or Inf samples."""
    while True:
        try:
            data = sf_file.read(block, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise ValueError(f"Cannot read audio file {sf_file.name}: {err}") from None
        if len(data) == 0:
            return
        if not np.isfinite(data).all():
            raise ValueError(f"{sf_file.name} contains NaN or Inf samples")
        data = data.T
        yield data.mean(0, keepdims=True) if mono else np.ascontiguousarray(data)


class Resampler:
    """Bounded-memory resampling from ``orig`` to ``new`` Hz (torchaudio's filter).

    Each output sample takes ``taps`` input samples (about ``12 orig / (0.99 min(orig,
    new))``, 36 for 44.1 -> 16 kHz, 148 for 192 -> 16 kHz), whatever the rates' greatest
    common divisor; the filter weights are tabulated once per phase when the rates share a
    short period, else computed per output sample.

    Example:
        >>> r = Resampler(48000, 16000)
        >>> y = r.resample(torch.ones(1, 4800))
        >>> y.shape, round(float(y[0, 800]), 3)
        (torch.Size([1, 1600]), 1.0)
    """

    def __init__(self, orig: int, new: int):
        orig, new = int(orig), int(new)
        for rate in (orig, new):
            if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
                raise ValueError(f"Sample rate {rate} Hz outside {MIN_SAMPLE_RATE} to "
                                 f"{MAX_SAMPLE_RATE} Hz")
        self.orig, self.new = orig, new
        self.base = min(orig, new) * ROLLOFF
        self.half = math.ceil(LOWPASS_FILTER_WIDTH * orig / self.base)  # input samples each side
        self.offsets = torch.arange(-self.half, self.half + 2)  # taps around floor(n orig / new)
        self.period = new // math.gcd(orig, new)  # the phases repeat every `period` outputs
        self._table = (self._weights(torch.arange(self.period))
                       if self.period * len(self.offsets) <= (1 << 20) else None)

    @property
    def taps(self) -> int:
        return len(self.offsets)

    def output_length(self, n_in: int) -> int:
        """``ceil(n_in * new / orig)``, torchaudio's output length."""
        return -(-n_in * self.new // self.orig)

    def _weights(self, n: torch.Tensor) -> torch.Tensor:
        """Filter weights ``[len(n), taps]`` of output samples ``n`` (int64)."""
        frac = ((n * self.orig) % self.new).double() / self.new  # position past floor(n orig/new)
        u = (self.offsets.double()[None] - frac[:, None]) * (self.base / self.orig)
        u = u.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
        window = torch.cos(u * (math.pi / LOWPASS_FILTER_WIDTH / 2)) ** 2
        t = u * math.pi
        sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, 1.0, t))
        return (sinc * window * (self.base / self.orig)).float()

    def _compute(self, x: torch.Tensor, x_start: int, n0: int, n1: int) -> Iterator[torch.Tensor]:
        """Outputs ``[n0, n1)`` in bounded pieces, from ``x`` ``[channels, L]`` holding input
        samples ``[x_start, x_start + L)``; input outside that range counts as zeros."""
        channels = x.shape[0]
        pad = self.half + 2
        xp = torch.nn.functional.pad(x, (pad, pad))
        step = max(1, _GATHER_ELEMENTS // (channels * self.taps))
        for a in range(n0, n1, step):
            b = min(n1, a + step)
            if self._table is not None and self.period <= _MAX_PHASE_LOOP:
                yield self._polyphase(xp, x_start - pad, a, b)
                continue
            n = torch.arange(a, b)
            w = self._table[n % self.period] if self._table is not None else self._weights(n)
            idx = (n * self.orig // self.new - x_start + pad)[:, None] + self.offsets[None]
            idx = idx.clamp(0, xp.shape[-1] - 1)
            yield (xp[:, idx] * w).sum(-1)

    def _polyphase(self, xp: torch.Tensor, xp_start: int, n0: int, n1: int) -> torch.Tensor:
        """Outputs ``[n0, n1)`` phase by phase: the outputs of one phase read windows of
        ``xp`` (holding input samples from ``xp_start``) a fixed stride apart, a strided
        view times one row of the weight table."""
        channels = xp.shape[0]
        out = xp.new_zeros(channels, n1 - n0)
        stride = self.orig // math.gcd(self.orig, self.new)  # input samples per period
        lo = n0 * self.orig // self.new - self.half - xp_start
        hi = (n1 - 1) * self.orig // self.new - self.half - xp_start + self.taps
        if lo < 0 or hi > xp.shape[-1]:  # reads past the ends: zeros
            xp = torch.nn.functional.pad(xp, (max(0, -lo), max(0, hi - xp.shape[-1])))
            xp_start -= max(0, -lo)
        for phase in range(self.period):
            first = n0 + (phase - n0) % self.period
            if first >= n1:
                continue
            count = -(-(n1 - first) // self.period)
            start = first * self.orig // self.new - self.half - xp_start
            windows = xp[:, start:].unfold(-1, self.taps, stride)[:, :count]
            out[:, first - n0::self.period] = windows @ self._table[phase]
        return out

    def resample(self, wav: torch.Tensor) -> torch.Tensor:
        """Resample a whole ``[..., time]`` tensor (as ``torchaudio.functional.resample``)."""
        if self.orig == self.new:
            return wav
        shape = wav.shape
        x = wav.reshape(-1, shape[-1]).float()
        pieces = list(self._compute(x, 0, 0, self.output_length(shape[-1])))
        out = torch.cat(pieces, -1) if pieces else x[:, :0]
        return out.reshape(*shape[:-1], -1)

    def stream(self, blocks: Blocks, total: int) -> Iterator[np.ndarray]:
        """Resample a stream of ``[channels, n]`` blocks holding ``total`` samples (input
        beyond the stream's end counts as zeros); yields ``output_length(total)`` samples
        in all, equal to :meth:`resample` of the whole signal."""
        if self.orig == self.new:
            yield from blocks
            return
        n_out = self.output_length(total)
        buf, buf_start, done = None, 0, 0
        for block in blocks:
            block = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
            buf = block if buf is None else torch.cat([buf, block], -1)
            available = buf_start + buf.shape[-1]  # input samples [0, available) have arrived
            # output n reads inputs up to floor(n orig / new) + half + 1 < available
            ready = available - self.half - 2
            last = min(n_out, -(-(ready + 1) * self.new // self.orig)) if ready >= 0 else 0
            for piece in self._compute(buf, buf_start, done, last):
                yield piece.numpy()
            done = max(done, last)
            keep_from = max(buf_start, done * self.orig // self.new - self.half - 1)
            buf, buf_start = buf[:, keep_from - buf_start:], keep_from
        if buf is None:
            return
        # outputs from `quiet` on read no input at all (a header longer than the data)
        available = buf_start + buf.shape[-1]
        quiet = min(n_out, max(done, -(-(available + self.half) * self.new // self.orig)))
        for piece in self._compute(buf, buf_start, done, quiet):
            yield piece.numpy()
        for a in range(quiet, n_out, BLOCK_FRAMES):
            yield np.zeros((buf.shape[0], min(BLOCK_FRAMES, n_out - a)), np.float32)

def resample(wav: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Bounded-memory ``torchaudio.functional.resample`` of ``[..., time]`` (see
    :class:`Resampler`)."""
    return Resampler(orig, new).resample(wav) if int(orig) != int(new) else wav


def resample_stream(blocks: Blocks, orig: int, new: int, total: int) -> Iterator[np.ndarray]:
    """Streamed :func:`resample` of ``[channels, n]`` blocks, ``ceil(total new / orig)``
    samples in all, equal to resampling the whole signal (to float precision)."""
    if int(orig) == int(new):
        yield from blocks
        return
    yield from Resampler(orig, new).stream(blocks, total)
