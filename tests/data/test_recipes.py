import logging
import os

import pytest
from lhotse import CutSet, RecordingSet, SupervisionSet
from lhotse.qa import validate_recordings_and_supervisions

from omnisep_plugin.data.recipes import prepare_music, prepare_vggsound
from omnisep_plugin.testing.fake_corpus import make_fake_music, make_fake_vggsound


def _load_split(out, corpus, split):
    recs = RecordingSet.from_file(out / f"{corpus}_recordings_{split}.jsonl.gz")
    sups = SupervisionSet.from_file(out / f"{corpus}_supervisions_{split}.jsonl.gz")
    cuts = CutSet.from_file(out / f"{corpus}_cuts_{split}.jsonl.gz")
    return recs, sups, cuts


def test_music_audio_layout(tmp_path):
    corpus, out = tmp_path / "MUSIC", tmp_path / "manifests"
    videos = make_fake_music(corpus, per_class=4, seconds=5)
    manifests = prepare_music(corpus, out, instruments=list(videos))
    # 4 videos per instrument: 1 test, 1 valid, 2 train each.
    assert {s: len(m["cuts"]) for s, m in manifests.items()} == {"train": 6, "valid": 3, "test": 3}
    for split in ("train", "valid", "test"):
        recs, sups, cuts = _load_split(out, "music", split)
        validate_recordings_and_supervisions(recs, sups)
        assert len(cuts) == len(manifests[split]["cuts"])
        for cut in cuts:
            sup = cut.supervisions[0]
            label = sup.custom["label"]
            assert cut.id.startswith(label + "-")
            assert sup.custom["text"] and label.split("_")[0] in sup.custom["text"].lower()
            assert len(sup.custom["frames"]) == 5
            assert all(os.path.isfile(f) and f"/{label}/" in f for f in sup.custom["frames"])
            assert cut.duration == pytest.approx(5.0) and cut.sampling_rate == 16000
    # No temporary files left beside the manifests.
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_music_second_run_reads_cache(tmp_path):
    corpus, out = tmp_path / "MUSIC", tmp_path / "manifests"
    make_fake_music(corpus)
    prepare_music(corpus, out, instruments=["violin", "flute", "cello"])
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = prepare_music(corpus, out, instruments=["violin", "flute", "cello"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert sum(len(m["cuts"]) for m in again.values()) == 9


def test_music_skips_and_reports_bad_clips(tmp_path, caplog):
    corpus, out = tmp_path / "MUSIC", tmp_path / "manifests"
    make_fake_music(corpus, instruments=("violin", "flute", "cello", "kazoo"))
    (corpus / "audio/violin/vi000.wav").write_bytes(b"RIFF....garbage")  # corrupt wav
    for f in (corpus / "frames/flute/fl001").iterdir():
        f.unlink()
    (corpus / "frames/flute/fl001").rmdir()  # missing frame folder
    (corpus / "audio/cello/ce002.wav").unlink()  # missing audio
    with caplog.at_level(logging.WARNING):
        manifests = prepare_music(corpus, out, instruments=["violin", "flute", "cello"])
    ids = {c.id for m in manifests.values() for c in m["cuts"]}
    assert len(ids) == 6
    assert not {"violin-vi000", "flute-fl001", "cello-ce002"} & ids
    text = caplog.text
    for reason in ("unreadable audio", "missing frames", "missing audio", "kazoo"):
        assert reason in text
    assert "skipped" in text


def test_music_video_layout_extracts_once(tmp_path):
    corpus, out = tmp_path / "MUSIC", tmp_path / "manifests"
    make_fake_music(corpus, instruments=("violin", "flute"), per_class=3, seconds=5,
                    layout="video")
    manifests = prepare_music(corpus, out, instruments=["violin", "flute"])
    assert sum(len(m["cuts"]) for m in manifests.values()) == 6
    wav = corpus / "audio/violin/vi001.wav"  # recorded at 44.1 kHz in the video
    cut = next(c for m in manifests.values() for c in m["cuts"] if c.id == "violin-vi001")
    assert cut.sampling_rate == 16000 and cut.duration == pytest.approx(5.0, abs=0.1)
    assert 4 <= len(cut.supervisions[0].custom["frames"]) <= 6
    stamp = wav.stat().st_mtime_ns
    for p in out.iterdir():
        p.unlink()
    prepare_music(corpus, out, instruments=["violin", "flute"])
    assert wav.stat().st_mtime_ns == stamp  # not extracted again


def test_music_short_clips_and_bad_list(tmp_path):
    corpus = tmp_path / "MUSIC"
    make_fake_music(corpus, seconds=3)  # shorter than the 65535-sample crop
    with pytest.raises(ValueError, match=r"MUSIC: no clip kept \(9 shorter than the crop\)"):
        prepare_music(corpus, instruments=["violin", "flute", "cello"])
    assert len(prepare_music(corpus, instruments=["violin", "flute", "cello"],
                             min_samples=16000)["train"]["cuts"]) == 3
    (corpus / "MUSIC_solo_videos.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        prepare_music(corpus)
    with pytest.raises(FileNotFoundError, match="corpus folder"):
        prepare_music(tmp_path / "nowhere")


def test_vggsound_splits_instrument_filter_and_clean_list(tmp_path):
    corpus, out = tmp_path / "VGG", tmp_path / "manifests"
    rows = make_fake_vggsound(corpus, per_class=4)
    clean = tmp_path / "clean.txt"
    clean.write_text("y0x3_000030\ny2x3_000030\n")  # one dog, one violin test clip
    manifests = prepare_vggsound(corpus, out, clean_lists={"test_clean": clean},
                                 valid_fraction=0.0)
    labels = {s: sorted({c.supervisions[0].custom["label"] for c in m["cuts"]})
              for s, m in manifests.items()}
    assert labels["train"] == ["dog barking", "helicopter"]  # the violin class is dropped
    assert len(manifests["train"]["cuts"]) == 6
    assert [c.id for c in manifests["test"]["cuts"]] == ["y1x3_000030"]
    assert sorted(c.id for c in manifests["test_clean"]["cuts"]) == ["y0x3_000030", "y2x3_000030"]
    cut = manifests["train"]["cuts"][0]
    assert cut.supervisions[0].custom["text"] == "A dog letting out barking noises."
    assert (out / "vggsound_cuts_test_clean.jsonl.gz").is_file()
    kept = prepare_vggsound(corpus, clean_lists={"test_clean": clean}, drop_instruments=False,
                            valid_fraction=0.0)
    assert len(kept["train"]["cuts"]) == 9
    # every clip of the CSV lands in exactly one split (none lost, none twice)
    ids = [c.id for m in kept.values() for c in m["cuts"]]
    assert sorted(ids) == sorted(f"{yid}_{start:06d}" for yid, start, _, _ in rows)
    assert {c.id for c in kept["test"]["cuts"]} == {
        f"{yid}_{start:06d}" for yid, start, _, split in rows if split == "test"} - {
        "y0x3_000030", "y2x3_000030"}  # the clean list's clips form their own split


def test_vggsound_video_layout_and_errors(tmp_path):
    corpus = tmp_path / "VGG"
    make_fake_vggsound(corpus, labels=("dog barking", "helicopter"), per_class=2, layout="video")
    manifests = prepare_vggsound(corpus, valid_fraction=0.0)
    assert len(manifests["train"]["cuts"]) == 2 and len(manifests["test"]["cuts"]) == 2
    (corpus / "vggsound.csv").write_text("a,b,c\n")
    with pytest.raises(ValueError, match="youtube_id,start_seconds,label,split"):
        prepare_vggsound(corpus)
    with pytest.raises(FileNotFoundError, match="Clean test list"):
        prepare_vggsound(corpus, clean_lists={"test_clean": tmp_path / "none.txt"})
