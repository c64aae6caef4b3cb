"""STFT front end and CLIPSep's log-frequency warp, all on the tensors' own device."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class STFT(nn.Module):
    """Complex STFT / iSTFT pair with a Hann window (torch.stft, centred, reflect padding).

    Args:
        n_fft: FFT size (1024 in OmniSep, 513 frequency bins).
        hop_length: hop in samples (256).
        win_length: window length in samples (1024).

    Shape:
        - :meth:`forward`: ``[batch, time]`` -> complex ``[batch, n_fft // 2 + 1, frames]``.
        - :meth:`inverse`: complex ``[..., freq, frames]`` -> ``[..., length]``.
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024):
        super().__init__()
        if not 0 < hop_length <= win_length <= n_fft:
            raise ValueError(
                f"Need 0 < hop_length <= win_length <= n_fft, got hop_length={hop_length}, "
                f"win_length={win_length}, n_fft={n_fft}")
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.stft(wav.float(), self.n_fft, self.hop_length, self.win_length,
                          window=self.window, center=True, return_complex=True)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``torch.istft`` (centred, ``length`` samples); when the hop divides ``n_fft``, the
        same sum computed as ``n_fft / hop`` shifted additions of the inverse FFT's frames
        (equal within float rounding, and much faster on the CPU for long inputs, where
        ``torch.istft``'s overlap-add costs more than the FFT)."""
        lead = spec.shape[:-2]
        spec = spec.reshape(-1, *spec.shape[-2:])
        wav = self._overlap_add(spec, length) if self.n_fft % self.hop_length == 0 else None
        if wav is None:
            wav = torch.istft(spec, self.n_fft, self.hop_length, self.win_length,
                              window=self.window, center=True, length=length)
        return wav.reshape(*lead, length)

    def _overlap_add(self, spec: torch.Tensor, length: int):
        """Inverse STFT of ``[batch, freq, frames]`` by shifted additions, or None where the
        window envelope vanishes (``torch.istft`` then raises its NOLA error)."""
        k, hop, n_frames = self.n_fft // self.hop_length, self.hop_length, spec.shape[-1]
        left = (self.n_fft - self.win_length) // 2
        window = F.pad(self.window, (left, self.n_fft - self.win_length - left))
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=-2) * window[:, None]
        chunks = frames.reshape(len(spec), k, hop, n_frames).transpose(-1, -2)
        out = frames.new_zeros(len(spec), n_frames + k - 1, hop)
        envelope = frames.new_zeros(n_frames + k - 1, hop)
        for j, w in enumerate((window ** 2).reshape(k, hop)):
            out[:, j:j + n_frames] += chunks[:, j]
            envelope[j:j + n_frames] += w
        start = self.n_fft // 2
        envelope = envelope.reshape(-1)[start:start + length]
        if envelope.numel() and envelope.min() < 1e-11:
            return None
        wav = out.reshape(len(spec), -1)[:, start:start + length] / envelope
        return F.pad(wav, (0, length - wav.shape[-1]))


def _warp_grid(n_out: int, n_frames: int, to_log: bool, device, dtype) -> torch.Tensor:
    """Sampling grid of CLIPSep's ``warpgrid`` for ``F.grid_sample`` (align_corners=True).

    ``to_log=True`` samples a linear-frequency map at log-spaced positions
    ``y = (21 ** ((v + 1) / 2) - 11) / 10`` for ``v`` on a uniform grid of ``n_out`` rows;
    ``to_log=False`` is its inverse ``y = 2 * log(10 v + 11) / log(21) - 1``.

    Returns:
        grid ``[1, n_out, n_frames, 2]`` (x = time, y = frequency, both in [-1, 1]).
    """
    v = torch.linspace(-1.0, 1.0, n_out, device=device, dtype=torch.float64)
    if to_log:
        y = (torch.pow(21.0, (v + 1) / 2) - 11) / 10
    else:
        y = torch.log(v * 10 + 11) / math.log(21.0) * 2 - 1
    x = torch.linspace(-1.0, 1.0, n_frames, device=device, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(y, x, indexing="ij")[::-1], dim=-1)
    return grid.to(dtype).unsqueeze(0)


class LogFrequencyWarp(nn.Module):
    """Resample the frequency axis between linear bins and log-spaced bins (CLIPSep).

    Args:
        n_linear: linear frequency bins (513 for n_fft 1024).
        n_log: log-spaced bins (256 in CLIPSep).

    Shape:
        - :meth:`to_log`: ``[batch, channels, n_linear, time]`` -> ``[batch, channels, n_log, time]``
        - :meth:`to_linear`: ``[batch, channels, n_log, time]`` -> ``[batch, channels, n_linear, time]``
    """

    def __init__(self, n_linear: int = 513, n_log: int = 256):
        super().__init__()
        self.n_linear, self.n_log = n_linear, n_log

    def _sample(self, x, n_out, to_log):
        grid = _warp_grid(n_out, x.shape[-1], to_log, x.device, x.dtype)
        return F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear",
                             padding_mode="border", align_corners=True)

    def to_log(self, x: torch.Tensor) -> torch.Tensor:
        return self._sample(x, self.n_log, to_log=True)

    def to_linear(self, x: torch.Tensor) -> torch.Tensor:
        return self._sample(x, self.n_linear, to_log=False)
