"""recipes/omni/local/dev_mixtures.py: what the choice scripts share, the text + prototype
queries of ``--model omni --text`` and the two passes (one network or the mean of several)."""
import types

import pytest
import torch

from omnisep_plugin.query import QuerySet, residual_queries
from omnisep_plugin.query.spec import text_with_prototype
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep

D = TINY_OMNISEP["query_dim"]


@pytest.fixture(scope="module")
def dm(omni_local):
    return omni_local("dev_mixtures")


class MeanSpectrumEncoder:
    """Embeds audio as its first ``D`` magnitude-spectrum bins: residuals that differ give
    queries that differ."""
    def embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(wav.float(), dim=-1).abs()[..., 1:D + 1]


def test_two_passes_of_one_network_are_its_pass_and_its_residual_pass(dm):
    torch.manual_seed(0)
    net, enc = tiny_omnisep().eval(), MeanSpectrumEncoder()
    mix, query = torch.randn(4000), torch.randn(2, D)
    first, second = dm.two_passes([net], enc, mix, query, alpha=0.5)
    with torch.no_grad():
        expected_first = net(mix[None], query[None])[0]
        second_q, used = residual_queries(enc, mix, expected_first, query, 0.5)
        expected_second = net(mix[None], second_q[None])[0]
    assert used.all() and not torch.allclose(second_q, query)
    assert torch.allclose(first, expected_first) and torch.allclose(second, expected_second)


def test_two_passes_of_several_networks_average_their_estimates(dm):
    torch.manual_seed(0)
    nets, enc = [tiny_omnisep().eval(), tiny_omnisep().eval()], MeanSpectrumEncoder()
    mix, query = torch.randn(4000), torch.randn(1, D)
    first, second = dm.two_passes(nets, enc, mix, query)
    with torch.no_grad():
        each = [net(mix[None], query[None])[0] for net in nets]
        second_q, _ = residual_queries(enc, mix, (each[0] + each[1]) / 2, query)
        each2 = [net(mix[None], second_q[None])[0] for net in nets]
    assert not torch.allclose(each[0], each[1])
    assert torch.allclose(first, (each[0] + each[1]) / 2, atol=1e-6)
    assert torch.allclose(second, (each2[0] + each2[1]) / 2, atol=1e-6)


def test_text_prototypes_compose_each_label_with_its_prototype(dm):
    torch.manual_seed(0)
    labels = ["dog", "violin", "rain"]
    query_set = QuerySet(labels, torch.randn(3, D))
    bank = QuerySet(["dog", "violin"], torch.randn(2, D))   # rain has no prototype
    dev = types.SimpleNamespace(query_set=query_set)
    got = dm.DevSet.text_prototypes(dev, ["violin", "rain"], bank)
    expected = torch.stack([text_with_prototype(query_set.lookup(lab), query_set, bank)
                            for lab in ("violin", "rain")])
    assert got.shape == (2, D) and torch.allclose(got, expected)
    assert torch.allclose(got[1], query_set.lookup("rain"))          # the text alone
    assert not torch.allclose(got[0], query_set.lookup("violin"))    # text + prototype


def test_backend_museval_scores_a_gain_error_that_fast_bss_eval_forgives(dm):
    """``--backend museval`` makes the choice scripts score as the recipe's tables do (for a
    mono estimate museval's SDR is the SNR: half the amplitude costs 6 dB); the default stays
    fast_bss_eval, whose filter fit forgives the gain."""
    from collections import defaultdict
    torch.manual_seed(0)
    ref, other = torch.randn(2, 16000)
    mix, half = ref + other, 0.5 * ref + 0.01 * other
    sdri = {}
    for backend in ("fast", "museval"):
        extra = ["--backend", backend] if backend != "fast" else []   # fast: the default
        args = dm.parser("choice").parse_args(["m", "t", "d", "x", "q", "c", *extra])
        dev = dm.DevSet.__new__(dm.DevSet)   # only what score() reads; no files behind it
        dev.args, dev.categories = args, {"cello": "instrument"}
        dev.cells, dev.si_cells = defaultdict(list), defaultdict(list)
        dev.score("cello", ["half"], half[None], mix, ref)
        sdri[backend] = dev.cells["instrument", "half"][0]
    assert sdri["fast"] > 30 and abs(sdri["museval"] - 6.0) < 0.5   # SNR of 0.5 x ref: 6.02 dB; mixture 0 dB
