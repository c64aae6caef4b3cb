import torch
import torch.nn.functional as F

from omnisep_plugin.losses import (bce_weight, ideal_binary_mask, multisrc_weighted_bce,
                                   present_source_neg_snr, ratio_mask)


def test_ideal_binary_mask_threshold():
    mix = torch.tensor([[[[1.0, 1.0, 1.0]]]])
    src = torch.tensor([[[[0.2, 0.5, 0.9]]]])
    assert ideal_binary_mask(src, mix).flatten().tolist() == [0.0, 0.0, 1.0]


def test_ratio_mask_is_the_clipped_magnitude_ratio():
    mix = torch.tensor([[[[1.0, 2.0, 1.0, 0.0]]]])
    src = torch.tensor([[[[0.2, 1.0, 1.5, 0.0]]]])   # 1.5 > |X|: phases cancelled in the mix
    assert torch.allclose(ratio_mask(src, mix).flatten(), torch.tensor([0.2, 0.5, 1.0, 0.0]))


def test_bce_weight_is_clamped_log1p():
    mag = torch.tensor([0.0, 1.0, 1e6])
    assert torch.allclose(bce_weight(mag), torch.tensor([1e-3, 0.693147, 10.0]), atol=1e-5)


def test_weighted_bce_sums_over_sources_and_matches_torch():
    logits = torch.randn(2, 3, 4, 5)
    target = (torch.rand(2, 3, 4, 5) > 0.5).float()
    weight = torch.rand(2, 1, 4, 5)
    expected = sum(F.binary_cross_entropy(torch.sigmoid(logits[:, i:i + 1]), target[:, i:i + 1],
                                          weight=weight) for i in range(3))
    assert torch.allclose(multisrc_weighted_bce(logits, target, weight), expected, atol=1e-5)


def _snr_db(est, ref):
    return 10 * torch.log10(ref.pow(2).sum() / (ref - est).pow(2).sum())


def test_waveform_term_is_the_mean_negative_snr_of_the_present_sources_only():
    torch.manual_seed(0)
    sources = torch.randn(2, 3, 800)
    sources[0, 2] = 0.0                      # an absent target: silence
    sources[1, 1] *= 1e-3                    # -60 dB under the mixture: counts as absent
    mix = sources.sum(1)
    est = sources + 0.1 * torch.randn_like(sources)
    est[0, 2] = torch.randn(800)             # whatever comes out for them is not scored here
    est[1, 1] = torch.randn(800)
    present = [(0, 0), (0, 1), (1, 0), (1, 2)]
    # zero-mean SNR, as Asteroid's singlesrc_neg_snr computes it
    c = lambda x: x - x.mean()
    expected = -torch.stack([_snr_db(c(est[i]), c(sources[i])) for i in present]).mean()
    assert torch.allclose(present_source_neg_snr(est, sources, mix), expected, atol=1e-3)


def test_waveform_term_is_zero_with_a_gradient_when_nothing_is_present():
    est = torch.randn(1, 2, 500, requires_grad=True)
    value = present_source_neg_snr(est, torch.zeros(1, 2, 500), torch.randn(1, 500))
    value.backward()
    assert value.item() == 0.0 and est.grad is not None
