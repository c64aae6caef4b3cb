"""Tiny fake MUSIC / VGGSound corpora on disk, in both layouts, for tests and examples."""
import json
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import soundfile as sf
from PIL import Image

from .dummies import harmonic_tone

SR = 16000


def _class_audio(class_index: int, clip_index: int, seconds: float, sr: int = SR) -> np.ndarray:
    freq = 110 * 2 ** (class_index * 7 / 12) * (1 + 0.01 * clip_index)
    return harmonic_tone(freq, seconds, sr, n_harmonics=2 + class_index % 4).numpy()


def _write_frames(folder: Path, class_index: int, seconds: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    color = np.array([(class_index * 70) % 256, (class_index * 130) % 256, 90], dtype=np.uint8)
    for s in range(int(seconds)):
        pixels = np.tile(color, (24, 32, 1))
        pixels[:, s % 32] = 255
        Image.fromarray(pixels).save(folder / f"{s + 1:06d}.jpg")


def _write_clip(root: Path, rel: str, class_index: int, clip_index: int, seconds: float,
                layout: str) -> None:
    if layout == "audio":
        audio = _class_audio(class_index, clip_index, seconds)
        wav = root / "audio" / f"{rel}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, audio, SR)
        _write_frames(root / "frames" / rel, class_index, seconds)
        return
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the video layout needs ffmpeg")
    tmp = root / "_tmp"
    _write_frames(tmp / rel, class_index, seconds)
    sr = 44100 if clip_index % 2 else SR  # videos carry other rates too
    sf.write(tmp / "a.wav", _class_audio(class_index, clip_index, seconds, sr), sr)
    video = root / "videos" / f"{rel}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-framerate", "1",
                    "-i", str(tmp / rel / "%06d.jpg"), "-i", str(tmp / "a.wav"),
                    "-c:v", "mpeg4", "-r", "5", "-c:a", "aac", "-shortest", str(video)],
                   check=True)
    shutil.rmtree(tmp)


def make_fake_music(root: Path, instruments: Sequence[str] = ("violin", "flute", "cello"),
                    per_class: int = 3, seconds: float = 5.0, layout: str = "audio") -> Dict[str, list]:
    """Write a MUSIC-layout corpus: ``MUSIC_solo_videos.json`` plus per-clip audio+frames
    (``layout="audio"``) or mp4 videos (``layout="video"``). Returns the video list."""
    root = Path(root)
    videos = {inst: [f"{inst[:2]}{k:03d}" for k in range(per_class)] for inst in instruments}
    for ci, (inst, ids) in enumerate(videos.items()):
        for k, vid in enumerate(ids):
            _write_clip(root, f"{inst}/{vid}", ci, k, seconds, layout)
    root.mkdir(parents=True, exist_ok=True)
    (root / "MUSIC_solo_videos.json").write_text(json.dumps({"videos": videos}))
    return videos


def make_fake_vggsound(root: Path, labels: Sequence[str] = ("dog barking", "helicopter",
                                                            "playing violin, fiddle"),
                       per_class: int = 3, seconds: float = 5.0, layout: str = "audio") -> list:
    """Write a VGGSound-layout corpus: ``vggsound.csv`` (last clip of each class in ``test``)
    plus ``audio/<clip>.wav`` + ``frames/<clip>/`` or ``videos/<clip>.mp4``. Returns rows."""
    root = Path(root)
    rows = []
    for ci, label in enumerate(labels):
        for k in range(per_class):
            yid, start = f"y{ci}x{k}", 10 * k
            split = "test" if k == per_class - 1 else "train"
            rows.append((yid, start, label, split))
            _write_clip(root, f"{yid}_{start:06d}", ci, k, seconds, layout)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "vggsound.csv", "w") as f:
        for yid, start, label, split in rows:
            f.write(f'{yid},{start},"{label}",{split}\n')
    return rows


def make_labelled_folder(root: Path, per_label: int = 10) -> None:
    """A folder per label (``omnisep prepare custom``): ``root/{dog,siren}/`` with
    ``per_label`` 4.5-s tones each (one in a sub-folder), plus a 22.05-kHz stereo FLAC dog,
    a siren too short for the training crop and a text file."""
    root = Path(root)
    for li, label in enumerate(("dog", "siren")):
        (root / label / "sub").mkdir(parents=True, exist_ok=True)
        for k in range(per_label):
            tone = harmonic_tone(200 * (li + 1) * (1 + 0.02 * k), 4.5).numpy()
            sf.write(root / label / ("sub" if k == 0 else ".") / f"{label}{k}.wav", tone, SR)
    stereo = np.stack([harmonic_tone(300, 4.5, 22050).numpy()] * 2, 1)
    sf.write(root / "dog" / "stereo.flac", stereo, 22050)
    sf.write(root / "siren" / "short.wav", np.zeros(8000, np.float32), SR)
    (root / "siren" / "notes.txt").write_text("not audio")
