"""MUSIC (Zhao et al., 2018) solo videos as Lhotse manifests with multimodal supervision.

Input (``corpus_dir``):
    - the solo-video list ``MUSIC_solo_videos.json`` (``{"videos": {instrument: [ids]}}``,
      or the inner dict alone), 11 instruments;
    - per clip ``audio/<instrument>/<id>.wav`` + ``frames/<instrument>/<id>/NNNNNN.jpg``,
      or ``videos/<instrument>/<id>.mp4`` (audio and 1-fps frames extracted once).

Split rule (deterministic, documented; the reference work holds out a few videos per
instrument): within each instrument the ids are ordered by the SHA-1 of the id; the first
``max(1, round(0.1 n))`` are ``test``, the next as many ``valid``, the rest ``train``
(instruments with fewer than 3 videos go to ``train``). Adding videos later moves few.

Output (``output_dir``): ``music_{recordings,supervisions,cuts}_{split}.jsonl.gz``.
"""
import hashlib
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from lhotse.utils import Pathlike

from ..descriptions import MUSIC_INSTRUMENTS, descriptions_for
from .common import CROP_SAMPLES, Clip, PrepareSummary, build_manifests, finish, read_cached

SPLITS = ("train", "valid", "test")
VIDEO_LIST = "MUSIC_solo_videos.json"


def split_ids(ids: Sequence[str], held_out_fraction: float = 0.1) -> Dict[str, str]:
    """Map each id to ``train``/``valid``/``test`` by the rule in the module docstring.

    Example:
        >>> sorted(split_ids(["a", "b", "c"]).values())
        ['test', 'train', 'valid']
    """
    ordered = sorted(set(ids), key=lambda i: hashlib.sha1(i.encode()).hexdigest())
    if len(ordered) < 3:
        return {i: "train" for i in ordered}
    k = max(1, round(held_out_fraction * len(ordered)))
    return {i: "test" if n < k else "valid" if n < 2 * k else "train"
            for n, i in enumerate(ordered)}


def read_video_list(path: Path) -> Dict[str, List[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"MUSIC video list not found: {path} (expected {VIDEO_LIST})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    videos = data.get("videos", data) if isinstance(data, dict) else None
    if not isinstance(videos, dict) or not all(isinstance(v, list) for v in videos.values()):
        raise ValueError(f"{path} must map instrument names to lists of video ids")
    return videos


def prepare_music(corpus_dir: Pathlike, output_dir: Optional[Pathlike] = None,
                  instruments: Sequence[str] = MUSIC_INSTRUMENTS,
                  min_samples: int = CROP_SAMPLES,
                  require_frames: bool = True) -> Dict[str, Dict[str, object]]:
    """Prepare MUSIC manifests.

    Args:
        corpus_dir: the corpus folder (see the module docstring).
        output_dir: where to write manifests; splits already written there are read back,
            not redone. ``None`` writes nothing.
        instruments: the class vocabulary; videos of other classes are skipped (counted).
        min_samples: clips shorter than this (at 16 kHz) are skipped (counted).
        require_frames: skip (and count) clips without video frames; False keeps them
            (audio/text-only corpora).

    Returns:
        ``{split: {"recordings": RecordingSet, "supervisions": SupervisionSet, "cuts": CutSet}}``
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"MUSIC corpus folder not found: {corpus_dir}")
    cached = read_cached(output_dir, "music", list(SPLITS))
    if len(cached) == len(SPLITS):
        logging.info("MUSIC manifests already in %s", output_dir)
        return cached
    videos = read_video_list(corpus_dir / VIDEO_LIST)
    summary = PrepareSummary()
    clips = []
    for instrument, ids in sorted(videos.items()):
        if instrument not in instruments:
            summary.skipped["class not in label list"] += len(ids)
            logging.warning("skipping %d videos of unknown class %r", len(ids), instrument)
            continue
        for vid, split in sorted(split_ids(ids).items()):
            if split not in cached:
                clips.append(Clip(clip_id=f"{instrument}-{vid}", label=instrument, split=split,
                                  rel=f"{instrument}/{vid}"))
    manifests = build_manifests(corpus_dir, clips, descriptions_for(instruments), summary,
                                min_samples, require_frames)
    return finish(manifests, cached, output_dir, "music", summary, "MUSIC")
