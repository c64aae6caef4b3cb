"""The audio U-Net of CLIPSep / Sound-of-Pixels, configurable in depth, widths and outputs.

CLIPSep's ``UNet7`` is a pix2pix-style U-Net: every level halves the frequency and time
axes with a 4x4 stride-2 convolution (LeakyReLU 0.2 before it, BatchNorm after it except at
the outermost level) and doubles them back with ReLU, bilinear up-sampling and a 3x3
convolution (BatchNorm after it except at the outermost level); skip connections
concatenate each level's input with its output. The input goes through BatchNorm first.

The network runs in channels-last memory format (weights and activations), where oneDNN's
convolutions and the bilinear up-sampling are faster on the CPU (see docs/benchmarks.md);
the maths is the same as in the default format.
"""
from typing import Sequence

import torch
from torch import nn

_ARCHITECTURES = {
    # CLIPSep's UNet7: ngf = 64, widths 64 -> 128 -> 256 -> 512 -> 512 -> 512 -> 512.
    "clipsep7": dict(widths=(64, 128, 256, 512, 512, 512, 512)),
    # Narrower variant for CPU training (same depth, 1/4 of the channels).
    "clipsep7_small": dict(widths=(16, 32, 64, 128, 128, 128, 128)),
    # Test-size network.
    "tiny": dict(widths=(4, 8, 8)),
}


class _DenseGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient channels-last contiguous.

    The gradient of a level's up-sampling branch is a channel slice of the gradient of the
    ``cat`` that follows it; BatchNorm's CPU backward on such a strided slice in channels-last
    format is several times slower than on a dense tensor (one copy is cheaper).
    """

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous(memory_format=torch.channels_last)


def default_architecture(name: str) -> dict:
    """U-Net keyword arguments of a named preset (``clipsep7``, ``clipsep7_small``, ``tiny``)."""
    if name not in _ARCHITECTURES:
        raise ValueError(f"Unknown U-Net architecture {name!r}; known: {sorted(_ARCHITECTURES)}")
    return dict(_ARCHITECTURES[name])


class _UNetLevel(nn.Module):
    """One level of the U-Net: down-sample, run the inner levels, up-sample, concatenate.

    Args:
        in_channels: channels entering this level.
        width: channels after this level's down-sampling convolution.
        out_channels: channels produced by this level's up-sampling convolution.
        inner: the inner levels (``None`` at the innermost level).
        inner_out_channels: channels returned by ``inner`` (input plus output channels of it).
        outermost: outermost level (no activation before the down conv, no norms, no skip).
    """

    def __init__(self, in_channels, width, out_channels, inner=None, inner_out_channels=None,
                 outermost=False):
        super().__init__()
        innermost = inner is None
        down = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(nn.Conv2d(in_channels, width, kernel_size=4, stride=2, padding=1, bias=False))
        if not (outermost or innermost):
            down.append(nn.BatchNorm2d(width))
        self.down = nn.Sequential(*down)
        self.inner = inner
        up_in = width if innermost else inner_out_channels
        up = [
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(up_in, out_channels, kernel_size=3, padding=1, bias=outermost),
        ]
        if not outermost:
            up.append(nn.BatchNorm2d(out_channels))
        self.up = nn.Sequential(*up)
        self.outermost = outermost

    def forward(self, x):
        y = self.down(x)
        if self.inner is not None:
            y = self.inner(y)
        y = self.up(y)
        if self.outermost:
            return y
        if self.training and y.requires_grad:  # not in eval mode (tracing, export, inference)
            y = _DenseGrad.apply(y)
        return torch.cat([x, y], dim=1)


class AudioUNet(nn.Module):
    """CLIPSep's audio U-Net mapping a log-magnitude spectrogram to k intermediate masks.

    Args:
        in_channels: input channels (1 for a mono magnitude spectrogram).
        out_channels: number k of intermediate masks (32 in OmniSep).
        widths: channels after each down-sampling level, outermost first; its length is the
            depth (7 in CLIPSep: 64, 128, 256, 512, 512, 512, 512).

    Shape:
        - input: ``[batch, in_channels, freq, time]`` with freq and time multiples of
          ``2 ** len(widths)`` (see :attr:`size_multiple`).
        - output: ``[batch, out_channels, freq, time]`` (no activation).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 32,
                 widths: Sequence[int] = _ARCHITECTURES["clipsep7"]["widths"]):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 1 or min(widths) < 1:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"in_channels and out_channels must be positive, got {in_channels}, {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.widths = widths
        self.input_norm = nn.BatchNorm2d(in_channels)
        # Build from the innermost level outwards. Level i (0 = outermost) receives
        # widths[i-1] channels and gives back widths[i-1] (its up conv) + widths[i-1] (skip).
        level, level_out = None, None
        for i in range(len(widths) - 1, 0, -1):
            level = _UNetLevel(widths[i - 1], widths[i], widths[i - 1], inner=level,
                               inner_out_channels=level_out)
            level_out = 2 * widths[i - 1]
        self.net = _UNetLevel(in_channels, widths[0], out_channels, inner=level,
                              inner_out_channels=level_out if level is not None else None,
                              outermost=True)
        self.to(memory_format=torch.channels_last)

    @property
    def size_multiple(self) -> int:
        """Frequency and time sizes must be multiples of this (``2 ** depth``)."""
        return 2 ** len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.size_multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(
                f"AudioUNet needs freq and time multiples of {m}, got {tuple(x.shape[-2:])}")
        return self.net(self.input_norm(x.contiguous(memory_format=torch.channels_last)))

    def get_config(self) -> dict:
        """Plain-typed arguments that rebuild this module."""
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    widths=list(self.widths))
