"""Messy inputs at the scorer (which files it accepts): each one gets a clear error (or a documented, logged
behaviour) and leaves no partial output file."""
import numpy as np
import pytest
import soundfile as sf

from omnisep_plugin.scoring import read_pairs_csv, score_pairs
from omnisep_plugin.testing.dummies import harmonic_tone

SR = 16000


def _write(path, data, sr=SR, **kw):
    sf.write(path, data, sr, **kw)
    return path


def test_scoring_inputs(tmp_path):
    ref = _write(tmp_path / "r.wav", harmonic_tone(200, 1.0).numpy())
    est = _write(tmp_path / "e.wav", np.zeros(8000), 8000)
    pairs = [{"id": "0", "kind": "text", "reference": str(ref), "estimate": str(est)}]
    with pytest.raises(ValueError, match="8000 Hz"):
        score_pairs(pairs, progress=False)
    (tmp_path / "p.csv").write_text("reference,estimate\nr.wav,e.wav\n")
    with pytest.raises(ValueError, match="needs a header"):
        read_pairs_csv(tmp_path / "p.csv")




# ------------------------------------------- every file checked, each error names it
def _folders(tmp_path, n=2):
    refs, est, mix = tmp_path / "refs", tmp_path / "est" / "text", tmp_path / "mix"
    for d in (refs, est, mix):
        d.mkdir(parents=True)
    for i in range(n):
        ref = harmonic_tone(200 + 50 * i, 1.0, SR).numpy()
        other = harmonic_tone(2000 + 50 * i, 1.0, SR).numpy()
        _write(refs / f"m{i}.wav", ref, subtype="FLOAT")
        _write(mix / f"m{i}.wav", ref + other, subtype="FLOAT")
        _write(est / f"m{i}.wav", ref + 0.1 * other, subtype="FLOAT")
    return refs, tmp_path / "est", mix


def _cli(tmp_path, refs, est, mix, *extra):
    from click.testing import CliRunner

    from omnisep_plugin.bin.cli import cli
    return CliRunner().invoke(cli, ["score", str(tmp_path / "out"), "--references", str(refs),
                                    "--estimates", str(est), "--mixtures", str(mix), *extra])


def _bad(path, kind):
    data, sr = sf.read(path, dtype="float32")
    if kind == "8k":
        _write(path, data[::2], 8000, subtype="FLOAT")
    elif kind == "stereo":
        _write(path, np.stack([data, data], 1), sr, subtype="FLOAT")
    else:
        data[100] = {"nan": np.nan, "inf": np.inf}[kind]
        _write(path, data, sr, subtype="FLOAT")


@pytest.mark.parametrize("which,kind,message", [
    ("mix", "8k", "is at 8000 Hz, its reference"),
    ("est/text", "8k", "is at 8000 Hz, its reference"),
    ("refs", "nan", "contains NaN or Inf"),
    ("mix", "inf", "contains NaN or Inf"),
    ("est/text", "nan", "contains NaN or Inf"),
    ("mix", "stereo", "has 2 channel(s), its reference"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path, which, kind, message):
    """`score` accepted an 8 kHz mixture against a 16 kHz reference, a NaN reference (exit
    0, NaN rows, malformed results.md) and an Inf mixture."""
    refs, est, mix = _folders(tmp_path)
    bad = tmp_path / which / "m1.wav"
    _bad(bad, kind)
    result = _cli(tmp_path, refs, est, mix)
    assert result.exit_code == 2, result.output
    line = [l for l in result.output.splitlines() if l.startswith("Error")]
    assert len(line) == 1 and message in line[0] and str(bad) in line[0], result.output
    assert not (tmp_path / "out").exists()


def test_a_silent_estimate_is_scored_not_fatal(tmp_path):
    """`separate` writes an all-zero estimate for silent input; one such file aborted the
    whole run without naming it."""
    refs, est, mix = _folders(tmp_path, n=3)
    _write(est / "text" / "m1.wav", np.zeros(SR, np.float32), subtype="FLOAT")
    result = _cli(tmp_path, refs, est, mix)
    assert result.exit_code == 0, result.output
    rows, _ = score_pairs([{"id": "m1", "kind": "text", "reference": str(refs / "m1.wav"),
                            "estimate": str(est / "text" / "m1.wav"),
                            "mixture": str(mix / "m1.wav")}], progress=False)
    (row,) = rows
    assert row["silent_estimate"] and not row["silent"]
    assert row["sdr"] == 0.0 and row["si_sdr"] == 0.0  # 10 log10(|s|^2 / |s - 0|^2)
    assert row["sdri"] < 0 and np.isfinite(row["si_sdri"])
    md = (tmp_path / "out" / "results.md").read_text()
    assert "nan" not in md.lower() and "| text |" in md and "| 3 | 0 |" in md
    assert "1 silent estimate(s) scored as 0 dB" in md


def test_unknown_extra_metric_is_one_line(tmp_path):
    refs, est, mix = _folders(tmp_path)
    result = _cli(tmp_path, refs, est, mix, "--extra-metrics", "bogus")
    assert result.exit_code == 2 and "Unknown extra metric(s) ['bogus']" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_pesq_needs_8_or_16_khz(tmp_path):
    ref = _write(tmp_path / "r.wav", harmonic_tone(200, 1.0, 22050).numpy(), 22050)
    pairs = [{"id": "0", "kind": "text", "reference": str(ref), "estimate": str(ref)}]
    with pytest.raises(ValueError, match="PESQ needs audio at 8000 or 16000 Hz"):
        score_pairs(pairs, extra_metrics=["pesq"], progress=False)
