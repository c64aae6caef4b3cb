import pytest
import torch
from click.testing import CliRunner

from omnisep_plugin.bin.cli import cli
from omnisep_plugin.masknn import AudioUNet
from omnisep_plugin.masknn.widen import widen_unet
from omnisep_plugin.models import OmniSep
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep


def _trained_like(widths):
    """A U-Net whose BatchNorms hold non-trivial statistics and affine parameters."""
    net = AudioUNet(out_channels=3, widths=widths).train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 1, 32, 32) * 3 + 1)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("new", [[8, 16, 16], [5, 13, 9]])  # doubled, and uneven copies
def test_widened_unet_computes_the_same_function(mode, new):
    net = _trained_like([4, 8, 8])
    getattr(net, mode)()
    wide = widen_unet(net, new)
    assert wide.widths == new and wide.training == net.training
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in net.parameters())
    x = torch.randn(2, 1, 32, 40)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), net(x), rtol=1e-4, atol=1e-5)


def test_noise_breaks_the_copies_symmetry_and_changes_the_output_little():
    net = _trained_like([4, 8, 8]).eval()
    x = torch.randn(2, 1, 32, 32)
    exact, noisy = widen_unet(net, [8, 16, 16]), widen_unet(net, [8, 16, 16], noise=0.01)
    down = exact.net.down[0].weight
    # the old channels keep their place; channel 4 copies one of them
    assert torch.equal(down[:4], net.net.down[0].weight)
    assert any(torch.equal(down[j], down[4]) for j in range(4))
    noisy_down = noisy.net.down[0].weight
    assert not any(torch.equal(noisy_down[j], noisy_down[4]) for j in range(4))
    with torch.no_grad():
        ref, out = net(x), noisy(x)
    assert not torch.equal(out, ref)
    assert (out - ref).abs().mean() < 0.05 * ref.abs().mean()


def test_widening_is_seeded():
    net = _trained_like([4, 8, 8])
    a, b = (widen_unet(net, [6, 12, 12], noise=0.1, seed=3) for _ in range(2))
    c = widen_unet(net, [6, 12, 12], noise=0.1, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_widen_refuses_narrowing_other_depths_and_negative_noise():
    net = AudioUNet(out_channels=2, widths=[4, 8, 8])
    with pytest.raises(ValueError, match="only widen"):
        widen_unet(net, [4, 4, 8])
    with pytest.raises(ValueError, match="keeps the depth"):
        widen_unet(net, [8, 16])
    with pytest.raises(ValueError, match="noise"):
        widen_unet(net, [8, 16, 16], noise=-1)


def _assert_same_function_and_backward(model, grown, n_src):
    """``grown`` separates as ``model`` in eval mode and gives the same loss in training mode
    (batch statistics); then the loss is back-propagated through ``grown``."""
    wav, query = torch.randn(2, 16000), torch.randn(2, n_src, TINY_OMNISEP["query_dim"])
    model.eval()
    grown.eval()
    with torch.no_grad():
        torch.testing.assert_close(grown(wav, query), model(wav, query), rtol=1e-4, atol=1e-5)
    model.train()
    grown.train()
    sources = torch.randn(2, n_src, 16000)
    loss, grown_loss = (m.compute_loss(sources.sum(1), sources, query) for m in (model, grown))
    torch.testing.assert_close(grown_loss, loss, rtol=1e-4, atol=1e-6)
    grown_loss.backward()


def test_widened_omnisep_separates_as_before_and_trains():
    model = tiny_omnisep().eval()
    wide = model.widened([8, 16, 12], noise=0.0)
    assert wide.get_model_args() == {**model.get_model_args(), "unet_widths": [8, 16, 12]}
    _assert_same_function_and_backward(model, wide, n_src=2)
    assert wide.masker.net.down[0].weight.grad[4:].abs().sum() > 0


def test_cli_widen_writes_a_model_that_loads(tmp_path):
    small = tmp_path / "small.pth"
    tiny_omnisep().save(small)
    out = tmp_path / "wide.pth"
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--widths", "8,16,16"])
    assert result.exit_code == 0, result.output
    assert "-> [8, 16, 16]" in result.output
    assert OmniSep.from_pretrained(str(out)).masker.widths == [8, 16, 16]
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--widths", "2,16,16"])
    assert result.exit_code != 0 and "only widen" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--widths", "8,x"])
    assert result.exit_code != 0 and "comma-separated" in result.output
    result = CliRunner().invoke(cli, ["widen", str(small), str(out)])
    assert result.exit_code != 0 and "--widths W1,W2,... or --conf" in result.output
    result = CliRunner().invoke(cli, ["widen", str(tmp_path / "none.pth"), str(out), "--widths", "8,16,16"])
    assert result.exit_code != 0 and "No OmniSep model file" in result.output


def test_cli_widen_takes_the_widths_from_a_configuration(tmp_path):
    small = tmp_path / "small.pth"
    tiny_omnisep().save(small)
    (tmp_path / "base.yaml").write_text("model:\n  unet_widths: [6, 8, 8]\n")
    (tmp_path / "wide.yaml").write_text("base: base.yaml\n")  # inherited, as recipes do
    out = tmp_path / "wide.pth"
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--conf", str(tmp_path / "wide.yaml")])
    assert result.exit_code == 0, result.output
    assert OmniSep.from_pretrained(str(out)).masker.widths == [6, 8, 8]
    assert OmniSep.from_pretrained(str(out)).n_masks == 4   # the configuration names none


@pytest.mark.parametrize("conf,widths,n_masks", [
    ("model:\n  unet_widths: [6, 8, 8]\n  n_masks: 8\n", [6, 8, 8], 8),   # both grow
    ("model:\n  unet_widths: [2, 8, 8]\n  n_masks: 2\n", [4, 8, 8], 4),   # nothing shrinks
    ("model:\n  n_masks: 6\n", [4, 8, 8], 6),                              # no widths given
])
def test_cli_widen_grows_to_the_configuration_where_it_is_larger(tmp_path, conf, widths, n_masks):
    small = tmp_path / "small.pth"
    tiny_omnisep().save(small)
    (tmp_path / "c.yaml").write_text(conf)
    out = tmp_path / "out.pth"
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--conf", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    grown = OmniSep.from_pretrained(str(out))
    assert grown.masker.widths == widths and grown.n_masks == n_masks


@pytest.mark.parametrize("n_masks", [8, 7])  # every mask copied once, and uneven copies
def test_more_masks_give_the_same_final_masks_and_train(n_masks):
    model = tiny_omnisep().eval()
    with torch.no_grad():
        model.mask_scale.uniform_(0.5, 1.5)
    more = model.with_more_masks(n_masks)
    assert more.get_model_args() == {**model.get_model_args(), "n_masks": n_masks}
    assert more.masker.get_config()["out_channels"] == n_masks
    _assert_same_function_and_backward(model, more, n_src=3)
    k = model.n_masks
    assert more.masker.net.up[-1].weight.grad[k:].abs().sum() > 0
    assert more.query_proj.weight.grad[k:].abs().sum() > 0
    with pytest.raises(ValueError, match="at least the model's 4"):
        model.with_more_masks(3)
    half = tiny_omnisep().half().with_more_masks(8)   # new layers in the model's dtype
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    assert half.masker.net.up[-1].weight.is_contiguous(memory_format=torch.channels_last)


def test_more_masks_noise_touches_only_the_copies_and_the_export_agrees(tmp_path):
    from omnisep_plugin.separation.backends import BackendSeparator
    model = tiny_omnisep().eval()
    more = model.with_more_masks(8, noise=0.05, seed=1).eval()
    k = model.n_masks
    new, old = more.masker.net.up[-1].weight, model.masker.net.up[-1].weight
    assert torch.equal(new[:k], old) and not torch.equal(new[k:], old)
    torch.testing.assert_close(more.with_more_masks(8).masker.net.up[-1].weight, new)  # no copy
    assert torch.equal(model.with_more_masks(8, noise=0.05, seed=1).masker.net.up[-1].weight, new)
    wav, query = torch.randn(1, 16000), torch.randn(1, 2, TINY_OMNISEP["query_dim"])
    with torch.no_grad():
        assert (more(wav, query) - model(wav, query)).abs().max() > 0
        fast = BackendSeparator(more, "onnxruntime")
        torch.testing.assert_close(fast(wav, query), more(wav, query), rtol=1e-3, atol=1e-4)
    more.save(tmp_path / "more.pth")
    back = OmniSep.from_pretrained(str(tmp_path / "more.pth")).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(wav, query), more(wav, query))


def test_cli_widen_adds_masks(tmp_path):
    small = tmp_path / "small.pth"
    tiny_omnisep().save(small)
    out = tmp_path / "more.pth"
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--n-masks", "8"])
    assert result.exit_code == 0, result.output
    assert "4 -> 8 masks" in result.output
    loaded = OmniSep.from_pretrained(str(out))
    assert loaded.n_masks == 8 and loaded.masker.widths == tiny_omnisep().masker.widths
    result = CliRunner().invoke(cli, ["widen", str(small), str(out), "--n-masks", "2"])
    assert result.exit_code != 0 and "at least the model's 4" in result.output
    assert "Traceback" not in result.output
