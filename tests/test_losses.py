import torch
import torch.nn.functional as F

from omnisep_plugin.losses import bce_weight, ideal_binary_mask, multisrc_weighted_bce, ratio_mask


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
