import pytest
import torch

from omnisep_plugin.models.spectral import STFT, LogFrequencyWarp


def test_stft_round_trip_exact_length():
    stft = STFT(256, 64, 256)
    wav = torch.randn(3, 1234)
    spec = stft(wav)
    assert spec.shape == (3, 129, 1234 // 64 + 1)
    assert torch.allclose(stft.inverse(spec, 1234), wav, atol=1e-5)


def test_warp_keeps_constants_and_round_trips_smooth_maps():
    warp = LogFrequencyWarp(513, 256)
    ones = torch.ones(2, 3, 513, 10)
    assert torch.allclose(warp.to_linear(warp.to_log(ones)), ones)
    # A map that varies slowly with frequency survives the log warp and back.
    f = torch.linspace(0, 1, 513)
    smooth = (0.5 + 0.4 * torch.sin(3 * f))[None, None, :, None].expand(1, 1, 513, 4)
    back = warp.to_linear(warp.to_log(smooth))
    assert (back - smooth).abs().max() < 0.02


def test_warp_gives_low_frequencies_more_bins():
    warp = LogFrequencyWarp(513, 256)
    ramp = torch.linspace(0, 1, 513)[None, None, :, None]  # value = relative linear frequency
    warped = warp.to_log(ramp)[0, 0, :, 0]
    assert warped.shape == (256,)
    assert torch.all(warped[1:] >= warped[:-1])
    # Half of the log bins cover well under half of the linear axis.
    assert warped[128] < 0.3


@pytest.mark.parametrize("n_fft,hop,win", [(1024, 256, 1024), (256, 64, 200), (512, 128, 512)])
@pytest.mark.parametrize("n,length_change", [(131071, 0), (20000, 100), (20000, -50), (700, 0)])
def test_inverse_by_shifted_additions_equals_torch_istft(n_fft, hop, win, n, length_change):
    stft = STFT(n_fft, hop, win)
    spec = stft(torch.randn(2, n)) * (0.5 + torch.rand(1, n_fft // 2 + 1, 1))
    try:
        ref = torch.istft(spec, n_fft, hop, win, window=stft.window, center=True,
                          length=n + length_change)
    except RuntimeError:  # the envelope vanishes inside the requested length: the same error
        with pytest.raises(RuntimeError, match="window overlap add min"):
            stft.inverse(spec, n + length_change)
        return
    torch.testing.assert_close(stft.inverse(spec, n + length_change), ref, atol=1e-5, rtol=0)


def test_inverse_without_overlap_raises_torch_istft_error():
    stft = STFT(512, 512, 512)  # Hann windows that do not overlap: the envelope vanishes
    with pytest.raises(RuntimeError, match="window overlap add min"):
        stft.inverse(stft(torch.randn(1, 4000)), 4000)
