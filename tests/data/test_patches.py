"""Instruments from a GUS patch set (freepats) rendered by TiMidity++: the MIDI files written,
the patch set's coverage, and real renders (CI installs timidity and freepats)."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from omnisep_plugin.data.recipes import omni, patches

FREEPATS = Path("/etc/timidity/freepats.cfg")
INSTALLED = {"timidity": Path("/"), "freepats": Path("/")}  # the system's copies as package roots
needs_timidity = pytest.mark.skipif(shutil.which("timidity") is None or not FREEPATS.is_file(),
                                    reason="CI installs timidity and freepats (.ci/install)")


def _onset_and_pitch(wav: np.ndarray, sr: int = 16000):
    env = np.abs(wav)
    onset = np.argmax(env > 0.01 * env.max()) / sr
    seg = wav[int(onset * sr) + sr // 4: int(onset * sr) + 3 * sr // 4]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    return onset, np.fft.rfftfreq(len(seg), 1 / sr)[spec.argmax()]


def test_midi_bytes_is_a_format_0_file_with_one_event_per_note_edge():
    events = [(0.5, "on", 60, 100), (1.0, "off", 60, 0), (1.0, "on", 62, 90), (2.0, "off", 62, 0)]
    data = patches.midi_bytes(events, channel=0, program=71)
    assert data[:4] == b"MThd" and data[8:10] == b"\x00\x00"  # format 0
    track = data[data.index(b"MTrk") + 8:]
    assert b"\xc0\x47" in track                        # program change to 71 (clarinet)
    status = [track[i] for i in range(len(track)) if track[i] in (0x90, 0x80)]
    assert status == [0x90, 0x80, 0x90, 0x80]          # at 1.0 s the note-off comes first
    assert track.endswith(b"\xff\x2f\x00")
    drums = patches.midi_bytes([(0.0, "on", 38, 100), (0.1, "off", 38, 0)], channel=9, program=5)
    assert b"\xc9" not in drums and b"\x99\x26\x64" in drums  # no program change on percussion


def test_coverage_reads_bank_0_and_drumset_0_only(tmp_path):
    cfg = tmp_path / "set.cfg"
    cfg.write_text("dir /usr/share/midi/set\n# comment 7 x.pat\ndrumset 0\n 35 Drum/kick.pat amp=100\n"
                   "38 Drum/snare.pat\nbank 0\n 0 Tone/piano.pat pan=center\n 40 Tone/violin.pat\n"
                   "bank 8\n 1 Tone/other.pat\n")
    assert patches.coverage(cfg) == ({0, 40}, {35, 38})
    local = patches.local_config(cfg, Path("/cache/pkgs/set"), tmp_path / "local.cfg")
    assert local.read_text().splitlines()[0] == "dir /cache/pkgs/set/usr/share/midi/set"


def test_playable_keeps_what_the_patch_set_has():
    table = omni.load_instruments()
    programs, drums = {40, 42}, {38, 60}
    assert omni.playable(table["violin"], programs, drums) == table["violin"]
    assert omni.playable(table["viola"], programs, drums) is None
    assert omni.playable(table["snare drum"], programs, drums).drum_notes == (38,)  # 40 is missing
    assert omni.playable(table["drum kit"], programs, drums) is None  # a kit needs every note
    assert omni.playable(table["drum kit"], programs, omni.KIT_NOTES) == table["drum kit"]


def test_a_missing_timidity_is_named(tmp_path):
    with pytest.raises(RuntimeError, match="No TiMidity"):
        patches.render_batch(FREEPATS, tmp_path, {"timidity": tmp_path}, [([], 0, 0, 1.0)])


@needs_timidity
def test_render_batch_plays_each_note_at_its_time_and_pitch():
    a3 = [(0.5, "on", 57, 100), (1.5, "off", 57, 0)]
    items = [(a3, 0, 40, 2.0), (a3, 0, 0, 2.0), ([(0.3, "on", 38, 100), (0.5, "off", 38, 0)], 9, 0, 1.0)]
    violin, piano, snare = patches.render_batch(FREEPATS, Path("/"), INSTALLED, items)
    assert len(violin) == len(piano) == 32000 and len(snare) == 16000 and violin.dtype == np.float32
    for wav in (violin, piano):
        onset, pitch = _onset_and_pitch(wav)
        assert onset == pytest.approx(0.5, abs=0.01)   # leading silence kept
        assert pitch == pytest.approx(220.0, rel=0.03)
    assert not np.allclose(violin, piano, atol=1e-3)     # the program change took
    assert _onset_and_pitch(snare)[0] == pytest.approx(0.3, abs=0.01) and np.abs(snare).max() > 0.01


@needs_timidity
def test_a_train_only_patch_set_adds_renders_to_the_training_split(tmp_path):
    cache = tmp_path / "cache" / "pkgs"
    for package, target in (("freepats", "etc/timidity/freepats.cfg"),
                            ("freepats", "usr/share/midi/freepats"), ("timidity", "usr/bin/timidity")):
        (cache / package / target).parent.mkdir(parents=True, exist_ok=True)
        (cache / package / target).symlink_to(Path("/") / target)
    roots = {"freepats": cache / "freepats", "timidity": cache / "timidity"}
    table = omni.load_instruments()
    instruments = {k: table[k] for k in ("cello", "viola", "snare drum")}
    plan = omni.CorpusPlan(seconds=2.0, instrument_clips={"train": 2, "test": 1},
                           soundfonts=(), heldout_soundfont="", train_only_soundfonts=("freepats",))
    assert {"freepats", "timidity", "libao4"} <= set(omni.packages_needed([], plan.fonts()))
    jobs = omni.instrument_clips(roots, instruments, plan)
    corpus = tmp_path / "corpus"
    job = (corpus, {"timidity": roots["timidity"]}, roots["freepats"], jobs[0][1][0],
           [(c, instruments[c.label], seed, 2.0) for c, (_, seed) in jobs])
    done = omni._patch_batch_job(job)
    written = {c.label for (c, _), d in zip(jobs, done) if d > 0}
    assert written == {"cello", "snare drum"}            # freepats has no viola
    assert all(d == -1 for (c, _), d in zip(jobs, done) if c.label == "viola")
    for c, _ in jobs:
        assert c.split == "train" and c.source_package == "freepats" and c.license == "GPL-2+"
    wavs = sorted((corpus / "audio").rglob("*.wav"))
    assert len(wavs) == 4
    level = omni.active_rms_db(sf.read(wavs[0], dtype="float32")[0])
    assert level == pytest.approx(omni.TARGET_RMS_DB, abs=0.5) or level < omni.TARGET_RMS_DB
    again = omni._patch_batch_job(job)
    assert [d for d in again if d >= 0] == [0.0] * 4     # resumable: nothing rendered twice
