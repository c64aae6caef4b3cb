"""``omnisep export`` and the TorchScript / ONNX Runtime backends: parity with eager."""
import pytest
import torch
from click.testing import CliRunner

from omnisep_plugin.audio_io import read_audio
from omnisep_plugin.bin.cli import cli
from omnisep_plugin.models import OmniSep
from omnisep_plugin.pipelines import DEFAULT
from omnisep_plugin.separation.backends import BackendSeparator


@pytest.mark.parametrize("fmt,backend", [("torchscript", "torchscript"), ("onnx", "onnxruntime")])
def test_exported_default_model_matches_eager_on_the_example(tmp_path, fmt, backend):
    out = tmp_path / f"omnisep.{fmt}"
    r = CliRunner().invoke(cli, ["export", "--model", "default", "--format", fmt, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "max abs difference" in r.output and out.stat().st_size > 1e6
    model = DEFAULT.get_model()
    wav = torch.from_numpy(read_audio(DEFAULT.example)[0][:1])  # 6 s: 376 frames, not traced
    queries = torch.randn(2, 3, model.query_dim)  # dynamic batch and query count
    wavs = torch.cat([wav, 0.5 * wav])
    with torch.inference_mode():
        fast = BackendSeparator(model, backend, out)(wavs, queries)
        eager = model(wavs, queries)
    assert fast.shape == eager.shape == (2, 3, wav.shape[-1])
    assert eager.abs().max() > 0.01
    assert (fast - eager).abs().max() <= 1e-4
    again = CliRunner().invoke(cli, ["export", "--model", "default", "--format", fmt,
                                     "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_unknown_backend_is_refused():
    model = OmniSep(query_dim=8, unet_widths=[4, 8]).eval()
    with pytest.raises(ValueError, match="Unknown backend"):
        BackendSeparator(model, "tensorrt")
