"""Messy inputs at the corpus recipes, the embedding cache and the mixtures: each one gets a clear error (or a documented, logged
behaviour) and leaves no partial output file."""
import json

import pytest

from omnisep_plugin.data.embed import embed_cuts
from omnisep_plugin.data.mixtures import MixtureDataset, render_mixture
from omnisep_plugin.data.recipes import prepare_music, prepare_vggsound


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


