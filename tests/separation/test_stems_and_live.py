"""Several queries in one pass, the residual, and the live (unknown-length) stream."""
import numpy as np
import pytest
import soundfile as sf
import torch

from omnisep_plugin.separation import separate, separate_array, separate_file, separate_stream
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep

DIM = TINY_OMNISEP["query_dim"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_omnisep().eval()


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(0)
    return torch.from_numpy((0.2 * rng.standard_normal(20000)).astype(np.float32))


def test_list_of_queries_is_one_unet_pass_and_equals_separate_calls(model, mix):
    q1, q2 = torch.randn(DIM), torch.randn(DIM)
    calls = []
    hook = model.masker.register_forward_hook(lambda *a: calls.append(1))
    try:
        both = separate(model, mix, query=[q1, q2])
    finally:
        hook.remove()
    assert both.shape == (2, mix.shape[-1]) and len(calls) == 1
    for stem, q in zip(both, (q1, q2)):
        torch.testing.assert_close(stem, separate(model, mix, query=q)[0], atol=1e-6, rtol=0)
    # batched mixtures and a negative query shared by every stem
    neg = torch.randn(DIM)
    batch = separate(model, mix.expand(3, -1), query=[q1, q2], negative=neg, alpha=0.5)
    alone = separate(model, mix, query=q2, negative=neg, alpha=0.5)
    assert batch.shape == (3, 2, mix.shape[-1])
    torch.testing.assert_close(batch[1, 1], alone[0], atol=1e-6, rtol=0)


def test_residual_plus_estimate_is_the_mixture_and_is_the_complementary_mask(model, mix):
    q = torch.randn(DIM)
    est = separate(model, mix[None], query=q)
    res = separate(model, mix[None], query=q, residual=True)
    assert res.shape == est.shape == (1, 1, mix.shape[-1])
    torch.testing.assert_close(est + res, mix[None, None].expand_as(est), atol=1e-6, rtol=0)
    # the same as applying 1 - M to the mixture's STFT
    with torch.no_grad():
        spec, mag = model.forward_encoder(mix[None])
        mask = torch.sigmoid(model.apply_query(model.forward_masker(mag), q[None, None]))
        complement = model.forward_decoder(1 - mask, spec, mix.shape[-1])
    torch.testing.assert_close(res, complement, atol=1e-5, rtol=0)
    # windowed streams too (cross-fades sum to one)
    windowed = separate_array(model, mix[None], q, window=4096)
    residual = separate_array(model, mix[None], q, window=4096, residual=True)
    torch.testing.assert_close(windowed + residual, mix[None], atol=1e-5, rtol=0)


def test_file_api_writes_one_file_per_stem_and_the_residual(model, mix, tmp_path):
    sf.write(tmp_path / "m.wav", mix.numpy(), 16000, subtype="FLOAT")
    q1, q2 = torch.randn(DIM), torch.randn(DIM)
    model.separate(str(tmp_path / "m.wav"), query=[q1, q2], window=4096)
    model.separate(str(tmp_path / "m.wav"), query=q1, residual=True, window=4096)
    read = {p: sf.read(tmp_path / f"m_{p}.wav", dtype="float32")[0]
            for p in ("est1", "est2", "residual")}
    windowed = separate_array(model, mix[None], torch.stack([q1, q2]), window=4096)
    np.testing.assert_allclose(read["est1"], windowed[0, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(read["est2"], windowed[1, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(read["est1"] + read["residual"], mix.numpy(), atol=1e-5)


@pytest.mark.parametrize("seconds", [0.2, 3.0])  # one pass, then many windows
def test_live_stream_of_unknown_length_equals_the_file_path(model, tmp_path, seconds):
    rng = np.random.default_rng(1)
    wav = (0.2 * rng.standard_normal((2, int(seconds * 16000)))).astype(np.float32)
    sf.write(tmp_path / "rec.wav", wav.T, 16000, subtype="FLOAT")
    q = torch.randn(DIM)
    separate_file(model, tmp_path / "rec.wav", q, tmp_path / "est.wav", window=8191)
    from_file = sf.read(tmp_path / "est.wav", dtype="float32", always_2d=True)[0].T

    def live():  # blocks of random sizes, the length never announced
        pos = 0
        while pos < wav.shape[-1]:
            n = int(rng.integers(1, 3000))
            yield wav[:, pos:pos + n]
            pos += n

    pieces = list(separate_stream(live(), None, model, q, window=8191))
    assert all(p.shape[0] == 2 for p in pieces)
    np.testing.assert_allclose(np.concatenate(pieces, -1), from_file, atol=1e-6)


def test_live_stream_latency_is_at_most_one_window(model):
    """Every estimate sample is yielded at most ``window`` input samples after it arrived."""
    window, block = 8191, 500
    fed = [0]

    def source():
        for _ in range(40):
            fed[0] += block
            yield np.zeros((1, block), np.float32)

    out = 0
    for piece in separate_stream(source(), None, model, torch.randn(DIM), window=window):
        out += piece.shape[-1]
        if fed[0] < 40 * block:  # before the end: the output trails the input by <= window
            assert fed[0] - out <= window + block
    assert out == 40 * block


def test_announced_total_is_checked(model):
    blocks = [np.zeros((1, 5000), np.float32)]
    with pytest.raises(ValueError, match="announced"):
        list(separate_stream(blocks, 6000, model, torch.randn(DIM), window=4096))
