"""``omnisep separate`` end to end on tiny models and generated audio."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from omnisep_plugin.query import ImageBindEncoder
from omnisep_plugin.separation import separate_array
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
    ["--text", "helicopter", "--query-aug", "--query-set", "{root}/query_set.pt"],
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
    if "--query-aug" in args:  # a label's own text maps to that label (cosine 1)
        assert side["query_aug_label"] == "helicopter"
    if "--negative-text" in args:
        assert side["query"]["negative_text"] == "a dog barking" and side["query"]["alpha"] == 1.0


def test_query_aug_picks_the_label_of_highest_cosine_and_the_weighted_form_differs(assets, tmp_path):
    encoder = ImageBindEncoder(assets / "ib.pth")
    labels = ["violin", "dog barking", "helicopter"]
    text = "a fiddle being bowed"
    cos = [float(np.dot(encoder.embed_text([text])[0], encoder.embed_text([lab])[0]))
           for lab in labels]
    expected = labels[int(np.argmax(cos))]
    outs = {}
    for name, extra in (("nearest", []), ("soft", ["--query-aug-temperature", "0.5"]),
                        ("label", None)):
        args = (["--text", expected] if extra is None else
                ["--text", text, "--query-aug", "--query-set", str(assets / "query_set.pt"), *extra])
        r = run(assets, str(assets / "mix.wav"), "--out", str(tmp_path / name), *args)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[name] = sf.read(tmp_path / name / "mix_est1.wav")[0]
        if extra is not None:
            side = json.loads((tmp_path / name / "mix_est1.json").read_text())
            assert side["query_aug_label"] == expected
    # nearest-label Query-Aug separates exactly as the label's own text query does
    np.testing.assert_allclose(outs["nearest"], outs["label"], atol=1e-6)
    assert np.abs(outs["soft"] - outs["nearest"]).max() > 1e-6


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
    torch.testing.assert_close(separate_array(model, short, q), model(short, q[None])[:, 0],
                               atol=1e-5, rtol=0)  # one pass (the folded query head)


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


# ------------------------------------------------ outputs never touch a user file
def _one_error_line(r, message):
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error")]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(errors) == 1 and message in errors[0], errors
    assert "Traceback" not in r.stderr


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_output_never_overwrites_an_input_even_with_force(assets, tmp_path):
    """`separate d/mix.wav d/mix_est1.wav --out d --force` overwrote the second input with
    the estimate of the first and exited 0."""
    d = tmp_path / "d"
    d.mkdir()
    mix = sf.read(assets / "mix.wav")[0]
    sf.write(d / "mix.wav", mix, SR, subtype="FLOAT")
    sf.write(d / "mix_est1.wav", 0.5 * mix, SR, subtype="FLOAT")
    before = (d / "mix_est1.wav").read_bytes()
    r = run_in_process(assets, str(d / "mix.wav"), str(d / "mix_est1.wav"), "--out", str(d),
                       "--text", "x", "--force")
    _one_error_line(r, "it is an input")
    assert (d / "mix_est1.wav").read_bytes() == before
    assert _files(d) == ["mix.wav", "mix_est1.wav"]
    # a query file is an input too
    r = run_in_process(assets, str(d / "mix.wav"), "--out", str(d), "--audio",
                       str(d / "mix_est1.wav"), "--force")
    _one_error_line(r, "it is an input")
    assert (d / "mix_est1.wav").read_bytes() == before


@pytest.mark.parametrize("existing,extra", [("mix_est1.json", []), ("mix_est1.png", ["--plot"])])
def test_every_existing_output_needs_force(assets, tmp_path, existing, extra):
    """Only the .wav was checked: an existing .json or .png was overwritten without --force."""
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_text("mine")
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(out), "--text", "x", *extra)
    _one_error_line(r, f"{existing} exists; pass --force")
    assert _files(out) == [existing] and (out / existing).read_text() == "mine"
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(out), "--text", "x",
                       "--force", *extra)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / existing).read_bytes() != b"mine"


def test_dotted_input_names_do_not_clobber_unrelated_files(assets, tmp_path):
    """`take.1.wav` gave `take.1_est1`.with_suffix(".wav") == `take.wav`: an unrelated file."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "take.1.wav").write_bytes((assets / "mix.wav").read_bytes())
    (out / "take.wav").write_text("unrelated")
    r = run_in_process(assets, str(src / "take.1.wav"), "--out", str(out), "--text", "x")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "take.wav").read_text() == "unrelated"
    assert _files(out) == ["take.1_est1.json", "take.1_est1.wav", "take.wav"]


def test_long_legal_input_name_works_and_too_long_outputs_are_refused(assets, tmp_path):
    """A legal 244-character input name crashed: the temporary name passed 255 bytes."""
    src = tmp_path / "in"
    src.mkdir()
    legal = src / ("a" * 240 + ".wav")
    legal.write_bytes((assets / "mix.wav").read_bytes())
    r = run_in_process(assets, str(legal), "--out", str(tmp_path / "o"), "--text", "x")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "o" / ("a" * 240 + "_est1.json")).is_file()
    longer = src / ("b" * 248 + ".wav")
    longer.write_bytes((assets / "mix.wav").read_bytes())
    r = run_in_process(assets, str(longer), "--out", str(tmp_path / "p"), "--text", "x")
    _one_error_line(r, "bytes long (the file system allows 255)")
    assert not (tmp_path / "p").exists()


def test_a_bad_second_input_leaves_no_output_of_the_run(assets, tmp_path):
    """All or nothing: the first input's outputs are not kept when the second fails."""
    bad = np.zeros(3 * SR, np.float32)
    bad[2 * SR] = np.nan  # found while streaming, after the first file was separated
    sf.write(tmp_path / "bad.wav", bad, SR, subtype="FLOAT")
    out = tmp_path / "out"
    r = run_in_process(assets, str(assets / "mix.wav"), str(tmp_path / "bad.wav"), "--out",
                       str(out), "--text", "x")
    _one_error_line(r, "NaN or Inf")
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = run_in_process(assets, str(assets / "mix.wav"), str(tmp_path / "bad.wav"), "--out",
                       str(out), "--text", "x")
    assert r.returncode == 2 and _files(out) == ["keep.txt"]


def test_disk_full_is_one_line_and_leaves_nothing(assets, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    def full(self, data):
        raise sf.LibsndfileError(2)  # what libsndfile raises on ENOSPC (measured on a tmpfs)
    monkeypatch.setattr(sf.SoundFile, "write", full)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 20, 1 << 20, 0))
    out = tmp_path / "out"
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(out), "--text", "x")
    _one_error_line(r, f"No space left on device: {out / 'mix_est1.wav'}")
    assert not out.exists()


CLI_ERRORS = [
    (["--device", "banana"], "Unknown device 'banana'"),
    (["--device", "meta"], "cannot run OmniSep here"),
    (["--device", "cuda:7"], "cuda"),
    (["--batch-windows", "-1"], "--batch-windows"),
    (["--window", "10"], "--window"),
    (["--overlap", "0.9"], "--overlap"),
    (["--audio", "{tmp}/short.wav"], "shorter than one analysis frame"),
    (["--out", "{tmp}/dangling"], "dangling symbolic link"),
    (["{tmp}/liar.wav"], "sample rate of 2147483647 Hz"),
    (["{tmp}/wide.wav"], "1024 channels"),
    (["--query-aug", "--query-set", "{qs}", "--query-aug-temperature", "-1"], "temperature"),
]


@pytest.mark.parametrize("args,message", CLI_ERRORS)
def test_more_user_errors_are_one_line_exit_2(assets, tmp_path, args, message):
    import struct
    if args[:2] == ["--device", "cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    sf.write(tmp_path / "short.wav", 0.1 * np.ones(100, np.float32), SR)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    sf.write(tmp_path / "liar.wav", np.zeros(100, np.float32), SR, subtype="PCM_16")
    data = bytearray((tmp_path / "liar.wav").read_bytes())
    data[24:28] = struct.pack("<I", 2_147_483_647)
    (tmp_path / "liar.wav").write_bytes(bytes(data))
    sf.write(tmp_path / "wide.wav", np.zeros((1, 1024), np.float32), SR, subtype="FLOAT")
    args = [a.format(tmp=tmp_path, qs=assets / "query_set.pt") for a in args]
    inputs = [a for a in args if a.endswith(("liar.wav", "wide.wav"))] or [str(assets / "mix.wav")]
    args = [a for a in args if a not in inputs]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    if "--audio" not in args:
        args += ["--text", "x"]
    r = run_in_process(assets, *inputs, *args)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_sigterm_removes_temporary_files_and_stale_ones_are_cleaned(assets, tmp_path):
    import os
    import signal
    import time

    long = (0.1 * np.random.default_rng(0).standard_normal(SR * 600)).astype(np.float32)
    sf.write(tmp_path / "long.wav", long, SR, subtype="FLOAT")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "omnisep_plugin.bin.cli", "separate", "--model",
           str(assets / "model.pth"), "--imagebind", str(assets / "ib.pth"), str(tmp_path / "long.wav"),
           "--out", str(out), "--text", "x"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out.exists() and any(out.iterdir())) and time.time() < deadline:
        time.sleep(0.05)
    assert out.exists() and [p for p in out.iterdir() if ".tmp" in p.name], "never started writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert _files(out) == []  # no hidden temporary file left behind
    # A SIGKILLed run's temporary file (its process is gone) is removed by the next run
    # writing beside it; a live process's is not.
    out.mkdir(exist_ok=True)  # the killed run removed the folder it had created
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".mix_est1.wav.{dead.pid}.abc123.tmp.wav"
    live = out / f".mix_est1.wav.{os.getpid()}.def456.tmp.wav"
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(out), "--text", "x")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not stale.exists() and live.exists()


# ------------------------------------------------ several queries, residual, backends
def test_repeated_text_gives_one_stem_per_query_each_removing_the_others(assets, tmp_path):
    """Stem i of `--text A --text B` is the single run `--text A --negative-text B` (eq. 4:
    each stem removes the others); with --no-stem-negatives it is the single run `--text A`."""
    mix = str(assets / "mix.wav")
    texts = ("violin", "dog barking")
    for flag, folder in (([], "both"), (["--no-stem-negatives"], "plain")):
        r = run_in_process(assets, mix, "--out", str(tmp_path / folder), "--text", texts[0],
                           "--text", texts[1], *flag)
        assert r.returncode == 0, r.output[-2000:]
    for i, (text, other) in enumerate((texts, texts[::-1]), 1):
        for folder, extra in (("both", ["--negative-text", other]), ("plain", [])):
            one = tmp_path / f"{folder}_{i}"
            r = run_in_process(assets, mix, "--out", str(one), "--text", text, *extra)
            assert r.returncode == 0, r.output[-2000:]
            stem = sf.read(tmp_path / folder / f"mix_est{i}.wav")[0]
            np.testing.assert_allclose(stem, sf.read(one / "mix_est1.wav")[0], atol=1e-6)
        side = json.loads((tmp_path / "both" / f"mix_est{i}.json").read_text())
        assert side["query"]["text"] == text and side["output"].endswith(f"mix_est{i}.wav")
        assert side["stem_negatives"] == [3 - i]
    a, b = (sf.read(tmp_path / "both" / f"mix_est{i}.wav")[0] for i in (1, 2))
    assert np.abs(a - b).max() > 1e-4  # not the last query twice
    plain = sf.read(tmp_path / "plain" / "mix_est1.wav")[0]
    assert np.abs(a - plain).max() > 1e-4  # the other stem was removed


def test_the_query_check_compares_each_stem_with_what_was_asked_for(assets, tmp_path, monkeypatch):
    """The presence check gets each stem's positive query, not the one with the other stems
    removed (its similarity threshold was calibrated on plain queries)."""
    import omnisep_plugin.query.presence as presence
    seen = []
    real = presence.file_presence
    monkeypatch.setattr(presence, "file_presence",
                        lambda path, wavs, queries, *a: seen.append(queries) or real(path, wavs, queries, *a))
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(tmp_path), "--text", "violin",
                       "--text", "dog barking")
    assert r.returncode == 0, r.output[-2000:]
    texts = ImageBindEncoder(assets / "ib.pth").embed_text(["violin", "dog barking"])
    torch.testing.assert_close(seen[0], torch.nn.functional.normalize(texts, dim=-1))


def test_remove_writes_the_residual_and_estimate_plus_residual_is_the_mixture(assets, tmp_path):
    for name, extra in (("keep", []), ("remove", ["--remove"])):
        r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(tmp_path / name),
                           "--text", "violin", *extra)
        assert r.returncode == 0, r.output[-2000:]
    assert sorted(p.name for p in (tmp_path / "remove").iterdir()) == [
        "mix_residual.json", "mix_residual.wav"]
    est = sf.read(tmp_path / "keep" / "mix_est1.wav")[0]
    res = sf.read(tmp_path / "remove" / "mix_residual.wav")[0]
    mix = sf.read(assets / "mix.wav")[0]
    assert np.abs(res - mix).max() > 1e-3  # not the mixture itself
    np.testing.assert_allclose(est + res, mix, atol=1e-5)


@pytest.mark.parametrize("args,message", [
    (["--text", "a", "--text", "b", "--audio", "{root}/ref.wav"], "same number of times"),
    (["--text", "a", "--text", "b", "--remove"], "--remove takes one query"),
])
def test_bad_stem_combinations_are_one_line_errors(assets, tmp_path, args, message):
    args = [a.format(root=assets) for a in args]
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and message in r.output, r.output[-2000:]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("backend", ["torchscript", "onnxruntime"])
def test_backends_give_the_eager_estimate(assets, tmp_path, backend):
    outs = {}
    for name in ("eager", backend):
        r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(tmp_path / name),
                           "--text", "violin", "--backend", name, "--window", "16383")
        assert r.returncode == 0, r.output[-2000:]
        outs[name] = sf.read(tmp_path / name / "mix_est1.wav")[0]
    assert np.abs(outs["eager"]).max() > 1e-3
    np.testing.assert_allclose(outs[backend], outs["eager"], atol=1e-4)


def _residual_runs(assets, tmp_path, name, *args):
    r = run_in_process(assets, str(assets / "mix.wav"), "--out", str(tmp_path / name), *args)
    assert r.returncode == 0, r.output[-2000:]
    out = sorted((tmp_path / name).glob("mix_*.wav"))
    return ([sf.read(p)[0] for p in out],
            [json.loads(p.with_suffix(".json").read_text())["residual_negative"] for p in out])


def test_residual_negative_is_a_second_pass_for_a_query_that_removes_nothing_else(assets, tmp_path):
    """Off by default for a model file; `--residual-negative` gives a single audio query a
    second pass (recorded in the sidecar) whose estimate differs from the first pass's, and
    whose --remove output is still the mixture minus that estimate; a bare text, stems that
    remove each other or a --negative-text keep one pass (unless --no-stem-negatives frees
    the stems)."""
    ref = str(assets / "ref.wav")
    (one,), (rec,) = _residual_runs(assets, tmp_path, "plain", "--audio", ref)
    (two,), (rec2,) = _residual_runs(assets, tmp_path, "two", "--audio", ref, "--residual-negative")
    assert rec is None and rec2 == 0.5 and np.abs(two - one).max() > 1e-4
    (res,), _ = _residual_runs(assets, tmp_path, "rem", "--audio", ref, "--residual-negative",
                               "--remove")
    np.testing.assert_allclose(two + res, sf.read(assets / "mix.wav")[0], atol=1e-5)
    _, recs = _residual_runs(assets, tmp_path, "text", "--text", "violin", "--residual-negative")
    assert recs == [None]
    _, recs = _residual_runs(assets, tmp_path, "stems", "--audio", ref, "--audio", ref,
                             "--residual-negative")
    assert recs == [None, None]
    _, recs = _residual_runs(assets, tmp_path, "free", "--audio", ref, "--audio", ref,
                             "--residual-negative", "--no-stem-negatives")
    assert recs == [0.5, 0.5]
    _, recs = _residual_runs(assets, tmp_path, "neg", "--audio", ref, "--negative-text",
                             "dog", "--residual-negative")
    assert recs == [None]
