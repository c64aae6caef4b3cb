"""Your own labelled sounds as Lhotse manifests (``omnisep prepare custom``).

Two inputs:

- a folder with one sub-folder per label: ``DIR/<label>/**/*.{wav,flac,ogg,mp3,...}``
  (any rate, any channel count: resampled to 16 kHz by Lhotse, channel 0 kept);
- a CSV with a header ``path,label`` and optionally ``text`` (a free-text description of
  that clip); relative paths are relative to the CSV's folder.

Splits are per label, by SHA-1 of the file's path as MUSIC's (10 % test, 10 % valid, the
rest train; fewer than 3 files of a label all go to train). Clips shorter than the
65535-sample training crop are skipped (counted). The manifests are
``<name>_{recordings,supervisions,cuts}_{split}.jsonl.gz``, like every other recipe's: each
cut's supervision ``custom`` holds ``label``, ``text`` (the clip's own, else the label's
description) and ``frames`` (none).
"""
import csv
import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lhotse.utils import Pathlike

from ..descriptions import descriptions_for
from .common import CROP_SAMPLES, Clip, PrepareSummary, build_manifests, finish, read_cached
from .music import split_ids

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".m4a")
SPLITS = ("train", "valid", "test")


def _key(path: Path, root: Path) -> str:
    """A file's name relative to the corpus root (the folder, or the CSV's folder): what its
    id and split are drawn from, so they do not change when the corpus moves."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _clip_id(label: str, path: Path, root: Path) -> str:
    return f"{label}-{path.stem}-{hashlib.sha1(_key(path, root).encode()).hexdigest()[:8]}"


def list_folder(corpus_dir: Path) -> List[Tuple[Path, str, Optional[str]]]:
    """``(path, label, None)`` for every audio file under ``corpus_dir/<label>/``."""
    rows = []
    for label_dir in sorted(p for p in corpus_dir.iterdir() if p.is_dir()):
        rows += [(f, label_dir.name, None) for f in sorted(label_dir.rglob("*"))
                 if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES]
    return rows


def read_table(csv_path: Path) -> List[Tuple[Path, str, Optional[str]]]:
    """``(path, label, text or None)`` per row of a ``path,label[,text]`` CSV."""
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path}: the header must name path,label[,text]; "
                             f"missing {sorted(missing)}")
        rows = []
        for n, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip() or not (row.get("label") or "").strip():
                raise ValueError(f"{csv_path}, line {n}: empty path or label")
            path = Path(row["path"].strip())
            rows.append((path if path.is_absolute() else csv_path.parent / path,
                         row["label"].strip(), (row.get("text") or "").strip() or None))
    return rows


def prepare_custom(source: Pathlike, output_dir: Optional[Pathlike] = None, name: str = "custom",
                   min_samples: int = CROP_SAMPLES) -> Dict[str, Dict[str, object]]:
    """Manifests of a folder per label or a ``path,label[,text]`` CSV (module docstring).

    Returns:
        ``{split: {"recordings", "supervisions", "cuts"}}``; splits already written in
        ``output_dir`` are read back, not redone. ValueError when no clip is kept.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"No such folder or CSV: {source}")
    rows = list_folder(source) if source.is_dir() else read_table(source)
    cached = read_cached(output_dir, name, list(SPLITS))
    by_label = defaultdict(list)
    for path, label, text in rows:
        by_label[label].append((path, text))
    root = source if source.is_dir() else source.parent
    clips = []
    for label, files in sorted(by_label.items()):
        split_of = split_ids([_key(p, root) for p, _ in files])
        for path, text in files:
            split = split_of[_key(path, root)]
            if split not in cached:
                clips.append(Clip(clip_id=_clip_id(label, path, root), label=label,
                                  split=split, rel=str(path),
                                  custom={"text": text} if text else {}))
    summary = PrepareSummary()

    def locate(clip: Clip, summary: PrepareSummary):
        path = Path(clip.rel)
        if not path.is_file():
            summary.skip(clip, "missing audio", str(path))
            return None
        return path, []

    manifests = build_manifests(source, clips, descriptions_for(sorted(by_label)), summary,
                                min_samples, locate=locate)
    return finish(manifests, cached, output_dir, name, summary)
