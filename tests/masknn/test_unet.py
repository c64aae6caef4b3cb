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


def _clipsep_reference():
    """``benchmarks/clipsep_reference.py``: CLIPSep's UNet, restated from its public code."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).parents[2] / "benchmarks" / "clipsep_reference.py"
    spec = importlib.util.spec_from_file_location("clipsep_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_computes_clipsep_unet_in_channels_last_with_the_same_gradients():
    """Same weights, same outputs and weight gradients as CLIPSep's own UNet (in-place
    activations, default memory format), in training mode: the channels-last format and the
    dense-gradient identity change the speed, not the maths."""
    torch.manual_seed(0)
    ref = _clipsep_reference().UNet(in_dim=1, out_dim=3, num_downs=5, ngf=4)
    net = AudioUNet(out_channels=3, widths=[4, 8, 16, 32, 32])
    ref_state = list(ref.state_dict().values())
    assert [v.shape for v in net.state_dict().values()] == [v.shape for v in ref_state]
    net.load_state_dict(dict(zip(net.state_dict(), ref_state)))
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in net.parameters() if p.dim() == 4)
    x = torch.randn(2, 1, 32, 64)
    out, ref_out = net(x), ref(x.clone())
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref_out.backward(grad)
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-4)
