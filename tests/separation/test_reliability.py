"""Messy inputs at the separation front door (``model.separate`` on files): each one gets a clear error (or a documented, logged
behaviour) and leaves no partial output file."""
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep

SR = 16000
D = TINY_OMNISEP["query_dim"]


@pytest.fixture(scope="module")
def model():
    return tiny_omnisep().eval()


def _no_outputs(folder):
    return not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]


def _write(path, data, sr=SR, **kw):
    sf.write(path, data, sr, **kw)
    return path


AUDIO_ERRORS = {
    "corrupt": (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage"), "Cannot read audio"),
    "empty": (lambda p: _write(p, np.zeros(0)), "is empty"),
    "nan": (lambda p: _write(p, np.r_[np.zeros(SR), [np.nan], np.zeros(SR)].astype("float32"),
                             subtype="FLOAT"), "NaN"),
    "inf": (lambda p: _write(p, np.r_[np.zeros(100), [np.inf]].astype("float32"),
                             subtype="FLOAT"), "NaN or Inf"),
    "not audio at all": (lambda p: p.write_text("hello"), "Cannot read audio"),
    "wrong rate without resample": (lambda p: _write(p, np.zeros(22050) + 0.1, 22050), "resample=True"),
}


@pytest.mark.parametrize("case", sorted(AUDIO_ERRORS))
def test_bad_audio_files(model, tmp_path, case):
    make, message = AUDIO_ERRORS[case]
    path = tmp_path / "in" / "mix.wav"
    path.parent.mkdir()
    make(path)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        model.separate(str(path), output_dir=str(out), query=torch.randn(D))
    assert _no_outputs(out)


def test_missing_audio_file(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="No audio file"):
        model.separate(str(tmp_path / "nope.wav"), query=torch.randn(D))


def test_truncated_wav_is_separated_as_far_as_it_goes(model, tmp_path):
    full = _write(tmp_path / "full.wav", 0.1 * np.random.default_rng(0).standard_normal(SR))
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])  # header still claims the full length
    model.separate(str(cut), query=torch.randn(D))
    est, sr = sf.read(tmp_path / "cut_est1.wav")
    assert sr == SR and 0 < len(est) <= SR and np.isfinite(est).all()


def test_silent_input_gives_silent_output_and_a_warning(model, tmp_path, caplog):
    path = _write(tmp_path / "zeros.wav", np.zeros(2 * SR))
    with caplog.at_level(logging.WARNING):
        model.separate(str(path), query=torch.randn(D))
    assert "all zeros" in caplog.text
    assert np.all(sf.read(tmp_path / "zeros_est1.wav")[0] == 0)


def test_clipped_and_multichannel_audio_are_processed(model, tmp_path):
    loud = np.clip(3 * np.sin(np.linspace(0, 2000, 3 * SR)), -1.5, 1.5)
    path = _write(tmp_path / "six.wav", np.stack([loud] * 6, 1).astype("float32"), subtype="FLOAT")
    model.separate(str(path), query=torch.randn(D))
    est, _ = sf.read(tmp_path / "six_est1.wav")
    assert est.shape == (3 * SR, 6) and np.isfinite(est).all()


def test_existing_output_is_kept_without_force(model, tmp_path):
    path = _write(tmp_path / "mix.wav", 0.1 * np.ones(SR))
    (tmp_path / "mix_est1.wav").write_bytes(b"keep me")
    with pytest.warns(UserWarning, match="force_overwrite"):
        model.separate(str(path), query=torch.randn(D))
    assert (tmp_path / "mix_est1.wav").read_bytes() == b"keep me"


