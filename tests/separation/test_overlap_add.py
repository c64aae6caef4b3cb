"""Overlap-add: memory follows the window and the batch, not the channel count."""
import numpy as np
import torch

from omnisep_plugin.separation import separate_stream
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep


class RowCounter(torch.nn.Module):
    """Wraps a model and records the rows of every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, []

    def forward(self, wav, query):
        self.rows.append(wav.shape[0])
        return self.model(wav, query)


def test_rows_per_forward_pass_are_bounded_whatever_the_channel_count():
    model = RowCounter(tiny_omnisep().eval())
    q = torch.randn(TINY_OMNISEP["query_dim"])
    wav = (0.1 * np.random.default_rng(0).standard_normal((12, 20000))).astype(np.float32)
    for total, window in ((20000, 32768), (20000, 4096)):  # single pass, then windows
        model.rows = []
        out = np.concatenate(list(separate_stream([wav], total, model, q, window=window,
                                                  batch_windows=3)), -1)
        assert out.shape == wav.shape
        assert max(model.rows) <= 3 and sum(model.rows) >= 12
        # each channel separated on its own: the same as running that channel alone
        alone = np.concatenate(list(separate_stream([wav[5:6]], total, model.model, q,
                                                    window=window, batch_windows=3)), -1)
        assert np.abs(out[5:6] - alone).max() < 1e-5


def test_default_window_is_the_longest_of_a_whole_number_of_unet_frames():
    from omnisep_plugin.config import SEPARATE
    from omnisep_plugin.masknn.unet import default_architecture
    from omnisep_plugin.models import OmniSep

    model = OmniSep(query_dim=8, unet_widths=default_architecture("clipsep7_small")["widths"])
    frames = model.stft(torch.zeros(1, SEPARATE.window)).shape[-1]
    assert frames % model.masker.size_multiple == 0
    assert model.stft(torch.zeros(1, SEPARATE.window + 1)).shape[-1] == frames + 1


def test_a_stream_that_fits_in_one_window_is_one_forward_pass():
    from omnisep_plugin.config import SEPARATE

    model = RowCounter(tiny_omnisep().eval())
    wav = np.zeros((1, SEPARATE.window), np.float32)
    list(separate_stream([wav[:, :1000], wav[:, 1000:]], None, model, torch.randn(8)))
    assert model.rows == [1]
