"""``omnisep separate`` end to end on tiny models and generated audio."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from omnisep_plugin.query import ImageBindEncoder
from omnisep_plugin.streaming import separate_array
from omnisep_plugin.testing.dummies import (harmonic_tone, save_tiny_imagebind_checkpoint,
                                            tiny_omnisep)

SR = 16000


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sep")
    save_tiny_imagebind_checkpoint(root / "ib.pth")
    torch.manual_seed(0)
    tiny_omnisep(query_dim=16).save(root / "model.pth")
    identity = tiny_omnisep(query_dim=16)
    with torch.no_grad():
        identity.mask_bias.fill_(30.0)  # mask ~ 1 everywhere: the output is the input
    identity.save(root / "identity.pth")
    mix = (harmonic_tone(220, 3.0, SR) + harmonic_tone(1760, 3.0, SR)).numpy() * 0.5
    sf.write(root / "mix.wav", mix, SR, subtype="FLOAT")
    sf.write(root / "ref.wav", harmonic_tone(220, 2.0, SR).numpy(), SR)
    from PIL import Image
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype("uint8")).save(
        root / "frame.jpg")
    encoder = ImageBindEncoder(root / "ib.pth")
    from omnisep_plugin.query import QuerySet
    labels = ["violin", "dog barking", "helicopter"]
    QuerySet(labels, encoder.embed_text(labels)).save(root / "query_set.pt")
    return root


def run(assets, *args, model="model.pth"):
    """The CLI in a subprocess, as a user runs it."""
    cmd = [sys.executable, "-m", "omnisep_plugin.bin.cli", "separate", "--model",
           str(assets / model), "--imagebind", str(assets / "ib.pth"), *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def run_in_process(assets, *args, model="model.pth"):
    """The same command through click's runner (fast; for the many bad-input cases)."""
    from click.testing import CliRunner

    from omnisep_plugin.bin.cli import cli
    result = CliRunner().invoke(cli, ["separate", "--model", str(assets / model), "--imagebind",
                                      str(assets / "ib.pth"), *args])
    result.returncode = result.exit_code
    return result


@pytest.mark.parametrize("query", [
    ["--text", "a violin"],
    ["--image", "{root}/frame.jpg"],
    ["--audio", "{root}/ref.wav"],
    ["--text", "a violin", "--image", "{root}/frame.jpg", "--audio", "{root}/ref.wav",
     "--weights", "2,2,1"],
    ["--text", "a violin", "--negative-text", "a dog barking", "--alpha", "1"],
    ["--text", "a fiddle being bowed", "--query-aug", "--query-set", "{root}/query_set.pt"],
])
def test_every_query_kind_writes_wav_and_sidecar(assets, tmp_path, query):
    args = [a.format(root=assets) for a in query]
    out = run(assets, str(assets / "mix.wav"), "--out", str(tmp_path), *args)
    assert out.returncode == 0, out.stderr[-2000:]
    est, sr = sf.read(tmp_path / "mix_est1.wav")
    mix, _ = sf.read(assets / "mix.wav")
    assert sr == SR and est.shape == mix.shape and np.isfinite(est).all()
    side = json.loads((tmp_path / "mix_est1.json").read_text())
    assert side["sample_rate"] == SR and side["input"].endswith("mix.wav")
    if "--query-aug" in args:
        assert side["query_aug_label"] in ("violin", "dog barking", "helicopter")
    if "--negative-text" in args:
        assert side["query"]["negative_text"] == "a dog barking" and side["query"]["alpha"] == 1.0


def test_negative_changes_the_output_and_alpha_zero_does_not(assets, tmp_path):
    outs = {}
    for name, extra in (("plain", []), ("neg0", ["--negative-text", "dog", "--alpha", "0"]),
                        ("neg", ["--negative-text", "dog", "--alpha", "1"])):
        r = run(assets, str(assets / "mix.wav"), "--out", str(tmp_path / name), "--text", "violin",
                *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[name] = sf.read(tmp_path / name / "mix_est1.wav")[0]
    np.testing.assert_array_equal(outs["plain"], outs["neg0"])
    assert np.abs(outs["plain"] - outs["neg"]).max() > 1e-5


def test_stereo_44k_and_plot(assets, tmp_path):
    t = np.arange(int(2.5 * 44100)) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 880 * t)], 1) * 0.3
    sf.write(tmp_path / "st.wav", stereo, 44100, subtype="FLOAT")
    r = run(assets, str(tmp_path / "st.wav"), "--out", str(tmp_path / "o"), "--text", "x",
            "--plot", model="identity.pth")
    assert r.returncode == 0, r.stderr[-2000:]
    est, sr = sf.read(tmp_path / "o/st_est1.wav")
    assert sr == 44100 and est.shape == stereo.shape
    # The all-pass model returns each channel (resampled to 16 kHz and back: band-limited).
    assert np.abs(est - stereo).max() < 0.02
    assert (tmp_path / "o/st_est1.png").stat().st_size > 1000
    r = run(assets, str(tmp_path / "st.wav"), "--out", str(tmp_path / "m"), "--text", "x", "--mono")
    assert r.returncode == 0 and sf.read(tmp_path / "m/st_est1.wav")[0].ndim == 1


def test_three_minute_file_is_seamless_and_single_windows_are_exact(assets, tmp_path):
    rng = np.random.default_rng(0)
    long = (0.2 * rng.standard_normal(SR * 180)).astype(np.float32)
    sf.write(tmp_path / "long.wav", long, SR, subtype="FLOAT")
    r = run(assets, str(tmp_path / "long.wav"), "--out", str(tmp_path / "o"), "--text", "x",
            model="identity.pth")
    assert r.returncode == 0, r.stderr[-2000:]
    est = sf.read(tmp_path / "o/long_est1.wav", dtype="float32")[0]
    # 4-s windows overlap-added across 87 window borders: equal to the unchunked output
    # (here the input itself) within 1e-4 everywhere.
    assert np.abs(est - long).max() < 1e-4
    from omnisep_plugin.models import OmniSep
    model = OmniSep.from_pretrained(assets / "model.pth")
    short = torch.from_numpy(long[None, :40000])
    q = torch.randn(16)
    assert torch.equal(separate_array(model, short, q), model(short, q[None])[:, 0])


BAD = [
    (["{tmp}/missing.wav", "--text", "x"], "No audio file"),
    (["{tmp}/garbage.wav", "--text", "x"], "Cannot read audio"),
    (["{tmp}/empty.wav", "--text", "x"], "is empty"),
    (["{tmp}/nan.wav", "--text", "x"], "NaN"),
    (["{mix}", "--image", "{tmp}/garbage.wav"], "Cannot read image"),
    (["{mix}", "--text", " "], "empty"),
    (["{mix}"], "No query"),
    (["{mix}", "--negative-text", "dog"], "No query"),
    (["{mix}", "--text", "x", "--negative-text", "dog", "--alpha", "-1"], "alpha"),
    (["{mix}", "--text", "x", "--alpha", "11"], "alpha"),
    (["{mix}", "--text", "x", "--weights", "1,2"], "three numbers"),
    (["{mix}", "--text", "x", "--query-aug"], "Query-Set"),
    (["{mix}", "--text", "x", "--out", "{tmp}/afile/sub"], "not writable"),
    (["{mix}", "--audio", "{tmp}/silent.wav"], "silent"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_one_line_exit_2_nothing_written(assets, tmp_path, args, message):
    (tmp_path / "garbage.wav").write_bytes(b"RIFF0000WAVEjunk")
    sf.write(tmp_path / "empty.wav", np.zeros(0), SR)
    sf.write(tmp_path / "silent.wav", np.zeros(SR), SR)
    nan = np.zeros(SR * 2, np.float32)
    nan[SR + 5] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    (tmp_path / "afile").write_text("x")
    args = [a.format(tmp=tmp_path, mix=assets / "mix.wav") for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    r = run_in_process(assets, *args)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0]  # one line (besides the progress bar)
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_model_file_that_is_not_omnisep(assets, tmp_path):
    torch.save({"model_name": "ConvTasNet", "state_dict": {}, "model_args": {}}, tmp_path / "x.pth")
    r = run(assets, str(assets / "mix.wav"), "--out", str(tmp_path / "o"), "--text", "x",
            model=str(tmp_path / "x.pth"))
    assert r.returncode == 2 and "Not an OmniSep package" in r.stderr
    assert not (tmp_path / "o").exists()
