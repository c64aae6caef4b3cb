import json

import numpy as np
import pytest
import torch
from lhotse import CutSet
from lhotse.dataset import SimpleCutSampler

from omnisep_plugin.data.embed import (build_audio_query_bank, embed_cuts, query_frames,
                                       write_query_banks)
from omnisep_plugin.data.mixtures import (MixtureDataset, load_test_mixtures,
                                          make_test_mixtures, render_mixture)
from omnisep_plugin.data.recipes import prepare_music
from omnisep_plugin.query import QuerySet
from omnisep_plugin.testing.fake_corpus import make_fake_music

INSTRUMENTS = ["violin", "flute", "cello"]


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("MUSIC")
    make_fake_music(corpus, instruments=INSTRUMENTS, per_class=4, seconds=5)
    return prepare_music(corpus, instruments=INSTRUMENTS)["train"]["cuts"]


class CountingEncoder:
    """Wraps an encoder, counts audio embeddings, optionally fails after a number of calls."""

    def __init__(self, inner, fail_after=None):
        self.inner, self.fail_after, self.audio_calls = inner, fail_after, 0

    def supports(self, modality):
        return self.inner.supports(modality)

    def embed_text(self, texts):
        return self.inner.embed_text(texts)

    def embed_image(self, images):
        return self.inner.embed_image(images)

    def embed_audio(self, wav):
        if self.fail_after is not None and self.audio_calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.audio_calls += 1
        return self.inner.embed_audio(wav)


def test_embed_cuts_attaches_unit_norm_arrays(cuts, encoder, tmp_path):
    embedded = embed_cuts(cuts, encoder, tmp_path / "arrays", batch_size=4, progress=False)
    assert len(embedded) == len(cuts)
    for cut in embedded:
        for kind in ("text", "image", "audio"):
            arr = cut.load_custom(f"{kind}_emb")
            assert arr.shape == (16,)
            assert np.linalg.norm(arr) == pytest.approx(1.0, abs=1e-4)
    by_label = {}
    for cut in embedded:
        by_label.setdefault(cut.supervisions[0].custom["label"], []).append(cut.load_text_emb())
    for label, embs in by_label.items():  # text query = the label: identical per class
        assert all(np.array_equal(embs[0], e) for e in embs)
    # Image query = mean of 4 frames: equal to embedding those frames directly.
    cut = embedded[0]
    frames = query_frames(cut.supervisions[0].custom["frames"], cut.duration)
    assert len(frames) == 4
    direct = torch.nn.functional.normalize(encoder.embed_image(frames).mean(0), dim=0)
    np.testing.assert_allclose(cut.load_image_emb(), direct.numpy(), atol=1e-5)
    # Round trip through a manifest file.
    embedded.to_file(tmp_path / "embedded.jsonl.gz")
    back = CutSet.from_file(tmp_path / "embedded.jsonl.gz").to_eager()
    np.testing.assert_array_equal(back[cut.id].load_audio_emb(), cut.load_audio_emb())


def test_embedding_resumes_after_a_kill_without_recomputing(cuts, encoder, tmp_path):
    storage = tmp_path / "arrays"
    killed = CountingEncoder(encoder, fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        embed_cuts(cuts, killed, storage, batch_size=2, progress=False)
    # batches of 2: two full batches (4 cuts) were journalled before the kill.
    resumed = CountingEncoder(encoder)
    embedded = embed_cuts(cuts, resumed, storage, batch_size=2, progress=False)
    assert resumed.audio_calls == len(cuts) - 4
    fresh = embed_cuts(cuts, encoder, tmp_path / "fresh", batch_size=2, progress=False)
    for a, b in zip(embedded, fresh):
        for kind in ("text", "image", "audio"):
            np.testing.assert_allclose(a.load_custom(f"{kind}_emb"), b.load_custom(f"{kind}_emb"),
                                       atol=1e-6)
    # A third run recomputes nothing; a truncated array file is recomputed.
    again = CountingEncoder(encoder)
    embed_cuts(cuts, again, storage, batch_size=2, progress=False)
    assert again.audio_calls == 0
    victim = next(storage.rglob("*.audio.npy"))
    victim.write_bytes(victim.read_bytes()[:20])
    again = CountingEncoder(encoder)
    embed_cuts(cuts, again, storage, batch_size=2, progress=False)
    assert again.audio_calls == 1


def test_query_banks(cuts, encoder, tmp_path):
    embedded = embed_cuts(cuts, encoder, tmp_path / "arrays", progress=False)
    bank = build_audio_query_bank(embedded, n_per_class=1, seed=3)
    assert bank.labels == sorted(INSTRUMENTS)
    assert torch.allclose(bank.embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.equal(build_audio_query_bank(embedded, 1, seed=3).embeddings, bank.embeddings)
    paths = write_query_banks(embedded, encoder, tmp_path, "music_train", 5)
    qs = QuerySet.load(paths["query_set"])
    assert qs.labels == sorted(INSTRUMENTS)
    assert qs.nearest(encoder.embed_text(["cello"]))[1] == ["cello"]
    with pytest.raises(ValueError, match="no audio_emb|No cut has an audio_emb"):
        build_audio_query_bank(cuts, 1)


def test_mixture_dataset_batches(cuts, encoder, tmp_path):
    embedded = embed_cuts(cuts, encoder, tmp_path / "arrays", progress=False)
    dataset = MixtureDataset(embedded, n_src=2, n_samples=16000, seed=0)
    sampler = SimpleCutSampler(embedded, max_cuts=3, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None)
    n = 0
    for batch in loader:
        b = len(batch["labels"])
        assert batch["sources"].shape == (b, 2, 16000)
        assert batch["mixture"].shape == (b, 16000)
        assert torch.allclose(batch["mixture"], batch["sources"].sum(1))
        assert batch["sources"].abs().max() <= 1.0
        assert (batch["sources"].pow(2).mean(-1) > 1e-4).all()  # both sources audible
        for labels, ids in zip(batch["labels"], batch["cut_ids"]):
            assert labels[0] != labels[1]
            assert all(cut_id.startswith(label) for label, cut_id in zip(labels, ids))
        for kind in ("text", "image", "audio"):
            assert batch[f"{kind}_emb"].shape == (b, 2, 16) and batch[f"has_{kind}"].all()
        first = embedded[batch["cut_ids"][0][1]]
        assert torch.allclose(batch["audio_emb"][0, 1], torch.from_numpy(first.load_audio_emb()))
        n += b
    assert n == len(embedded)


def test_mixture_dataset_needs_classes_and_embeddings(cuts):
    one_class = cuts.filter(lambda c: c.supervisions[0].custom["label"] == "violin")
    with pytest.raises(ValueError, match="at least 2 classes"):
        MixtureDataset(one_class)
    with pytest.raises(ValueError, match="run embed_cuts first"):
        MixtureDataset(cuts, n_samples=1000)[cuts.subset(first=2)]


def test_fixed_test_mixtures_are_seeded_and_render(cuts, tmp_path):
    path = tmp_path / "test_mixtures.json"
    first = make_test_mixtures(cuts, 10, n_samples=16000, seed=7, path=path)
    assert make_test_mixtures(cuts, 10, n_samples=16000, seed=7) == first
    assert make_test_mixtures(cuts, 10, n_samples=16000, seed=8) != first
    n_samples, loaded = load_test_mixtures(path)
    assert n_samples == 16000 and loaded == first
    assert json.loads(path.read_text())["mixtures"][0]["id"] == "mix00000"
    for entry in loaded:
        assert len({s["label"] for s in entry["sources"]}) == 2
    mix, sources = render_mixture(loaded[0], cuts, n_samples)
    assert sources.shape == (2, 16000) and torch.allclose(mix, sources.sum(0))
    again, _ = render_mixture(loaded[0], cuts, n_samples)
    assert torch.equal(mix, again)


def test_shar_export_streams_into_batch_local_mixtures(cuts, encoder, tmp_path):
    from omnisep_plugin.data.mixtures import export_shar

    embedded = embed_cuts(cuts, encoder, tmp_path / "arrays", progress=False)
    export_shar(embedded, tmp_path / "shar", shard_size=4)
    streamed = CutSet.from_shar(in_dir=tmp_path / "shar")
    original = {c.id: c for c in embedded}
    dataset = MixtureDataset(None, n_src=2, n_samples=8000, seed=0)
    sampler = SimpleCutSampler(streamed, max_cuts=6)
    seen = 0
    for batch_cuts in sampler:
        for cut in batch_cuts:
            np.testing.assert_array_equal(cut.load_text_emb(), original[cut.id].load_text_emb())
            np.testing.assert_allclose(cut.load_audio(), original[cut.id].load_audio(), atol=1e-4)
        batch = dataset[batch_cuts]
        assert batch["sources"].shape == (len(batch_cuts), 2, 8000)
        assert all(a != b for a, b in batch["labels"])
        seen += len(batch_cuts)
    assert seen == len(embedded)
