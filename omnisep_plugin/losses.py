"""Training targets and the weighted binary cross-entropy of OmniSep (eq. 3, CLIPSep weights).

The paper's target is the binary mask (:func:`ideal_binary_mask`); ``optim.mask_target:
ratio`` trains against the magnitude ratio instead (:func:`ratio_mask`), whose
cross-entropy optimum is the expected ratio rather than the chance that the source
dominates a bin."""
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
