"""``omnisep export`` and the TorchScript / ONNX Runtime backends: parity with eager."""
import pytest
import torch
from click.testing import CliRunner

from omnisep_plugin.audio_io import read_audio
from omnisep_plugin.bin.cli import cli
from omnisep_plugin.models import OmniSep
from omnisep_plugin.pipelines import BUNDLES, DEFAULT
from omnisep_plugin.separation.backends import BackendSeparator, RoutedSeparator, separator_for


@pytest.mark.parametrize("fmt,backend,name", [("torchscript", "torchscript", "instruments"),
                                               ("onnx", "onnxruntime", "omni")])
def test_exported_shipped_network_matches_eager_on_the_example(tmp_path, fmt, backend, name):
    out = tmp_path / f"omnisep.{fmt}"
    r = CliRunner().invoke(cli, ["export", "--model", name, "--format", fmt, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "max abs difference" in r.output and out.stat().st_size > 1e6
    model = BUNDLES[name].get_model()
    wav = torch.from_numpy(read_audio(DEFAULT.example)[0][:1])  # 6 s: 376 frames, not traced
    queries = torch.randn(2, 3, model.query_dim)  # dynamic batch and query count
    wavs = torch.cat([wav, 0.5 * wav])
    with torch.inference_mode():
        fast = BackendSeparator(model, backend, out)(wavs, queries)
        eager = model(wavs, queries)
    assert fast.shape == eager.shape == (2, 3, wav.shape[-1])
    assert eager.abs().max() > 0.01
    assert (fast - eager).abs().max() <= 1e-4
    again = CliRunner().invoke(cli, ["export", "--model", name, "--format", fmt,
                                     "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_the_routed_default_runs_each_expert_with_the_backend():
    model, encoder = DEFAULT.get_model(), DEFAULT.get_encoder()
    wav = torch.from_numpy(read_audio(DEFAULT.example)[0][:1])
    queries = encoder.embed_text(["cello", "dog barking", "clarinet"])[None]  # both experts
    assert model.route_names(queries[0]) == ["instruments", "omni", "instruments"]
    sep = separator_for(model, "onnxruntime")
    assert isinstance(sep, RoutedSeparator)
    with torch.inference_mode():
        fast, eager = sep(wav, queries), model(wav, queries)
    assert fast.shape == eager.shape == (1, 3, wav.shape[-1])
    assert (fast - eager).abs().max() <= 1e-4


def test_unknown_backend_is_refused():
    model = OmniSep(query_dim=8, unet_widths=[4, 8]).eval()
    with pytest.raises(ValueError, match="Unknown backend"):
        BackendSeparator(model, "tensorrt")


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_folded_query_head_equals_the_model(activation):
    from omnisep_plugin.testing.dummies import tiny_omnisep
    torch.manual_seed(0)
    model = tiny_omnisep(query_activation=activation).eval()
    with torch.no_grad():
        model.mask_scale.uniform_(-2, 2)
        model.masker.net.up[-1].bias.uniform_(-1, 1)
    wav = torch.randn(3, 5000)
    shared = torch.randn(1, 2, 8).expand(3, -1, -1)  # the same queries for every row
    per_row = torch.randn(3, 2, 8)                    # different queries per row
    fast = BackendSeparator(model, "eager")
    with torch.inference_mode():
        for q in (shared, per_row):
            torch.testing.assert_close(fast(wav, q), model(wav, q), atol=1e-5, rtol=0)
