"""Augmentation for real recordings, and mixtures with 2-3 sources and absent targets."""
import itertools
import random

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from scipy.signal import sosfilt

from omnisep_plugin.data import augment as A
from omnisep_plugin.data.embed import cut_label
from omnisep_plugin.data.mixtures import MixtureDataset, balance_labels
from omnisep_plugin.testing.dummies import dummy_embedded_cuts


def _noise(n=32000, seed=0, scale=0.1):
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


@pytest.mark.parametrize("kind,ref", [
    ("peak", lambda x: AF.equalizer_biquad(x, 16000, 1000.0, 6.0, 1.0)),
    ("lowshelf", lambda x: AF.bass_biquad(x, 16000, 6.0, 200.0, 0.707)),
    ("highshelf", lambda x: AF.treble_biquad(x, 16000, -6.0, 3000.0, 0.707)),
])
def test_cookbook_biquads_equal_torchaudios(kind, ref):
    x = _noise()
    freq, gain = {"peak": (1000.0, 6.0), "lowshelf": (200.0, 6.0), "highshelf": (3000.0, -6.0)}[kind]
    q = 1.0 if kind == "peak" else 0.707
    ours = sosfilt(A._rbj_biquad(kind, freq, gain, q, 16000)[None], x)
    assert np.abs(ours - ref(torch.from_numpy(x)).numpy()).max() < 1e-4


def test_band_limit_removes_what_the_lower_rate_cannot_carry():
    x = _noise(scale=0.2)
    y = A.band_limit(x, 8000)
    spec_x, spec_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    f = np.fft.rfftfreq(len(x), 1 / 16000)
    high, low = f > 4600, (f > 300) & (f < 3500)  # the resampler rolls off just above 4 kHz
    assert (spec_y[high] ** 2).sum() < 1e-3 * (spec_x[high] ** 2).sum()
    assert (spec_y[low] ** 2).sum() == pytest.approx((spec_x[low] ** 2).sum(), rel=0.1)
    assert y.shape == x.shape


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.07, 1.1])
def test_speed_moves_pitch_and_timing_by_the_factor_and_keeps_length(factor):
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    x[16000:] = 0.0                                  # a 1-s tone, then silence
    y = A.change_speed(x, factor)
    assert y.shape == x.shape and y.dtype == np.float32
    n = int(14000 / factor)                          # well inside the sped-up tone
    peak_hz = np.argmax(np.abs(np.fft.rfft(y[:n]))) * 16000 / n
    assert peak_hz == pytest.approx(500 * factor, abs=2.0)
    end = np.flatnonzero(np.abs(y) > 0.01).max()     # the tone now ends at 1 / factor s
    assert end == pytest.approx(16000 / factor, abs=40)


def test_speed_of_one_is_the_identity_and_a_source_changes_speed_only_when_asked():
    x = _noise()
    assert A.change_speed(x, 1.0) is x
    assert A.change_speed(x, 1.004) is x             # rounded to 1/100: no resampling
    plain = A.MixtureAugment(eq_prob=0.0, reverb_prob=0.0, bandlimit_prob=0.0)
    assert np.array_equal(plain.source(x, random.Random(0)), x)
    fast = A.MixtureAugment(eq_prob=0.0, reverb_prob=0.0, bandlimit_prob=0.0, speed_prob=1.0,
                            speed_range=(1.05, 1.1))
    assert not np.allclose(fast.source(x, random.Random(0)), x)


@pytest.mark.parametrize("settings,match", [
    ({"speed_range": [1.1, 0.9]}, "speed_range: low"),
    ({"speed_range": [0.3, 1.0]}, "within"),
    ({"speed_prob": 1.5}, "speed_prob is a probability"),
    ({"eq_prob": -0.1}, "eq_prob is a probability"),
])
def test_impossible_speed_and_probability_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        A.MixtureAugment.from_dict(settings)


def test_room_adds_a_tail_and_keeps_length_and_level():
    x = np.zeros(32000, np.float32)
    x[:1600] = _noise(1600, scale=0.5)
    y = A.random_room(x, random.Random(3), max_t60=0.8)
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y[1700:3200] ** 2)) > 1e-3 * np.sqrt(np.mean(x[:1600] ** 2))  # reverberant tail
    assert A.active_rms(y) == pytest.approx(A.active_rms(x), rel=0.05)


def test_mix_sums_sources_and_background_at_relative_levels():
    aug = A.MixtureAugment(noise_prob=1.0, music_prob=0.0, reverb_prob=0.5, eq_prob=0.5,
                           bandlimit_prob=0.3)
    rng = random.Random(0)
    for _ in range(20):
        clean = np.stack([_noise(seed=1), _noise(seed=2, scale=0.02), np.zeros(32000, np.float32)])
        mix, sources = aug.mix(clean, rng)
        assert not np.any(sources[2])  # an absent slot stays silent
        levels = A.relative_levels_db(sources)
        assert levels[0] == 0 and -5.01 <= levels[1] <= 5.01
        background = mix - sources.sum(0)
        assert np.any(background)  # noise_prob=1: there is a background under the sources
        snr = 10 * np.log10(np.mean(sources.sum(0) ** 2) / np.mean(background ** 2))
        assert 15 - 0.01 <= snr <= 40 + 0.01
        assert np.abs(mix).max() <= aug.peak + 1e-6


def test_mix_is_a_function_of_the_generator():
    aug = A.MixtureAugment(reverb_prob=1.0, eq_prob=1.0, bandlimit_prob=1.0)
    clean = np.stack([_noise(seed=1), _noise(seed=2)])
    a, b = aug.mix(clean, random.Random(7)), aug.mix(clean, random.Random(7))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], aug.mix(clean, random.Random(8))[0])


def test_settings_from_yaml_refuse_unknown_keys(tmp_path):
    assert A.MixtureAugment.from_dict(None) is None and A.MixtureAugment.from_dict({}) is None
    aug = A.MixtureAugment.from_dict({"level_db": [-3, 3], "noise_prob": 0.0})
    assert aug.level_db == (-3, 3)
    with pytest.raises(ValueError, match="revreb_prob"):
        A.MixtureAugment.from_dict({"revreb_prob": 0.2})
    with pytest.raises(FileNotFoundError):
        A.MixtureAugment(backgrounds=[str(tmp_path / "missing.wav")])


def test_dataset_mixes_2_or_3_sources_and_names_absent_targets(tmp_path):
    cuts = dummy_embedded_cuts(tmp_path, n_classes=5, per_class=2, seconds=1.0)
    ds = MixtureDataset(cuts, n_src=3, min_src=2, n_samples=8000,
                        augment=A.MixtureAugment(noise_prob=0.0, music_prob=0.0))
    counts = set()
    for index in range(6):
        batch = ds[(index, cuts.subset(first=4))]
        assert batch["sources"].shape == (4, 3, 8000) and batch["present"].shape == (4, 3)
        for b in range(4):
            present = batch["present"][b]
            counts.add(int(present.sum()))
            assert present[0] and present[1]
            assert torch.allclose(batch["mixture"][b], batch["sources"][b].sum(0), atol=1e-6)
            for i in range(3):
                silent = not torch.any(batch["sources"][b, i])
                assert silent == (not present[i])
            labels = batch["labels"][b]
            assert len(set(labels)) == 3  # an absent target names a class not in the mixture
            assert batch["has_text"][b].all()  # ...and carries that class's query
    assert counts == {2, 3}
    # without min_src every slot is a real source
    plain = MixtureDataset(cuts, n_src=2, n_samples=8000)[(0, cuts.subset(first=4))]
    assert plain["present"].all() and torch.allclose(plain["mixture"], plain["sources"].sum(1))


def test_max_src_leaves_an_absent_target_in_every_mixture(tmp_path):
    cuts = dummy_embedded_cuts(tmp_path, n_classes=6, per_class=2, seconds=1.0)
    ds = MixtureDataset(cuts, n_src=4, min_src=2, max_src=3, n_samples=8000,
                        augment=A.MixtureAugment(noise_prob=0.0, music_prob=0.0))
    counts = set()
    for index in range(8):
        batch = ds[(index, cuts.subset(first=4))]
        assert batch["sources"].shape == (4, 4, 8000)
        for b in range(4):
            present = batch["present"][b]
            counts.add(int(present.sum()))
            assert not present[3]  # the last slot is always absent
            assert not torch.any(batch["sources"][b, 3])
            assert len(set(batch["labels"][b])) == 4
    assert counts == {2, 3}
    # min_src alone keeps the old draw: 2..n_src real sources
    assert MixtureDataset(cuts, n_src=3, min_src=2).max_src == 3


def test_dataset_refuses_an_impossible_min_src(tmp_path):
    cuts = dummy_embedded_cuts(tmp_path, n_classes=3, per_class=1, seconds=1.0)
    with pytest.raises(ValueError, match="min_src"):
        MixtureDataset(cuts, n_src=2, min_src=3)
    with pytest.raises(ValueError, match="min_src"):
        MixtureDataset(cuts, n_src=3, min_src=3, max_src=2)
    with pytest.raises(ValueError, match="max_src"):
        MixtureDataset(cuts, n_src=2, max_src=3)
    assert {cut_label(c) for c in cuts}


def test_balance_labels_repeats_each_class_to_the_largest(tmp_path):
    cuts = dummy_embedded_cuts(tmp_path, n_classes=3, per_class=1, seconds=0.5)
    extra = dummy_embedded_cuts(tmp_path / "more", n_classes=1, per_class=5, seconds=0.5)
    both = (cuts + extra.modify_ids(lambda i: "more-" + i)).to_eager()
    sizes = {}
    for c in both:
        sizes[cut_label(c)] = sizes.get(cut_label(c), 0) + 1
    assert sorted(sizes.values()) == [1, 1, 6]
    epoch = balance_labels(both)
    most = max(sizes.values())
    counts, ids = {}, set()
    for c in epoch:
        counts[cut_label(c)] = counts.get(cut_label(c), 0) + 1
        ids.add(c.id)
    assert set(counts.values()) == {most} and set(counts) == set(sizes)
    assert len(ids) == len(epoch)  # repeats carry their own ids
    originals = {c.id for c in both}
    assert originals <= ids  # every original cut is in the epoch
    # a repeat is the same audio and query as its original
    rep = next(c for c in epoch if "#" in c.id)
    orig = both[rep.id.split("#")[0]]
    assert np.array_equal(rep.load_audio(), orig.load_audio())
    assert np.array_equal(rep.load_custom("text_emb"), orig.load_custom("text_emb"))


def test_class_audio_queries_are_means_of_clips_of_the_same_label(tmp_path):
    cuts = dummy_embedded_cuts(tmp_path, n_classes=4, per_class=3, seconds=1.0)
    by_label = {}
    for cut in cuts:
        by_label.setdefault(cut.supervisions[0].custom["label"], []).append(
            torch.from_numpy(cut.load_custom("audio_emb")).float())
    batch_cuts = cuts.subset(first=4)
    own = MixtureDataset(cuts, n_src=2, n_samples=8000)[(0, batch_cuts)]
    always = MixtureDataset(cuts, n_src=2, n_samples=8000, class_audio_query=1.0)
    batch = always[(0, batch_cuts)]
    assert torch.equal(batch["sources"], always[(0, batch_cuts)]["sources"])  # seeded
    assert torch.equal(batch["audio_emb"], always[(0, batch_cuts)]["audio_emb"])
    changed = 0
    for b in range(4):
        for i in range(2):
            query = batch["audio_emb"][b, i]
            clips = torch.stack(by_label[batch["labels"][b][i]])
            assert abs(float(query.norm()) - 1.0) < 1e-5
            # the normalised mean of 1-3 of its label's clips
            found = any(torch.allclose(query, torch.nn.functional.normalize(
                clips[list(subset)].mean(0), dim=0), atol=1e-5)
                for k in range(1, 4) for subset in itertools.combinations(range(3), k))
            assert found
            changed += not torch.allclose(query, own["audio_emb"][b, i], atol=1e-5)
    assert changed > 0
    # the text queries and the audio are untouched
    assert torch.equal(batch["text_emb"], own["text_emb"])
    assert torch.equal(batch["mixture"], own["mixture"])
    never = MixtureDataset(cuts, n_src=2, n_samples=8000, class_audio_query=0.0)[(0, batch_cuts)]
    assert torch.equal(never["audio_emb"], own["audio_emb"])
    with pytest.raises(ValueError, match="probability"):
        MixtureDataset(cuts, class_audio_query=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        MixtureDataset(cuts, class_audio_clips=0)


def test_similar_partners_are_drawn_from_like_named_classes(tmp_path):
    cuts = dummy_embedded_cuts(tmp_path, n_classes=6, per_class=2, seconds=1.0)
    text = {}
    for cut in cuts:
        text[cut_label(cut)] = torch.from_numpy(cut.load_custom("text_emb")).double()
    nearest = {lab: max((o for o in text if o != lab), key=lambda o: float(text[lab] @ text[o]))
               for lab in text}
    batch_cuts = cuts.subset(first=4)
    kw = dict(n_src=3, min_src=2, max_src=2, n_samples=8000)
    plain = MixtureDataset(cuts, **kw)[(0, batch_cuts)]
    alike = MixtureDataset(cuts, similar_partners=1.0, similar_temperature=1e-3, **kw)
    batch = alike[(0, batch_cuts)]
    assert batch["labels"] == alike[(0, batch_cuts)]["labels"]  # seeded
    for b, labels in enumerate(batch["labels"]):
        assert len(set(labels)) == 3
        assert labels[0] == plain["labels"][b][0]
        absent = plain["labels"][b][2]
        # the real partner is the lead's nearest label (unless that one is the absent target)
        assert labels[1] == nearest[labels[0]] or nearest[labels[0]] == absent
        assert labels[2] == absent                      # absent targets are not redrawn
        assert not torch.any(batch["sources"][b, 2])
    assert any(labels[1] != p[1] for labels, p in zip(batch["labels"], plain["labels"]))
    # at chance 0 the batches are the plain ones, draw for draw
    never = MixtureDataset(cuts, similar_partners=0.0, **kw)[(0, batch_cuts)]
    assert never["labels"] == plain["labels"] and torch.equal(never["mixture"], plain["mixture"])
    with pytest.raises(ValueError, match="probability"):
        MixtureDataset(cuts, similar_partners=-0.1)
    with pytest.raises(ValueError, match="positive"):
        MixtureDataset(cuts, similar_temperature=0.0)
