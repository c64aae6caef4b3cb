import pytest
import torch

from omnisep_plugin.query import QuerySet
from omnisep_plugin.query.offline import AudioBinder, OfflineEncoder


@pytest.fixture(scope="module")
def text_encoder():
    return OfflineEncoder()


def test_minilm_text_space_loads_offline_and_maps_paraphrases(text_encoder):
    labels = ["violin", "tuba", "helicopter", "applause", "dog barking"]
    qs = QuerySet(labels, text_encoder.embed_text(labels))
    assert qs.dim == 384
    assert torch.allclose(qs.embeddings.norm(dim=-1), torch.ones(5), atol=1e-5)
    para = text_encoder.embed_text(["A dog letting out barking noises.",
                                    "A crowd of people clapping their hands."])
    assert qs.nearest(para)[1] == ["dog barking", "applause"]
    assert text_encoder.modalities == ("text",)
    with pytest.raises(ValueError, match="no audio encoder"):
        text_encoder.embed_audio(torch.zeros(1, 16000))


def test_binder_round_trip_and_encoder_interface(text_encoder, tmp_path):
    binder = AudioBinder(channels=(8, 16)).eval()
    binder.save(tmp_path / "b.pth")
    back = AudioBinder.load(tmp_path / "b.pth")
    wav = torch.randn(2, 16000)
    assert torch.allclose(back(wav), binder(wav), atol=1e-5)
    enc = OfflineEncoder(tmp_path / "b.pth")
    out = enc.embed_audio(wav)
    assert out.shape == (2, 384) and torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a valid bound audio encoder"):
        AudioBinder.load(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError):
        AudioBinder.load(tmp_path / "none.pth")


def test_binding_puts_clips_next_to_their_label(text_encoder, tmp_path):
    from omnisep_plugin.data.recipes import prepare_music
    from omnisep_plugin.training.binder import binding_accuracy, train_audio_binder
    from omnisep_plugin.testing.fake_corpus import make_fake_music

    make_fake_music(tmp_path, instruments=("violin", "tuba", "flute"), per_class=4, seconds=3)
    cuts = [c for m in prepare_music(tmp_path, instruments=["violin", "tuba", "flute"],
                                     min_samples=16000).values() for c in m["cuts"]]
    untrained = binding_accuracy(AudioBinder().eval(), cuts, text_encoder)
    binder = train_audio_binder(cuts, text_encoder, steps=40, batch_size=8, crop_seconds=1.0,
                                progress=False)
    assert binding_accuracy(binder, cuts, text_encoder) == 1.0
    assert untrained < 1.0
