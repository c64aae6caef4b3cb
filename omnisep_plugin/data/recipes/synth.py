"""Offline MUSIC-like and VGGSound-like corpora rendered with FluidSynth from recorded samples.

Needs the Debian packages ``fluidsynth`` (libfluidsynth, used through ``pyfluidsynth``) and
``fluid-soundfont-gm`` (FluidR3_GM.sf2: real recorded General MIDI instrument samples).
Never point it at the MuseScore General soundfonts: they are reserved for independent
evaluation.

- ``synth_music``: the MUSIC instruments General MIDI has (accordion, acoustic guitar,
  cello, clarinet, flute, saxophone, trumpet, tuba, violin, xylophone) plus the oboe in
  place of the erhu (GM has no erhu; its "fiddle" uses the violin's samples in FluidR3).
  Each clip is a seeded random melody: tempo 60-160 BPM, a random scale and register in the
  instrument's range, note lengths from sixteenths to half notes, legato to staccato
  articulation, dynamics with per-note variation and swells, occasional rests (and strummed
  chords on guitar / accordion).
- ``synth_sfx``: GM sound-effect programs and the drum kit (helicopter, applause, gunshot,
  seashore, bird, telephone, breath, fret noise, drums); each preset is one sample, so
  every clip varies pitch, note rate, envelope and a random low/high-pass filter.

Layout written: ``<corpus_dir>/audio/<label>/<split>-<index>.wav`` (16 kHz mono) and
``<corpus_dir>/clips.json`` (``{split: {label: [ids]}}``); splits use disjoint seeds, so they
share no melody. :func:`prepare_synth` turns it into the same Lhotse manifests as MUSIC.
"""
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import soundfile as sf
from lhotse.utils import Pathlike

from ...utils import atomic_write
from ..descriptions import descriptions_for
from .common import CROP_SAMPLES, SAMPLE_RATE, Clip, PrepareSummary, build_manifests, finish, read_cached

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL_HINT = ("apt-get install --no-install-recommends fluidsynth fluid-soundfont-gm "
                "(and pip install pyfluidsynth)")

#: label -> (GM program, lowest MIDI note, highest MIDI note)
SYNTH_INSTRUMENTS = {
    "accordion": (21, 53, 81), "acoustic_guitar": (24, 40, 76), "cello": (42, 36, 69),
    "clarinet": (71, 50, 84), "flute": (73, 60, 93), "oboe": (68, 58, 88),
    "saxophone": (65, 49, 80), "trumpet": (56, 55, 82), "tuba": (58, 28, 58),
    "violin": (40, 55, 91), "xylophone": (13, 65, 96),
}
#: label -> GM program (None: the drum kit on channel 10)
SYNTH_SFX = {
    "fret_noise": 120, "breath": 121, "seashore": 122, "bird": 123, "telephone": 124,
    "helicopter": 125, "applause": 126, "gunshot": 127, "drums": None,
}
SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10],
          "pentatonic": [0, 2, 4, 7, 9], "dorian": [0, 2, 3, 5, 7, 9, 10]}
CORPORA = {"synth_music": SYNTH_INSTRUMENTS, "synth_sfx": SYNTH_SFX}
SPLIT_SEEDS = {"train": 0, "valid": 1_000_000, "test": 2_000_000}

_SYNTHS = {}


def _synth(soundfont: Path = SOUNDFONT):
    """One FluidSynth instance per soundfont and process (loading one takes a while)."""
    key = str(soundfont)
    if key not in _SYNTHS:
        try:
            import fluidsynth
        except (ImportError, OSError) as err:
            raise RuntimeError(f"FluidSynth is not available ({err}): {INSTALL_HINT}") from None
        if not Path(soundfont).is_file():
            raise RuntimeError(f"No soundfont at {soundfont}: {INSTALL_HINT}")
        synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=0.5)
        sfid = synth.sfload(key)
        if sfid < 0:
            raise RuntimeError(f"FluidSynth could not load {soundfont}")
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key]


def render_events(synth, events, seconds: float, channel: int,
                  tail_samples: int = SAMPLE_RATE // 2) -> np.ndarray:
    """Render ``(time_s, 'on'|'off', note, velocity)`` events with ``synth``; mono float32 of
    ``seconds``. Afterwards every note is released and ``tail_samples`` are rendered and
    dropped, so that the tails do not leak into the next clip."""
    total = int(seconds * SAMPLE_RATE)
    out, pos = [], 0
    for t, kind, note, vel in sorted(events, key=lambda e: (e[0], e[1] == "on")):
        n = min(int(t * SAMPLE_RATE), total) - pos
        if n > 0:
            out.append(synth.get_samples(n))
            pos += n
        if kind == "on":
            synth.noteon(channel, note, vel)
        else:
            synth.noteoff(channel, note)
    if total > pos:
        out.append(synth.get_samples(total - pos))
    for note in range(128):
        synth.noteoff(channel, note)
    synth.get_samples(tail_samples)
    stereo = np.concatenate(out).astype(np.float32).reshape(-1, 2) / 32768.0
    return stereo.mean(1)


def _render_events(events, seconds: float, channel: int) -> np.ndarray:
    """:func:`render_events` with the FluidR3_GM synth."""
    return render_events(_synth()[0], events, seconds, channel)


def _melody_events(rng: np.random.Generator, low: int, high: int, seconds: float,
                   chords: bool):
    bpm = rng.uniform(60, 160)
    beat = 60.0 / bpm
    scale = SCALES[rng.choice(list(SCALES))]
    span = high - low
    centre = rng.integers(low + span // 4, high - span // 4 + 1)
    root = centre - rng.integers(0, 12)
    pitches = [p for p in range(low, high + 1) if (p - root) % 12 in scale]
    idx = int(np.argmin([abs(p - centre) for p in pitches]))
    articulation = rng.uniform(0.3, 1.0)
    velocity = rng.uniform(50, 115)
    swell = rng.uniform(-30, 30)
    events, t = [], rng.uniform(0, 0.3)
    while t < seconds:
        length = beat * rng.choice([0.25, 0.5, 0.5, 1, 1, 1, 2])
        if rng.random() < 0.1:
            t += length  # a rest
            continue
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(pitches) - 1))
        vel = int(np.clip(velocity + swell * (t / seconds - 0.5) + rng.normal(0, 6), 20, 127))
        notes = [pitches[idx]]
        if chords and rng.random() < 0.3:
            notes += [pitches[min(idx + 2, len(pitches) - 1)], pitches[min(idx + 4, len(pitches) - 1)]]
        for k, note in enumerate(notes):
            start = t + 0.015 * k  # strum
            events += [(start, "on", int(note), vel), (start + length * articulation, "off", int(note), 0)]
        t += length
    return events


def _sfx_events(rng: np.random.Generator, seconds: float, drums: bool):
    events, t = [], rng.uniform(0, 0.5)
    rate = rng.uniform(0.8, 4.0) if drums else rng.uniform(0.3, 2.0)  # notes per second
    kit = rng.choice(np.arange(35, 82), size=rng.integers(3, 7), replace=False)
    centre = rng.integers(48, 73)
    while t < seconds:
        length = rng.uniform(0.1, 1.5) / rate * 2
        note = int(rng.choice(kit)) if drums else int(np.clip(centre + rng.integers(-7, 8), 0, 127))
        vel = int(rng.uniform(40, 127))
        events += [(t, "on", note, vel), (t + length, "off", note, 0)]
        t += rng.exponential(1.0 / rate)
    return events


def _shape(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random amplitude envelope and low/high-pass filter (sound-effect variety)."""
    import torch
    import torchaudio.functional as AF

    n = len(wav)
    knots = rng.uniform(0.2, 1.0, size=rng.integers(2, 6))
    env = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(knots)), knots)
    x = torch.from_numpy((wav * env).astype(np.float32))
    if rng.random() < 0.5:
        x = AF.lowpass_biquad(x, SAMPLE_RATE, float(rng.uniform(1500, 7000)))
    if rng.random() < 0.5:
        x = AF.highpass_biquad(x, SAMPLE_RATE, float(rng.uniform(60, 800)))
    return x.numpy()


def render_clip(corpus: str, label: str, seed: int, seconds: float) -> np.ndarray:
    """One clip of ``label``: float32 mono at 16 kHz, peak-normalised to a random level."""
    synth, sfid = _synth()
    rng = np.random.default_rng(seed)
    if corpus == "synth_music":
        program, low, high = SYNTH_INSTRUMENTS[label]
        synth.program_select(0, sfid, 0, program)
        events = _melody_events(rng, low, high, seconds, label in ("acoustic_guitar", "accordion"))
        wav = _render_events(events, seconds, channel=0)
    else:
        program = SYNTH_SFX[label]
        drums = program is None
        channel = 9 if drums else 0
        synth.program_select(channel, sfid, 128 if drums else 0, 0 if drums else program)
        wav = _shape(_render_events(_sfx_events(rng, seconds, drums), seconds, channel), rng)
    peak = np.abs(wav).max()
    if peak < 1e-4:
        raise RuntimeError(f"Rendered a silent clip for {label} (seed {seed})")
    return (wav / peak * rng.uniform(0.3, 0.9)).astype(np.float32)


def _render_job(job):
    corpus, label, seed, seconds, path = job
    if Path(path).is_file():
        return 0.0
    wav = render_clip(corpus, label, seed, seconds)
    with atomic_write(path) as tmp:
        sf.write(tmp, wav, SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return seconds


def render_corpus(corpus_dir: Pathlike, corpus: str = "synth_music",
                  labels: Optional[Sequence[str]] = None,
                  clips_per_split: Optional[Dict[str, int]] = None, seconds: float = 6.0,
                  num_jobs: int = 1) -> Dict[str, float]:
    """Render (or complete: existing clips are kept) a synthetic corpus.

    Returns ``{"rendered_s": audio seconds rendered now, "wall_s": ..., "x_real_time": ...}``.
    """
    if corpus not in CORPORA:
        raise ValueError(f"Unknown synthetic corpus {corpus!r}; expected one of {sorted(CORPORA)}")
    labels = list(labels or CORPORA[corpus])
    unknown = set(labels) - set(CORPORA[corpus])
    if unknown:
        raise ValueError(f"Unknown {corpus} labels {sorted(unknown)}; known: {sorted(CORPORA[corpus])}")
    _synth()  # fail early, with the install hint, if FluidSynth is missing
    clips_per_split = clips_per_split or {"train": 60, "valid": 6, "test": 10}
    corpus_dir = Path(corpus_dir)
    listing, jobs = {}, []
    for split, n in clips_per_split.items():
        listing[split] = {}
        for li, label in enumerate(labels):
            ids = [f"{split}-{i:04d}" for i in range(n)]
            listing[split][label] = ids
            for i, clip_id in enumerate(ids):
                seed = SPLIT_SEEDS.get(split, 3_000_000) + 1000 * li + i + 7919 * (corpus == "synth_sfx")
                jobs.append((corpus, label, seed, seconds, str(corpus_dir / "audio" / label / f"{clip_id}.wav")))
    start = time.perf_counter()
    if num_jobs > 1:
        with ProcessPoolExecutor(num_jobs) as pool:
            rendered = sum(pool.map(_render_job, jobs, chunksize=8))
    else:
        rendered = sum(_render_job(j) for j in jobs)
    wall = time.perf_counter() - start
    with atomic_write(corpus_dir / "clips.json") as tmp:
        Path(tmp).write_text(json.dumps({"corpus": corpus, "seconds": seconds, "clips": listing}))
    stats = {"rendered_s": rendered, "wall_s": wall,
             "x_real_time": rendered / wall if rendered else float("nan")}
    logging.info("%s: rendered %.0f s of audio in %.1f s (%.0fx real time)", corpus, rendered,
                 wall, stats["x_real_time"])
    return stats


def prepare_synth(corpus_dir: Pathlike, output_dir: Optional[Pathlike] = None,
                  min_samples: int = CROP_SAMPLES) -> Dict[str, Dict[str, object]]:
    """Manifests of a rendered corpus, named ``<corpus>_<type>_<split>.jsonl.gz``; each cut's
    supervision has ``label``, ``text`` (free-text description) and no frames."""
    corpus_dir = Path(corpus_dir)
    listing_path = corpus_dir / "clips.json"
    if not listing_path.is_file():
        raise FileNotFoundError(f"No clips.json in {corpus_dir}: render the corpus first")
    listing = json.loads(listing_path.read_text())
    corpus, clips_by_split = listing["corpus"], listing["clips"]
    cached = read_cached(output_dir, corpus, list(clips_by_split))
    clips = [Clip(clip_id=f"{label}-{cid}", label=label, split=split, rel=f"{label}/{cid}")
             for split, by_label in clips_by_split.items() if split not in cached
             for label, ids in by_label.items() for cid in ids]
    labels = sorted({c.label for c in clips} | {lab for b in clips_by_split.values() for lab in b})
    summary = PrepareSummary()
    manifests = build_manifests(corpus_dir, clips, descriptions_for(labels), summary,
                                min_samples, require_frames=False)
    return finish(manifests, cached, output_dir, corpus, summary)
