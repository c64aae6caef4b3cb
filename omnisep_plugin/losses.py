"""Training targets and the weighted binary cross-entropy of OmniSep (eq. 3, CLIPSep weights).

The paper's target is the binary mask (:func:`ideal_binary_mask`); ``optim.mask_target:
ratio`` trains against the magnitude ratio instead (:func:`ratio_mask`), whose
cross-entropy optimum is the expected ratio rather than the chance that the source
dominates a bin. :func:`present_source_neg_snr` is an optional waveform term
(``optim.wave_loss_weight``) on the separated signals themselves."""
import torch
import torch.nn.functional as F


def ideal_binary_mask(source_mag: torch.Tensor, mix_mag: torch.Tensor,
                      threshold: float = 0.5) -> torch.Tensor:
    """Binary ground-truth mask: 1 where the source dominates the bin.

    ``mask = [|S| > threshold * |X|]`` (CLIPSep: threshold 0.5).

    Args:
        source_mag: source magnitudes ``[batch, n_src, freq, time]``.
        mix_mag: mixture magnitude ``[batch, 1, freq, time]``.
    """
    return (source_mag > threshold * mix_mag).to(source_mag.dtype)


def ratio_mask(source_mag: torch.Tensor, mix_mag: torch.Tensor) -> torch.Tensor:
    """Soft ground-truth mask: ``min(|S| / |X|, 1)`` (0 where the mixture bin is silent).

    Args:
        source_mag: source magnitudes ``[batch, n_src, freq, time]``.
        mix_mag: mixture magnitude ``[batch, 1, freq, time]``.
    """
    ratio = source_mag / mix_mag.clamp_min(torch.finfo(mix_mag.dtype).tiny)
    return torch.where(mix_mag > 0, ratio.clamp(0.0, 1.0), torch.zeros_like(ratio))


#: ``optim.mask_target`` -> the function of ``(source_mag, mix_mag, threshold)`` it trains to.
MASK_TARGETS = {
    "binary": ideal_binary_mask,
    "ratio": lambda source_mag, mix_mag, threshold: ratio_mask(source_mag, mix_mag),
}


def check_mask_target(name: str) -> None:
    """A ValueError naming the known targets unless ``name`` is one of :data:`MASK_TARGETS`."""
    if name not in MASK_TARGETS:
        raise ValueError(f"Unknown mask target {name!r}; known: {', '.join(MASK_TARGETS)}")


def bce_weight(mix_mag: torch.Tensor) -> torch.Tensor:
    """CLIPSep's per-bin loss weight ``clamp(log1p(|X|), 1e-3, 10)``, same shape as ``mix_mag``."""
    return torch.log1p(mix_mag).clamp(1e-3, 10.0)


def multisrc_weighted_bce(logits: torch.Tensor, target: torch.Tensor,
                          weight: torch.Tensor) -> torch.Tensor:
    """Weighted BCE summed over sources, averaged over batch and bins.

    ``L = sum_i mean_{b,f,t} w * BCE(sigmoid(z_i), y_i)``; computed from logits for stability.

    Args:
        logits: mask logits ``[batch, n_src, freq, time]``.
        target: binary masks ``[batch, n_src, freq, time]``.
        weight: per-bin weights broadcastable to ``logits`` (``[batch, 1, freq, time]``).

    Returns:
        scalar loss.
    """
    per_bin = F.binary_cross_entropy_with_logits(logits.float(), target.float(),
                                                 reduction="none") * weight.float()
    return per_bin.mean(dim=(0, 2, 3)).sum()


#: a source counts as present when its energy exceeds this fraction of the mixture's (-30 dB)
PRESENT_ENERGY_RATIO = 1e-3


def present_source_neg_snr(estimates: torch.Tensor, sources: torch.Tensor,
                           mix: torch.Tensor) -> torch.Tensor:
    """Mean negative SNR (dB, Asteroid's ``singlesrc_neg_snr``) of the estimates of the
    sources that are present; absent targets (silence, or a source more than 30 dB below the
    mixture) have no SNR and are left to the mask loss.

    Args:
        estimates, sources: ``[batch, n_src, time]``; mix: ``[batch, time]``.

    Returns:
        scalar (0 when no source is present).
    """
    energy = sources.float().pow(2).sum(-1)                                  # [batch, n_src]
    present = energy > PRESENT_ENERGY_RATIO * mix.float().pow(2).sum(-1, keepdim=True)
    if not bool(present.any()):
        return estimates.sum() * 0.0
    # imported here: importing asteroid registers this package's models, which import this module
    from asteroid.losses import singlesrc_neg_snr
    return singlesrc_neg_snr(estimates[present].float(), sources[present].float()).mean()
