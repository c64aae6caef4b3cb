"""Messy inputs at every public entry point: each one gets a clear error (or a documented,
logged behaviour) and leaves no partial output file. (Training killed with SIGKILL and
resumed: tests/training; embedding killed and resumed: tests/data; no network: every test
runs with socket connections refused, see conftest.py.)"""
import json
import logging
import socket

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from omnisep_plugin.data.embed import embed_cuts
from omnisep_plugin.data.mixtures import MixtureDataset, render_mixture
from omnisep_plugin.data.recipes import prepare_music, prepare_vggsound
from omnisep_plugin.models import OmniSep
from omnisep_plugin.query import ImageBindEncoder, QuerySet, compose_query
from omnisep_plugin.query.offline import AudioBinder
from omnisep_plugin.scoring import read_pairs_csv, score_pairs
from omnisep_plugin.testing.dummies import (TINY_OMNISEP, harmonic_tone,
                                            save_tiny_imagebind_checkpoint, tiny_omnisep)
from omnisep_plugin.training import NumberedBatches
from omnisep_plugin.training.run import load_conf

SR = 16000
D = TINY_OMNISEP["query_dim"]


@pytest.fixture(scope="module")
def model():
    return tiny_omnisep().eval()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("ib") / "tiny.pth"
    save_tiny_imagebind_checkpoint(path)
    return ImageBindEncoder(path)


def _no_outputs(folder):
    return not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]


# ---------------------------------------------------------------- audio files
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


# ---------------------------------------------------------------- images and text
def _img(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return [str(path)]


@pytest.mark.parametrize("name,make", [
    ("grayscale", lambda p: _img(p / "g.png", np.full((30, 40), 128, np.uint8))),
    ("tiny", lambda p: _img(p / "t.png", np.zeros((1, 1, 3), np.uint8))),
    ("huge", lambda p: _img(p / "h.jpg", np.zeros((3000, 4000, 3), np.uint8))),
])
def test_odd_images_are_embedded(encoder, tmp_path, name, make):
    emb = encoder.embed_image(make(tmp_path))
    assert emb.shape == (1, encoder.dim) and torch.isfinite(emb).all()


@pytest.mark.parametrize("content,message", [(b"GIF89a-broken", "Cannot read image"),
                                             (b"", "Cannot read image")])
def test_corrupt_images(encoder, tmp_path, content, message):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        encoder.embed_image([str(path)])


@pytest.mark.parametrize("text", ["word " * 400, "ein Hund bellt — 犬が吠える 🐕"])
def test_long_and_non_ascii_text(encoder, text):
    assert torch.isfinite(encoder.embed_text([text])).all()


@pytest.mark.parametrize("bad", [[""], ["   "], [], [None]])
def test_empty_text(encoder, bad):
    with pytest.raises(ValueError):
        encoder.embed_text(bad)


def test_unknown_modality():
    with pytest.raises(ValueError, match="Unknown query modality"):
        compose_query({"smell": torch.zeros(1, 4)})


# ---------------------------------------------------------------- manifests
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from omnisep_plugin.testing.fake_corpus import make_fake_music
    root = tmp_path_factory.mktemp("music")
    make_fake_music(root, instruments=("violin", "flute", "cello"), per_class=3, seconds=5)
    return root, prepare_music(root, instruments=["violin", "flute", "cello"])


def test_cut_without_label(encoder, corpus, tmp_path):
    _, manifests = corpus
    cut = manifests["train"]["cuts"][0]
    bare = cut.__class__(id="x", start=0, duration=1, channel=0, recording=cut.recording)
    with pytest.raises(ValueError, match="no supervision with a 'label'"):
        embed_cuts([bare], encoder, tmp_path / "arrays", progress=False)


def test_duplicate_cut_ids(encoder, corpus, tmp_path):
    cuts = list(corpus[1]["train"]["cuts"])
    with pytest.raises(ValueError, match="Duplicate cut id"):
        embed_cuts(cuts + cuts[:1], encoder, tmp_path / "arrays", progress=False)
    with pytest.raises(ValueError, match="Duplicate cut id"):
        MixtureDataset(cuts + cuts[:1])


def test_mixture_naming_missing_cuts(corpus):
    entry = {"id": "m0", "sources": [{"cut_id": "ghost", "label": "x", "offset": 0, "gain": 1.0}]}
    with pytest.raises(ValueError, match="not in the manifest.*ghost"):
        render_mixture(entry, corpus[1]["train"]["cuts"], 1000)


def test_malformed_corpus_lists(tmp_path):
    (tmp_path / "MUSIC_solo_videos.json").write_text(json.dumps({"videos": {"violin": "abc"}}))
    with pytest.raises(ValueError, match="lists of video ids"):
        prepare_music(tmp_path)
    (tmp_path / "vggsound.csv").write_text("id,0,dog\n")
    with pytest.raises(ValueError, match="expected youtube_id"):
        prepare_vggsound(tmp_path)


def test_batch_larger_than_the_data(corpus):
    with pytest.raises(ValueError, match="no full batch"):
        NumberedBatches(corpus[1]["train"]["cuts"], batch_size=1000)


# ---------------------------------------------------------------- checkpoints and files
def _save(path, obj):
    torch.save(obj, path)
    return path


def test_checkpoints(model, tmp_path):
    good = tmp_path / "good.pth"
    model.save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    pkg = torch.load(good, weights_only=True)
    future = dict(pkg, model_args={**pkg["model_args"], "new_option": 1})
    resized = dict(pkg, model_args={**pkg["model_args"], "n_masks": 5})
    cases = {
        "truncated.pth": "not a valid OmniSep model file",
        _save(tmp_path / "other.pth", {**pkg, "model_name": "DPRNNTasNet"}).name: "Not an OmniSep",
        _save(tmp_path / "future.pth", future).name: "Incompatible OmniSep package",
        _save(tmp_path / "resized.pth", resized).name: "Incompatible OmniSep package",
        _save(tmp_path / "tensor.pth", torch.zeros(3)).name: "Not an OmniSep",
        _save(tmp_path / "no_state.pth", {**pkg, "state_dict": None}).name: "valid 'state_dict'",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            OmniSep.from_pretrained(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        OmniSep.from_pretrained(tmp_path / "missing.pth")


def test_side_files(tmp_path):
    qs = tmp_path / "qs.pt"
    QuerySet(["a", "b"], torch.eye(2)).save(qs)
    (tmp_path / "qs_cut.pt").write_bytes(qs.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a valid Query-Set"):
        QuerySet.load(tmp_path / "qs_cut.pt")
    (tmp_path / "binder.pth").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="not a valid bound audio encoder"):
        AudioBinder.load(tmp_path / "binder.pth")


def test_configs(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: 3\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_conf(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="section.key=value"):
        load_conf(None, ["lr=3"])
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="too deep"):
        load_conf(tmp_path / "loop.yaml")


# ---------------------------------------------------------------- scoring
def test_scoring_inputs(tmp_path):
    ref = _write(tmp_path / "r.wav", harmonic_tone(200, 1.0).numpy())
    est = _write(tmp_path / "e.wav", np.zeros(8000), 8000)
    pairs = [{"id": "0", "kind": "text", "reference": str(ref), "estimate": str(est)}]
    with pytest.raises(ValueError, match="8000 Hz"):
        score_pairs(pairs, progress=False)
    (tmp_path / "p.csv").write_text("reference,estimate\nr.wav,e.wav\n")
    with pytest.raises(ValueError, match="needs a header"):
        read_pairs_csv(tmp_path / "p.csv")


# ---------------------------------------------------------------- network
def test_network_is_refused_during_tests():
    with pytest.raises(RuntimeError, match="Network access attempted"):
        socket.create_connection(("127.0.0.1", 9))
