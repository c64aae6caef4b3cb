"""CLIPSep's separation-model training step, restated from its public code for benchmarks.

A faithful copy of what one step of ``clipsep/train.py`` runs on the separation model, with
the query embeddings precomputed (CLIPSep encodes them with CLIP under ``no_grad`` inside
the loop; the STFT magnitudes come from its DataLoader workers, ``clipsep/dataset.py``):

- ``clipsep/clipsep.py`` ``UNetBlock`` / ``UNet`` (ngf 64, ``num_downs`` 7, in-place
  LeakyReLU(0.2) / ReLU, bilinear up-sampling, BatchNorm), ``InnerProd`` (``bmm`` of the
  scaled query with the k = 32 feature maps, plus a bias), ``CLIPSep.forward``: the
  ``frame_net`` Linear(512, 32) + sigmoid on each query, ``+ 1e-10``, the log-frequency
  ``grid_sample`` of the mixture and of every source magnitude (``utils.warpgrid``,
  rebuilt in numpy and copied to the device each step), the weight
  ``clamp(log1p(|X|), 1e-3, 10)``, binary targets ``|S_n| > 0.5 |X|``, ``log(|X|)``, the
  U-Net, the mask head per source, sigmoid and ``F.binary_cross_entropy(..., weight)``
  averaged over the sources; ``init_weights``.
- ``clipsep/train.py``: ``optimizer.zero_grad()``, forward, ``loss.backward()``,
  ``clip_grad_norm_(model.parameters(), grad_norm_clip)``, ``optimizer.step()`` (Adam) and
  ``scheduler.step()`` (LambdaLR).

Source: https://github.com/sony/CLIPSep (MIT licence, Sony Group Corporation), commit
22b6f91. Only the code paths of the default CLIPSep model (binary mask, weighted loss, log
frequency, no ``drop_closest``) are kept. ``autocast`` (an optional ``torch.autocast``
context, with the BCE kept in fp32 as autocast requires) is the only addition, for the
bf16 GPU figure.
"""
import contextlib
from typing import Dict, List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def init_weights(net):
    classname = net.__class__.__name__
    if classname.find("Conv") != -1:
        net.weight.data.normal_(0.0, 0.001)
    elif classname.find("BatchNorm") != -1:
        net.weight.data.normal_(1.0, 0.02)
        net.bias.data.fill_(0)
    elif classname.find("Linear") != -1:
        net.weight.data.normal_(0.0, 0.0001)


def warpgrid(bs, HO, WO, warp=True):
    x = np.linspace(-1, 1, WO)
    y = np.linspace(-1, 1, HO)
    xv, yv = np.meshgrid(x, y)
    grid = np.zeros((bs, HO, WO, 2))
    grid_x = xv
    if warp:
        grid_y = (np.power(21, (yv + 1) / 2) - 11) / 10
    else:
        grid_y = np.log(yv * 10 + 11) / np.log(21) * 2 - 1
    grid[:, :, :, 0] = grid_x
    grid[:, :, :, 1] = grid_y
    return grid.astype(np.float32)


class UNetBlock(nn.Module):
    """``clipsep.UNetBlock`` (no dropout, no ``noskip``)."""

    def __init__(self, outer_nc, inner_input_nc, input_nc=None, submodule=None,
                 outermost=False, innermost=False):
        super().__init__()
        self.outermost = outermost
        if input_nc is None:
            input_nc = outer_nc
        inner_output_nc = inner_input_nc if innermost else 2 * inner_input_nc
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = nn.BatchNorm2d(inner_input_nc)
        uprelu = nn.ReLU(True)
        upnorm = nn.BatchNorm2d(outer_nc)
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        downconv = nn.Conv2d(input_nc, inner_input_nc, kernel_size=4, stride=2, padding=1,
                             bias=False)
        if outermost:
            upconv = nn.Conv2d(inner_output_nc, outer_nc, kernel_size=3, padding=1)
            model = [downconv, submodule, uprelu, upsample, upconv]
        elif innermost:
            upconv = nn.Conv2d(inner_output_nc, outer_nc, kernel_size=3, padding=1, bias=False)
            model = [downrelu, downconv, uprelu, upsample, upconv, upnorm]
        else:
            upconv = nn.Conv2d(inner_output_nc, outer_nc, kernel_size=3, padding=1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upsample, upconv, upnorm]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UNet(nn.Module):
    """``clipsep.UNet`` (ngf 64)."""

    def __init__(self, in_dim=1, out_dim=64, num_downs=5, ngf=64):
        super().__init__()
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block)
        block = UNetBlock(ngf * 4, ngf * 8, submodule=block)
        block = UNetBlock(ngf * 2, ngf * 4, submodule=block)
        block = UNetBlock(ngf, ngf * 2, submodule=block)
        block = UNetBlock(out_dim, ngf, input_nc=in_dim, submodule=block, outermost=True)
        self.bn0 = nn.BatchNorm2d(in_dim)
        self.unet_block = block

    def forward(self, x):
        return self.unet_block(self.bn0(x))


class InnerProd(nn.Module):
    """``clipsep.InnerProd``: ``z = (q * scale) . feat_sound + bias`` per bin."""

    def __init__(self, fc_dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(fc_dim))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, feat_img, feat_sound):
        sound_size = feat_sound.size()
        B, C = sound_size[0], sound_size[1]
        feat_img = feat_img.view(B, 1, C)
        z = torch.bmm(feat_img * self.scale, feat_sound.view(B, C, -1)).view(
            B, 1, *sound_size[2:])
        return z + self.bias


class CLIPSep(nn.Module):
    """``clipsep.CLIPSep`` with its defaults (binary mask, weighted loss, log frequency);
    ``ngf`` (CLIPSep: 64, not an argument there) only shrinks it for the tiny smoke test."""

    def __init__(self, n_mix=2, layers=7, channels=32, emb_dim=512, ngf=64):
        super().__init__()
        self.n_mix = n_mix
        self.sound_net = UNet(in_dim=1, out_dim=channels, num_downs=layers, ngf=ngf)
        self.frame_net = nn.Linear(emb_dim, channels)
        self.synth_net = InnerProd(fc_dim=channels)
        self.sound_net.apply(init_weights)
        self.frame_net.apply(init_weights)
        self.synth_net.apply(init_weights)

    def forward(self, batch, img_emb):
        N = self.n_mix
        mag_mix = batch["mag_mix"]
        mags = batch["mags"]
        feat_frames = [torch.sigmoid(self.frame_net(img_emb[n])) for n in range(N)]
        mag_mix = mag_mix + 1e-10
        B = mag_mix.size(0)
        T = mag_mix.size(3)
        grid_warp = torch.from_numpy(warpgrid(B, 256, T, warp=True)).to(mag_mix.device)
        mag_mix = F.grid_sample(mag_mix, grid_warp, align_corners=True)
        for n in range(N):
            mags[n] = F.grid_sample(mags[n], grid_warp, align_corners=True)
        weight = torch.clamp(torch.log1p(mag_mix), 1e-3, 10)
        gt_masks = [(mags[n] > 0.5 * mag_mix).float() for n in range(N)]
        log_mag_mix = torch.log(mag_mix).detach()
        feat_sound = self.sound_net(log_mag_mix)
        pred_masks = [torch.sigmoid(self.synth_net(feat_frames[n], feat_sound))
                      for n in range(N)]
        with torch.autocast(mag_mix.device.type, enabled=False):  # BCE refuses autocast
            return torch.mean(torch.stack([
                F.binary_cross_entropy(pred_masks[n].float(), gt_masks[n], weight)
                for n in range(N)]))


def stft_batch(sources: torch.Tensor, n_fft: int = 1024, hop: int = 256) -> Dict[str, object]:
    """What CLIPSep's dataset hands the step: ``mag_mix [B, 1, 513, T]`` and ``mags``, a list
    of ``n_mix`` tensors ``[B, 1, 513, T]``, from sources ``[B, n_mix, samples]`` (centred
    Hann STFT, as ``librosa.stft`` in ``clipsep/dataset.py``; computed outside the step)."""
    b, n, length = sources.shape
    window = torch.hann_window(n_fft, device=sources.device)
    mags = torch.stft(torch.cat([sources.sum(1, keepdim=True), sources], 1).reshape(-1, length),
                      n_fft, hop, window=window, return_complex=True).abs()
    mags = mags.reshape(b, 1 + n, 1, *mags.shape[-2:])
    return {"mag_mix": mags[:, 0], "mags": [mags[:, i + 1] for i in range(n)]}


class ReferenceStep:
    """One CLIPSep training step (``clipsep/train.py``) on precomputed magnitudes and
    queries: zero_grad, forward, backward, grad-norm clip, Adam, LambdaLR.

    Args:
        model: a :class:`CLIPSep` on its device; lr, grad_clip: ``--lr`` / ``--grad_norm_clip``.
        autocast: context for the forward pass (``None``: fp32, as CLIPSep runs).
    """

    def __init__(self, model: CLIPSep, lr: float = 1e-3, grad_clip: float = 1.0,
                 autocast=None):
        self.model, self.grad_clip = model, grad_clip
        self.optimizer = torch.optim.Adam(model.parameters(), lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        self.autocast = autocast or contextlib.nullcontext()

    def __call__(self, batch: Dict[str, object], img_emb: List[torch.Tensor]) -> float:
        batch = {"mag_mix": batch["mag_mix"], "mags": list(batch["mags"])}  # forward edits it
        self.optimizer.zero_grad()
        with self.autocast:
            loss = self.model(batch, img_emb).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()
