"""What the MUSIC and VGGSound recipes share: clip lookup, video extraction, manifests.

A *clip* is one source video of one class. On disk a corpus holds, per clip, either
``audio/<rel>.wav`` plus ``frames/<rel>/<NNNNNN>.jpg`` (one frame per second, what the
reference preprocessing writes) or ``videos/<rel>.mp4``, from which the audio (16 kHz mono)
and the frames (1 fps) are extracted once with ffmpeg into the first layout. ``<rel>`` is
``<instrument>/<youtube id>`` for MUSIC and ``<youtube id>_<start:06d>`` for VGGSound.
"""
import logging
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import soundfile as sf
from lhotse import CutSet, MonoCut, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.qa import validate_recordings_and_supervisions
from lhotse.utils import Pathlike

from ...config import AUDIO
from ...utils import atomic_write

SAMPLE_RATE = AUDIO.sample_rate
#: Crop length of OmniSep's training clips (65535 samples at 16 kHz, about 4.1 s).
CROP_SAMPLES = AUDIO.crop_samples
MANIFEST_TYPES = ("recordings", "supervisions", "cuts")


@dataclass
class Clip:
    """One clip to turn into a cut: its id, class label, split and where its files are."""
    clip_id: str
    label: str
    split: str
    rel: str  # path of its files relative to audio/, frames/ and videos/ (without suffix)
    custom: Dict[str, object] = field(default_factory=dict)  # more supervision ``custom`` fields


@dataclass
class PrepareSummary:
    """Counts of what a recipe kept and skipped, by reason; logged at the end."""
    kept: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def skip(self, clip: Clip, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        logging.warning("skipping %s (%s)%s", clip.clip_id, reason, f": {detail}" if detail else "")

    def log(self, corpus: str) -> None:
        level = logging.WARNING if self.skipped else logging.INFO
        logging.log(level, "%s: kept %s; skipped %s", corpus, dict(self.kept),
                    dict(self.skipped) or "none")

    def check(self, corpus: str, manifests: Dict[str, dict], cached: Dict[str, dict]) -> None:
        """ValueError (one line) when the run kept no clip and none was prepared before."""
        if manifests or cached:
            return
        hint = " (pass --no-frames to keep clips without video frames)" \
            if "missing frames" in self.skipped else ""
        reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) or "no clip found"
        raise ValueError(f"{corpus}: no clip kept ({reasons}){hint}")


def extract_from_video(video: Path, wav_out: Path, frames_dir: Path,
                       sample_rate: int = SAMPLE_RATE) -> None:
    """Extract 16 kHz mono audio and 1-fps JPEG frames from ``video`` with ffmpeg.

    Resumable: each output is written under a temporary name and renamed when complete, so
    an existing ``wav_out`` or ``frames_dir`` is a finished one and is not redone.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is needed to extract audio and frames from videos: "
                           "apt-get install --no-install-recommends ffmpeg")
    if not wav_out.is_file():
        with atomic_write(wav_out) as tmp:
            subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
                            "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "wav", tmp],
                           check=True, capture_output=True)
    if not frames_dir.is_dir():
        tmp_dir = frames_dir.with_name(frames_dir.name + ".partial")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir(parents=True)
        subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
                        "-vf", "fps=1", "-q:v", "3", str(tmp_dir / "%06d.jpg")],
                       check=True, capture_output=True)
        tmp_dir.rename(frames_dir)


def locate_clip_files(corpus_dir: Path, clip: Clip, summary: PrepareSummary,
                      require_frames: bool = True) -> Optional[tuple]:
    """``(wav_path, frame_paths)`` of a clip, extracting them from its video if needed.

    Returns None (and counts the reason) when the clip has neither audio nor a video, the
    video cannot be decoded, or it has no frames while ``require_frames``.
    """
    wav = corpus_dir / "audio" / f"{clip.rel}.wav"
    frames_dir = corpus_dir / "frames" / clip.rel
    video = corpus_dir / "videos" / f"{clip.rel}.mp4"
    if (not wav.is_file() or not frames_dir.is_dir()) and video.is_file():
        try:
            extract_from_video(video, wav, frames_dir)
        except subprocess.CalledProcessError as err:
            summary.skip(clip, "undecodable video", err.stderr.decode(errors="replace")[-200:])
            return None
    if not wav.is_file():
        summary.skip(clip, "missing audio", str(wav))
        return None
    frames = sorted(str(p) for p in frames_dir.glob("*.jpg")) if frames_dir.is_dir() else []
    if not frames:
        if require_frames:
            summary.skip(clip, "missing frames", str(frames_dir))
            return None
        summary.kept["without frames"] += 1
    return wav, frames


def make_recording(clip: Clip, wav: Path, summary: PrepareSummary,
                   min_samples: int = CROP_SAMPLES) -> Optional[Recording]:
    """A Lhotse ``Recording`` of a clip's wav, or None if unreadable, not 16 kHz or too short."""
    try:
        info = sf.info(str(wav))
    except (sf.LibsndfileError, RuntimeError) as err:
        summary.skip(clip, "unreadable audio", str(err))
        return None
    if info.frames < min_samples * info.samplerate / SAMPLE_RATE:
        summary.skip(clip, "shorter than the crop", f"{info.frames} samples")
        return None
    rec = Recording.from_file(wav, recording_id=clip.clip_id)
    return rec if rec.sampling_rate == SAMPLE_RATE else rec.resample(SAMPLE_RATE)


def build_manifests(corpus_dir: Path, clips: Iterable[Clip], descriptions: Dict[str, str],
                    summary: PrepareSummary, min_samples: int = CROP_SAMPLES,
                    require_frames: bool = True, locate=None) -> Dict[str, dict]:
    """Recordings, supervisions and cuts per split for the given clips.

    Every cut has one supervision spanning the clip, whose ``custom`` holds ``label``,
    ``text`` (the class's free-text description, or the clip's own ``custom["text"]``) and
    ``frames`` (JPEG paths, 1 per second). ``locate(clip, summary)`` gives a clip's
    ``(audio path, frame paths)`` (default: :func:`locate_clip_files` in ``corpus_dir``).
    Audio at other rates than 16 kHz is resampled by Lhotse when loaded.
    """
    per_split: Dict[str, tuple] = {}
    for clip in clips:
        found = locate(clip, summary) if locate else locate_clip_files(
            corpus_dir, clip, summary, require_frames)
        if found is None:
            continue
        wav, frames = found
        rec = make_recording(clip, wav, summary, min_samples)
        if rec is None:
            continue
        sup = SupervisionSegment(
            id=clip.clip_id, recording_id=clip.clip_id, start=0.0, duration=rec.duration,
            channel=0, custom={"label": clip.label, "text": descriptions[clip.label],
                               "frames": frames, **clip.custom})
        recs, sups = per_split.setdefault(clip.split, ([], []))
        recs.append(rec)
        sups.append(sup)
        summary.kept[clip.split] += 1
    manifests = {}
    for split, (recs, sups) in sorted(per_split.items()):
        recordings, supervisions = RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
        validate_recordings_and_supervisions(recordings, supervisions)
        cuts = CutSet.from_cuts(
            MonoCut(id=sup.id, start=0.0, duration=rec.duration, channel=0, recording=rec,
                    supervisions=[sup]) for rec, sup in zip(recs, sups))
        manifests[split] = {"recordings": recordings, "supervisions": supervisions, "cuts": cuts}
    return manifests


def manifest_path(output_dir: Pathlike, corpus: str, kind: str, split: str) -> Path:
    return Path(output_dir) / f"{corpus}_{kind}_{split}.jsonl.gz"


def write_manifests(manifests: Dict[str, dict], output_dir: Pathlike, corpus: str) -> None:
    """Write each manifest atomically (temporary name, then rename)."""
    for split, parts in manifests.items():
        for kind in MANIFEST_TYPES:
            with atomic_write(manifest_path(output_dir, corpus, kind, split)) as tmp:
                parts[kind].to_file(tmp)


def finish(manifests: Dict[str, dict], cached: Dict[str, dict], output_dir: Optional[Pathlike],
           corpus: str, summary: PrepareSummary, name: Optional[str] = None) -> Dict[str, dict]:
    """The end of every recipe: write the new splits, log the counts, refuse a run that kept
    no clip (:meth:`PrepareSummary.check`); returns the cached and the new splits."""
    if output_dir is not None:
        write_manifests(manifests, output_dir, corpus)
    summary.log(name or corpus)
    summary.check(name or corpus, manifests, cached)
    return {**cached, **manifests}


def read_cached(output_dir: Optional[Pathlike], corpus: str, splits: List[str]) -> Dict[str, dict]:
    """Manifests of the splits already written in ``output_dir`` (all three files present)."""
    cached = {}
    if output_dir is None:
        return cached
    for split in splits:
        paths = {k: manifest_path(output_dir, corpus, k, split) for k in MANIFEST_TYPES}
        if all(p.is_file() for p in paths.values()):
            cached[split] = {
                "recordings": RecordingSet.from_file(paths["recordings"]),
                "supervisions": SupervisionSet.from_file(paths["supervisions"]),
                "cuts": CutSet.from_file(paths["cuts"]).to_eager(),
            }
    return cached
