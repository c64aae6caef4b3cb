"""Residual negatives: the second pass's query removes the first pass's residual."""
import pytest
import torch
import torch.nn.functional as F

from omnisep_plugin.models.routed import routed_from_experts
from omnisep_plugin.query import negative_query
from omnisep_plugin.query.residual import (residual_negative, residual_queries,
                                           separate_with_residual_negative)
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep

D = TINY_OMNISEP["query_dim"]


class SpectrumEncoder:
    """An audio 'encoder' for tests: the first ``D`` bins of the magnitude spectrum,
    normalised (a tone and another tone embed far apart); counts its calls."""
    sample_rate = 16000
    min_audio_samples = 64

    def __init__(self):
        self.calls = 0

    def supports(self, modality):
        return modality == "audio"

    def embed_audio(self, wav):
        self.calls += 1
        spec = torch.fft.rfft(wav, n=8 * D).abs()[..., 1:D + 1]
        return F.normalize(spec, dim=-1)


def test_the_residual_along_the_query_is_never_removed():
    q = F.normalize(torch.randn(3, D), dim=-1)
    np_ = torch.randn(3, D)
    ortho = np_ - (np_ * q).sum(-1, keepdim=True) * q
    # a residual that is the query scaled: the query stays as it is
    assert torch.allclose(residual_negative(q, 2 * q, 0.5), q)
    # an orthogonal residual: eq. 4 exactly; its part along the query changes nothing
    want = negative_query(q, ortho, 0.5)
    assert torch.allclose(residual_negative(q, ortho, 0.5), want, atol=1e-6)
    assert torch.allclose(residual_negative(q, ortho + 3 * q, 0.5), want, atol=1e-6)
    assert torch.allclose(residual_negative(q, ortho, 0.0), q)
    with pytest.raises(ValueError, match="differ"):
        residual_negative(q, ortho[:2], 0.5)


def _tones(n=16000):
    t = torch.arange(n) / 16000
    return torch.sin(2 * torch.pi * 440 * t), 0.5 * torch.sin(2 * torch.pi * 1500 * t)


def test_residual_queries_embed_what_the_estimate_left_out():
    a, b = _tones()
    mix = a + b
    enc = SpectrumEncoder()
    q = F.normalize(torch.randn(3, D), dim=-1)
    estimates = torch.stack([a, mix, torch.zeros_like(mix)])   # a; all of it; nothing
    out, used = residual_queries(enc, mix, estimates, q, 0.5)
    assert used.tolist() == [True, False, True]                # all of it: no residual
    assert torch.allclose(out[1], q[1])
    assert torch.allclose(out[0], residual_negative(q[:1], enc.embed_audio(b[None]), 0.5)[0],
                          atol=1e-5)
    assert torch.allclose(out[2], residual_negative(q[2:], enc.embed_audio(mix[None]), 0.5)[0],
                          atol=1e-5)


def test_a_silent_mixture_or_a_residual_too_short_to_embed_changes_nothing():
    enc = SpectrumEncoder()
    q = F.normalize(torch.randn(2, D), dim=-1)
    silent = torch.zeros(16000)
    out, used = residual_queries(enc, silent, torch.zeros(2, 16000), q)
    assert not used.any() and torch.equal(out, q) and enc.calls == 0
    short = torch.randn(32)
    out, used = residual_queries(enc, short, torch.zeros(2, 32), q)
    assert not used.any() and torch.equal(out, q) and enc.calls == 0
    with pytest.raises(ValueError, match="mixture"):
        residual_queries(enc, torch.zeros(2, 10), torch.zeros(2, 10), q)


def test_two_passes_change_only_the_stems_asked_for():
    torch.manual_seed(0)
    model = tiny_omnisep().eval()
    a, b = _tones()
    mix, q = a + b, F.normalize(torch.randn(2, D), dim=-1)
    enc = SpectrumEncoder()
    with torch.no_grad():
        one = model(mix[None], q[None])[0]
    both = separate_with_residual_negative(model, enc, mix, q)
    first_only = separate_with_residual_negative(model, enc, mix, q,
                                                 wanted=torch.tensor([True, False]))
    assert torch.allclose(first_only[1], one[1], atol=1e-6)
    assert torch.allclose(first_only[0], both[0], atol=1e-5)
    assert (both - one).abs().amax(-1).min() > 1e-6          # every stem changed
    second, _ = residual_queries(enc, mix, one, q)
    with torch.no_grad():
        assert torch.allclose(both, model(mix[None], second[None])[0], atol=1e-5)


def test_a_routed_stem_keeps_the_expert_of_its_first_pass():
    """The second query of a routed model's stem is answered by the expert that answered
    the first, or the stem keeps its first pass."""
    torch.manual_seed(0)
    labels = ["near", "far"]
    emb = torch.eye(D)[:2]
    model = routed_from_experts({"x": tiny_omnisep().eval(), "y": tiny_omnisep().eval()},
                                {"near": "x", "far": "y"}, emb, labels)
    a, b = _tones()
    mix = a + b
    # a query barely nearer "near" than "far": removing a residual that leans on "near"
    # would hand it to the other expert
    q = F.normalize(torch.tensor([[1.0, 0.95] + [0.0] * (D - 2)]), dim=-1)

    class Leaning(SpectrumEncoder):
        def embed_audio(self, wav):
            return F.normalize(torch.tensor([[1.0, -1.0] + [0.0] * (D - 2)]), dim=-1).expand(len(wav), D)

    enc = Leaning()
    second, used = residual_queries(enc, mix, torch.zeros(1, len(mix)), q)
    assert used.all() and model.route(second).tolist() != model.route(q).tolist()
    with torch.no_grad():
        one = model(mix[None], q[None])[0]
    assert torch.equal(separate_with_residual_negative(model, enc, mix, q), one)
