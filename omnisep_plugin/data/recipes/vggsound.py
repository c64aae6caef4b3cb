"""VGGSound (Chen et al., 2020) as Lhotse manifests with multimodal supervision.

Input (``corpus_dir``):
    - ``vggsound.csv``: rows ``youtube_id,start_seconds,label,split`` (no header, as
      released; ``split`` is ``train`` or ``test``);
    - per clip ``audio/<clip>.wav`` + ``frames/<clip>/NNNNNN.jpg``, or ``videos/<clip>.mp4``,
      where ``<clip>`` is ``<youtube_id>_<start_seconds:06d>`` (VGGSound's file naming).

Splits: ``train`` and ``test`` as in the CSV, ``valid`` = the train clips whose id's SHA-1
falls in the first ``valid_fraction`` of the hash range, and one extra split per clean list
(``clean_lists={"test_clean": "vggsound_clean.txt"}``: a text file of clip ids, one per line;
those clips leave the split they were in). With ``drop_instruments`` (default, as the paper
trains) the musical-instrument classes (:data:`VGGSOUND_INSTRUMENT_CLASSES`) are removed from
``train``/``valid``/``test``; clean lists are kept as given.

Output: ``vggsound_{recordings,supervisions,cuts}_{split}.jsonl.gz``.
"""
import csv
import hashlib
import logging
from pathlib import Path
from typing import Dict, Mapping, Optional

from lhotse.utils import Pathlike

from ..descriptions import VGGSOUND_INSTRUMENT_CLASSES, descriptions_for, load_description_table
from .common import CROP_SAMPLES, Clip, PrepareSummary, build_manifests, finish, read_cached

CSV_NAME = "vggsound.csv"


def clip_name(youtube_id: str, start: str) -> str:
    """VGGSound's clip file name, e.g. ``clip_name("abc", "30") == "abc_000030"``."""
    return f"{youtube_id}_{int(float(start)):06d}"


def _in_valid(clip_id: str, fraction: float) -> bool:
    return int(hashlib.sha1(clip_id.encode()).hexdigest()[:8], 16) < fraction * 16 ** 8


def read_vggsound_csv(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"VGGSound list not found: {path} (expected {CSV_NAME})")
    rows = []
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(f"{path}:{n}: expected youtube_id,start_seconds,label,split; "
                                 f"got {row}")
            if n == 1 and row[1] == "start_seconds":
                continue  # a header line
            rows.append(row)
    return rows


def prepare_vggsound(corpus_dir: Pathlike, output_dir: Optional[Pathlike] = None,
                     clean_lists: Optional[Mapping[str, Pathlike]] = None,
                     drop_instruments: bool = True, labels: Optional[set] = None,
                     description_table: Optional[Pathlike] = None,
                     valid_fraction: float = 0.05,
                     min_samples: int = CROP_SAMPLES,
                  require_frames: bool = True) -> Dict[str, Dict[str, object]]:
    """Prepare VGGSound manifests (see the module docstring for inputs and splits).

    Args:
        labels: the class vocabulary; clips of other classes are skipped (counted).
            ``None``: every label of the CSV (less the instruments when dropped).
        description_table: CSV ``label,description`` of free-text descriptions; classes
            without one get ``"The sound of <label>."``.
        require_frames: skip (and count) clips without video frames.

    Returns:
        ``{split: {"recordings": ..., "supervisions": ..., "cuts": ...}}``
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"VGGSound corpus folder not found: {corpus_dir}")
    clean = {}
    for split_name, list_path in (clean_lists or {}).items():
        list_path = Path(list_path)
        if not list_path.is_file():
            raise FileNotFoundError(f"Clean test list {split_name!r} not found: {list_path}")
        for line in list_path.read_text().split():
            clean[line.strip()] = split_name
    rows = read_vggsound_csv(corpus_dir / CSV_NAME)
    splits = ["train", "valid", "test", *sorted(set(clean.values()))]
    cached = read_cached(output_dir, "vggsound", splits)
    if len(cached) == len(splits):
        return cached
    summary = PrepareSummary()
    clips = []
    for youtube_id, start, label, split in rows:
        clip_id = clip_name(youtube_id, start)
        if clip_id in clean:
            split = clean[clip_id]
        else:
            if drop_instruments and label in VGGSOUND_INSTRUMENT_CLASSES:
                summary.skipped["instrument class"] += 1
                continue
            if split == "train" and _in_valid(clip_id, valid_fraction):
                split = "valid"
        if labels is not None and label not in labels:
            summary.skipped["class not in label list"] += 1
            logging.warning("skipping %s: class %r not in the label list", clip_id, label)
            continue
        if split not in cached:
            clips.append(Clip(clip_id=clip_id, label=label, split=split, rel=clip_id))
    table = load_description_table(Path(description_table)) if description_table else None
    descriptions = descriptions_for({c.label for c in clips}, table)
    manifests = build_manifests(corpus_dir, clips, descriptions, summary, min_samples,
                                require_frames)
    return finish(manifests, cached, output_dir, "vggsound", summary, "VGGSound")
