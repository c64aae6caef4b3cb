"""Instruments rendered from a GUS patch set (Debian's ``freepats``) by TiMidity++.

FluidSynth reads soundfonts only; a patch set is a folder of ``.pat`` recordings and a
TiMidity++ configuration that maps General MIDI programs and percussion notes onto them.
Both come from the package cache (``timidity`` and its ``libao4`` unpacked by ``dpkg -x``,
nothing installed): :func:`render_batch` writes one Standard MIDI File per clip and renders a
whole batch with one TiMidity++ process (each process sleeps a second at start-up).

Events are those of :func:`omnisep_plugin.data.recipes.omni.instrument_events`:
``(time_s, 'on'|'off', note, velocity)``.
"""
import os
import re
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np
import soundfile as sf

from .common import SAMPLE_RATE

#: ticks per quarter note and tempo of every written MIDI file: 960 ticks per second
TICKS_PER_QUARTER, MICROSECONDS_PER_QUARTER = 480, 500_000
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 / MICROSECONDS_PER_QUARTER


def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(events: Sequence[tuple], channel: int, program: int) -> bytes:
    """A Standard MIDI File (format 0) that plays ``events`` on ``channel`` with ``program``
    (ignored on channel 9, General MIDI percussion). At equal times a note-off comes first."""
    track = bytearray(b"\x00\xff\x51\x03" + MICROSECONDS_PER_QUARTER.to_bytes(3, "big"))
    if channel != 9:
        track += bytes([0, 0xC0 | channel, program])
    last = 0
    for t, kind, note, vel in sorted(events, key=lambda e: (e[0], e[1] == "on")):
        tick = int(round(t * TICKS_PER_SECOND))
        track += _varlen(tick - last)
        last = tick
        track += bytes([(0x90 if kind == "on" else 0x80) | channel, note, vel if kind == "on" else 0])
    track += b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
            + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


def coverage(cfg: Path) -> Tuple[Set[int], Set[int]]:
    """``(programs, drum notes)`` that a TiMidity++ configuration maps onto patches
    (bank 0 and drumset 0 only: the General MIDI sets)."""
    programs: Set[int] = set()
    drums: Set[int] = set()
    target = None
    for line in Path(cfg).read_text(errors="replace").splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in ("bank", "drumset"):
            target = (programs if words[0] == "bank" else drums) if words[1:] == ["0"] else None
        elif target is not None and words[0].isdigit() and len(words) > 1:
            target.add(int(words[0]))
    return programs, drums


def local_config(cfg: Path, package_root: Path, out: Path) -> Path:
    """A copy of ``cfg`` (from a package unpacked at ``package_root``) whose ``dir`` lines
    point into the unpacked package instead of the system."""
    text = re.sub(r"^(\s*dir\s+)/", lambda m: f"{m.group(1)}{package_root}/",
                  Path(cfg).read_text(errors="replace"), flags=re.M)
    out.write_text(text)
    return out


def timidity(roots: Dict[str, Path]) -> Tuple[Path, Dict[str, str]]:
    """The unpacked TiMidity++ binary and the environment that finds its libraries (those
    of the packages in ``roots``: TiMidity++ and what it needs)."""
    binary = roots["timidity"] / "usr/bin/timidity"
    if not binary.is_file():
        raise RuntimeError(f"No TiMidity++ at {binary}: fetch the Debian package 'timidity' first")
    libs = [str(p) for r in roots.values() for p in sorted((r / "usr/lib").glob("*-linux-gnu"))]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    return binary, env


def render_batch(cfg: Path, package_root: Path, roots: Dict[str, Path],
                 items: Sequence[Tuple[Sequence[tuple], int, int, float]]) -> List[np.ndarray]:
    """Render ``(events, channel, program, seconds)`` items with one TiMidity++ process.

    Returns mono float32 at 16 kHz, each exactly ``seconds`` long (a note still sounding at the
    end is cut, as a clip of a longer performance).
    """
    binary, env = timidity(roots)
    with tempfile.TemporaryDirectory(prefix="omnisep-timidity-") as tmp:
        tmp = Path(tmp)
        local = local_config(cfg, package_root, tmp / "patches.cfg")
        mids = []
        for k, (events, channel, program, _) in enumerate(items):
            mids.append(tmp / f"{k:05d}.mid")
            mids[-1].write_bytes(midi_bytes(events, channel, program))
        run = subprocess.run([str(binary), "-c", str(local), "-OwM", "-s", str(SAMPLE_RATE), "-idq",
                              "--preserve-silence", *map(str, mids)],
                             cwd=tmp, env=env, capture_output=True, text=True)
        wav_paths = [mid.with_suffix(".wav") for mid in mids]
        if run.returncode != 0 or not all(p.is_file() for p in wav_paths):
            raise RuntimeError(f"TiMidity++ failed on {len(items)} clips (exit {run.returncode}): "
                               f"{(run.stderr or run.stdout).strip()[-300:]}")
        out = []
        for wav_path, (_, _, _, seconds) in zip(wav_paths, items):
            wav, sr = sf.read(wav_path, dtype="float32", always_2d=True)
            if sr != SAMPLE_RATE:
                raise RuntimeError(f"TiMidity++ wrote {sr} Hz, not {SAMPLE_RATE}")
            n = int(seconds * SAMPLE_RATE)
            wav = wav.mean(1)[:n]
            out.append(np.pad(wav, (0, n - len(wav))))
        return out
