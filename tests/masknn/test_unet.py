import pytest
import torch

from omnisep_plugin.masknn import AudioUNet, default_architecture


@pytest.mark.parametrize("widths,freq,time", [([4], 8, 6), ([4, 8], 16, 12), ([4, 8, 8, 8], 32, 48)])
def test_output_shape(widths, freq, time):
    net = AudioUNet(in_channels=1, out_channels=5, widths=widths)
    m = net.size_multiple
    x = torch.randn(2, 1, freq // m * m or m, time // m * m or m)
    assert net(x).shape == (2, 5, *x.shape[-2:])


def test_rejects_sizes_not_multiple_of_depth():
    net = AudioUNet(out_channels=2, widths=[4, 8])
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.randn(1, 1, 16, 10))


def test_clipsep7_matches_reference_size():
    net = AudioUNet(**default_architecture("clipsep7"))
    n_params = sum(p.numel() for p in net.parameters())
    # CLIPSep's UNet7 (ngf 64, 32 outputs) has about 30.3 M parameters.
    assert 30.0e6 < n_params < 30.6e6
    assert net.size_multiple == 128


def test_get_config_rebuilds_same_architecture():
    net = AudioUNet(out_channels=3, widths=[4, 8, 16])
    clone = AudioUNet(**net.get_config())
    assert [p.shape for p in clone.parameters()] == [p.shape for p in net.parameters()]


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown U-Net architecture"):
        default_architecture("unet99")
