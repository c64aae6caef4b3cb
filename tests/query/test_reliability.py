"""Messy inputs at the query encoders and Query-Set files: each one gets a clear error (or a documented, logged
behaviour) and leaves no partial output file."""
import numpy as np
import pytest
import torch
from PIL import Image

from omnisep_plugin.query import QuerySet, compose_query
from omnisep_plugin.query.offline import AudioBinder


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


def test_side_files(tmp_path):
    qs = tmp_path / "qs.pt"
    QuerySet(["a", "b"], torch.eye(2)).save(qs)
    (tmp_path / "qs_cut.pt").write_bytes(qs.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a valid Query-Set"):
        QuerySet.load(tmp_path / "qs_cut.pt")
    (tmp_path / "binder.pth").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="not a valid bound audio encoder"):
        AudioBinder.load(tmp_path / "binder.pth")


