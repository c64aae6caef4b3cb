"""Reading and resampling: limits on headers, the bounded resampler equals torchaudio's, and
memory follows the window, not the header (one test per case of the issue)."""
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from omnisep_plugin.audio_io import (MAX_CHANNELS, MAX_SAMPLE_RATE, Resampler, check_input_file,
                                     read_audio, resample, resample_stream)


@pytest.mark.parametrize("orig,new", [(44100, 16000), (16000, 44100), (22050, 16000),
                                      (8000, 16000), (16000, 48000), (192000, 16000),
                                      (16000, 192000), (11025, 16000)])
def test_resampler_equals_torchaudio(orig, new):
    x = torch.randn(2, 9001, generator=torch.Generator().manual_seed(orig + new),
                    dtype=torch.float64)
    ref = AF.resample(x, orig, new).float()  # float64: torchaudio's kernel at full precision
    out = resample(x.float(), orig, new)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 2e-6


@pytest.mark.parametrize("orig,new", [(44100, 16000), (16000, 44100), (11003, 16000),
                                      (16000, 11003)])
@pytest.mark.parametrize("block", [1, 777, 100000])
def test_streamed_resampling_equals_whole_signal(orig, new, block):
    x = np.random.default_rng(0).standard_normal((3, 12345)).astype(np.float32)
    if block == 1:
        x = x[:, :700]  # one sample per block: every boundary case, kept short
    whole = resample(torch.from_numpy(x), orig, new).numpy()
    blocks = [x[:, i:i + block] for i in range(0, x.shape[1], block)]
    streamed = np.concatenate(list(resample_stream(blocks, orig, new, x.shape[1])), -1)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-5


def test_stream_of_a_short_file_pads_with_zeros_in_bounded_blocks():
    """A header longer than the data: the missing tail is zeros, yielded block by block."""
    x = np.ones((1, 1000), np.float32)
    pieces = list(resample_stream([x], 44100, 16000, 44100 * 30))
    assert sum(p.shape[-1] for p in pieces) == 16000 * 30
    assert max(p.shape[-1] for p in pieces) <= 1 << 16
    assert np.abs(np.concatenate(pieces, -1)[:, 400:]).max() == 0


_PEAK = """
import resource, sys, time, torch
from omnisep_plugin.audio_io import resample

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

torch.ones(1000).sum()
for arg in sys.argv[1:]:
    orig, new = map(int, arg.split(":"))
    x = torch.randn(1, orig)  # one second
    before, t = peak(), time.perf_counter()
    y = resample(x, orig, new)
    assert y.shape[-1] == new
    print(arg, peak() - before, time.perf_counter() - t)
"""

RATES = ["44100:16000", "11003:16000", "16000:11003", "192000:16000", "16000:192000",
         "8000:16000", "16000:44100"]


def test_any_rate_costs_what_44k_costs():
    """1 s at 11,003 Hz took 3.9 GB and 74 s (torchaudio's kernel has 16,000 x 11,003 taps).

    One process resamples 1 s at 44.1 kHz first, then every other rate pair; ru_maxrss is a
    high-water mark, so each later line is what that pair needed beyond what 44.1 kHz did.
    """
    out = subprocess.run([sys.executable, "-c", _PEAK, *RATES], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split() for line in out.stdout.splitlines()]
    assert [line[0] for line in lines] == RATES
    first_mb = float(lines[0][1])
    assert first_mb < 64
    for rates, mb, seconds in lines:
        assert float(mb) < 32 or rates == RATES[0], (rates, mb)
        assert float(seconds) < 5, (rates, seconds)


def _patch_header(path, offset, fmt, value):
    data = bytearray(path.read_bytes())
    data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))


def test_absurd_sample_rate_in_a_header_is_refused(tmp_path):
    """A 244-byte WAV claiming 2,147,483,647 Hz tried to allocate 8 GiB."""
    path = tmp_path / "liar.wav"
    sf.write(path, np.zeros(100, np.float32), 16000, subtype="PCM_16")
    _patch_header(path, 24, "<I", 2_147_483_647)  # fmt chunk: sample rate
    _patch_header(path, 28, "<I", 2_147_483_647 * 2)  # byte rate, kept consistent
    with pytest.raises(ValueError, match="sample rate of 2147483647 Hz.*corrupt header"):
        check_input_file(path)
    with pytest.raises(ValueError, match="2147483647 Hz"):
        read_audio(path)
    with pytest.raises(ValueError, match="outside"):
        Resampler(MAX_SAMPLE_RATE + 1, 16000)


def test_too_many_channels_are_refused(tmp_path):
    """One frame of 1,024 channels went past 7.5 GB."""
    path = tmp_path / "wide.wav"
    sf.write(path, np.zeros((1, 1024), np.float32), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=f"1024 channels; supported: 1 to {MAX_CHANNELS}"):
        check_input_file(path)
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.zeros((10, MAX_CHANNELS), np.float32), 16000, subtype="FLOAT")
    assert check_input_file(ok).channels == MAX_CHANNELS


def test_read_audio_names_the_file_with_nan(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.0], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav contains NaN or Inf"):
        read_audio(path)
