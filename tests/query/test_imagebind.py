import numpy as np
import pytest
import torch
from PIL import Image

from omnisep_plugin.query import ImageBindEncoder
from omnisep_plugin.query.imagebind import import_imagebind
from omnisep_plugin.testing.dummies import TINY_IMAGEBIND, save_tiny_imagebind_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ib") / "tiny_imagebind.pth"
    save_tiny_imagebind_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def encoder(ckpt):
    return ImageBindEncoder(ckpt)


def test_loads_weights_through_real_model_code(encoder, ckpt):
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, value in encoder.model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert encoder.dim == TINY_IMAGEBIND["out_embed_dim"]
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.train().training  # stays frozen in eval mode


def test_embeddings_are_unit_norm_and_match_the_model(encoder):
    _, imagebind_model = import_imagebind()
    text = encoder.embed_text(["a dog barking", "a violin playing"])
    assert text.shape == (2, 16)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(text[0], text[1])
    # The same tokens through ImageBind's own forward give the same direction.
    tokens = torch.stack([encoder._tokenizer(t) for t in ["a dog barking"]])
    raw = encoder.model({imagebind_model.ModalityType.TEXT: tokens})["text"]
    assert torch.allclose(torch.nn.functional.normalize(raw, dim=-1), text[:1], atol=1e-5)


def test_audio_and_image_paths(encoder, tmp_path):
    audio = encoder.embed_audio(torch.randn(2, 16000 * 3))
    assert audio.shape == (2, 16) and torch.isfinite(audio).all()
    assert encoder.audio_clips(torch.randn(16000 * 5)).shape == (3, 1, 128, 204)
    img = tmp_path / "frame.jpg"
    Image.fromarray((np.random.rand(40, 64, 3) * 255).astype("uint8")).save(img)
    from_file = encoder.embed_image([str(img)])
    pixels = torch.from_numpy(np.array(Image.open(img).convert("RGB"))).permute(2, 0, 1) / 255
    from_tensor = encoder.embed_image(pixels[None].float())
    assert from_file.shape == (1, 16)
    # Tensor and file inputs go through the same resize / crop / normalisation.
    assert torch.nn.functional.cosine_similarity(from_file, from_tensor).item() > 0.99


def test_missing_checkpoint_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagebind_huge.pth"):
        ImageBindEncoder(tmp_path / "nope.pth")


def test_checkpoint_of_another_shape_is_a_clear_error(ckpt, tmp_path):
    state = torch.load(ckpt, weights_only=True)
    bad = tmp_path / "bad.pth"
    torch.save(state["state_dict"], bad)  # raw state dict: read as ImageBind-huge
    with pytest.raises(ValueError, match="does not match ImageBindModel"):
        ImageBindEncoder(bad)


def test_bad_queries(encoder, tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        encoder.embed_text(["  "])
    with pytest.raises(ValueError, match="NaN"):
        encoder.embed_audio(torch.full((1, 100), float("nan")))
    with pytest.raises(ValueError, match=r"\[batch, 3, H, W\]"):
        encoder.embed_image(torch.rand(1, 1, 20, 20))
    not_image = tmp_path / "x.jpg"
    not_image.write_text("hello")
    with pytest.raises(ValueError, match="Cannot read image"):
        encoder.embed_image([str(not_image)])
    with pytest.raises(ValueError, match="Unknown query modality"):
        encoder.embed("smell", ["x"])
