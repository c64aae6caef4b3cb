"""Function-preserving widening of a trained :class:`AudioUNet` (Net2WiderNet).

Chen, Goodfellow & Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer", ICLR
2016: a wider network starts from a trained narrower one and computes the same function.
Every new channel copies an old one (the first ``C`` channels are the old ones in order,
each further channel copies a random old one); a convolution reading a copied channel
divides that input's weights by the number of copies, so the sum it computes is unchanged.
BatchNorm statistics and affine parameters follow their channel, and the element-wise
activations and the up-sampling commute with copying, so in eval mode the wide U-Net's
output equals the narrow one's (up to float rounding). In training mode too: copies have
identical batch statistics.

Copies also get identical gradients and would stay identical forever; ``noise`` adds
Gaussian noise of ``noise`` times each weight tensor's standard deviation to break that
symmetry (the output then differs slightly: ``noise=0`` preserves it exactly).
"""
from typing import Optional, Sequence

import torch
from torch import nn

from .unet import AudioUNet, _UNetLevel


def _channel_map(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """``[new]`` old-channel indices: ``0..old-1`` in order, then random old channels."""
    extra = torch.randint(old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), extra])


def _copy_conv(old: nn.Conv2d, new: nn.Conv2d, out_map: torch.Tensor, in_map: torch.Tensor):
    """``new.weight[o, i] = old.weight[out_map[o], in_map[i]] / copies(in_map[i])``."""
    copies = torch.bincount(in_map, minlength=old.in_channels).to(old.weight.dtype)
    weight = old.weight.detach().cpu()[out_map][:, in_map] / copies[in_map].view(1, -1, 1, 1)
    new.weight.data.copy_(weight)
    if old.bias is not None:
        new.bias.data.copy_(old.bias.detach().cpu()[out_map])


def _copy_norm(old: nn.BatchNorm2d, new: nn.BatchNorm2d, out_map: torch.Tensor):
    for name in ("weight", "bias"):
        getattr(new, name).data.copy_(getattr(old, name).detach().cpu()[out_map])
    for name in ("running_mean", "running_var"):
        getattr(new, name).copy_(getattr(old, name).cpu()[out_map])
    new.num_batches_tracked.copy_(old.num_batches_tracked)


def _layers(seq: nn.Sequential, kind):
    return [m for m in seq if isinstance(m, kind)]


def _widen_level(old: _UNetLevel, new: _UNetLevel, in_map: torch.Tensor,
                 generator: torch.Generator) -> Optional[torch.Tensor]:
    """Copy one level (and its inner levels) into its wider twin.

    ``in_map`` maps the new level's input channels to the old ones. Returns the map of the
    level's output (the concatenation of its input and its up-sampled branch), or ``None``
    for the outermost level, whose output (the masks) is not widened.
    """
    old_down, new_down = _layers(old.down, nn.Conv2d)[0], _layers(new.down, nn.Conv2d)[0]
    width_map = _channel_map(old_down.out_channels, new_down.out_channels, generator)
    _copy_conv(old_down, new_down, width_map, in_map)
    for o, n in zip(_layers(old.down, nn.BatchNorm2d), _layers(new.down, nn.BatchNorm2d)):
        _copy_norm(o, n, width_map)
    up_in_map = width_map
    if old.inner is not None:
        up_in_map = _widen_level(old.inner, new.inner, width_map, generator)
    old_up, new_up = _layers(old.up, nn.Conv2d)[0], _layers(new.up, nn.Conv2d)[0]
    if old.outermost:
        out_map = torch.arange(old_up.out_channels)
    else:
        out_map = _channel_map(old_up.out_channels, new_up.out_channels, generator)
    _copy_conv(old_up, new_up, out_map, up_in_map)
    for o, n in zip(_layers(old.up, nn.BatchNorm2d), _layers(new.up, nn.BatchNorm2d)):
        _copy_norm(o, n, out_map)
    if old.outermost:
        return None
    return torch.cat([in_map, old_down.in_channels + out_map])


@torch.no_grad()
def widen_unet(unet: AudioUNet, widths: Sequence[int], noise: float = 0.0,
               seed: int = 0) -> AudioUNet:
    """A wider :class:`AudioUNet` computing the same function as ``unet``.

    Args:
        unet: the trained network (left unchanged).
        widths: the new channels per level, outermost first: as many levels as ``unet``,
            each at least the old width.
        noise: standard deviation of the symmetry-breaking noise added to every
            convolution weight, relative to that weight tensor's standard deviation.
        seed: seeds the choice of copied channels and the noise.

    Returns:
        The new network, on the CPU, in the mode (train / eval) of ``unet``.
    """
    widths = [int(w) for w in widths]
    if len(widths) != len(unet.widths):
        raise ValueError(f"widen_unet keeps the depth: {len(unet.widths)} levels, "
                         f"got {len(widths)} widths")
    if any(w < o for w, o in zip(widths, unet.widths)):
        raise ValueError(f"widen_unet can only widen: {list(unet.widths)} -> {widths}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    generator = torch.Generator().manual_seed(seed)
    wide = AudioUNet(unet.in_channels, unet.out_channels, widths)
    wide.input_norm.load_state_dict(unet.input_norm.state_dict())
    _widen_level(unet.net, wide.net, torch.arange(unet.in_channels), generator)
    if noise > 0:
        for module in wide.modules():
            if isinstance(module, nn.Conv2d):
                w = module.weight
                w.add_(torch.randn(w.shape, generator=generator) * (noise * w.std()))
    wide.to(memory_format=torch.channels_last)
    return wide.train(unet.training)
