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
