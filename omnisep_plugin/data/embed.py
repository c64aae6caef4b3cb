"""Query embedding cache: frozen Query-Net embeddings stored once per cut as Lhotse arrays.

``embed_cuts`` attaches ``cut.text_emb`` (the class label), ``cut.image_emb`` (mean of 4
frames at 1-s intervals, L2-normalised) and ``cut.audio_emb`` (the whole clip) to every cut,
each a ``[dim]`` array written by Lhotse's ``NumpyFilesWriter``. A journal
(``<storage>/index.jsonl``, one line per finished cut, flushed) makes it resumable after a
kill: journalled cuts whose arrays load are not recomputed.
"""
import json
import logging
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch
from lhotse import CutSet
from lhotse.array import Array
from lhotse.features.io import NumpyFilesWriter
from lhotse.utils import Pathlike
from tqdm.auto import tqdm

from ..query.base import QueryEncoder
from ..query.query_set import QuerySet

KINDS = ("text", "image", "audio")
N_QUERY_FRAMES = 4
JOURNAL = "index.jsonl"


def cut_label(cut) -> str:
    """The class label a cut's (first) supervision carries."""
    try:
        return cut.supervisions[0].custom["label"]
    except (IndexError, KeyError, TypeError):
        raise ValueError(f"Cut {cut.id} has no supervision with a 'label': prepare the "
                         "manifests with omnisep prepare") from None


def check_unique_ids(cuts) -> list:
    """The cuts as a list; ValueError naming a duplicated cut id."""
    cuts, seen = list(cuts), set()
    for c in cuts:
        if c.id in seen:
            raise ValueError(f"Duplicate cut id {c.id!r} in the manifest")
        seen.add(c.id)
    return cuts


def query_frames(frames: Sequence[str], duration: float, n: int = N_QUERY_FRAMES) -> List[str]:
    """``n`` frames at 1-s intervals centred in the clip (frames are 1 per second).

    Example:
        >>> query_frames([f"{i}.jpg" for i in range(10)], 10.0)
        ['3.jpg', '4.jpg', '5.jpg', '6.jpg']
    """
    if not frames:
        return []
    usable = min(len(frames), max(1, int(round(duration))))
    start = max(0, (usable - n) // 2)
    return list(frames[start:start + n])


def _read_journal(storage: Path) -> Dict[str, dict]:
    done = {}
    path = storage / JOURNAL
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        try:
            arrays = {k: Array.from_dict(v) for k, v in entry["arrays"].items()}
            for arr in arrays.values():
                arr.load()
        except Exception:  # missing or truncated array file: recompute this cut
            continue
        done[entry["cut_id"]] = arrays
    return done


def embed_cuts(cuts: CutSet, encoder: QueryEncoder, storage_path: Pathlike,
               batch_size: int = 16, progress: bool = True) -> CutSet:
    """Embed every cut's text, image and audio queries once and attach them as arrays.

    Args:
        cuts: cuts with a supervision whose ``custom`` has ``label`` and ``frames``.
        encoder: any :class:`~omnisep_plugin.query.QueryEncoder`; modalities it lacks, and
            images of cuts without frames, are left out (no ``image_emb`` on that cut).
        storage_path: folder for the arrays and the journal.

    Returns:
        the cuts with ``text_emb`` / ``image_emb`` / ``audio_emb`` custom arrays.
    """
    cuts = check_unique_ids(cuts)
    for cut in cuts:
        cut_label(cut)
    storage = Path(storage_path)
    storage.mkdir(parents=True, exist_ok=True)
    done = _read_journal(storage)
    todo = [c for c in cuts if c.id not in done]
    if done:
        logging.info("embed_cuts: %d cuts already embedded, %d to go", len(cuts) - len(todo), len(todo))
    label_cache: Dict[str, np.ndarray] = {}
    with NumpyFilesWriter(storage) as writer, open(storage / JOURNAL, "a") as journal:
        bar = tqdm(total=len(todo), desc="embedding queries", disable=not progress, unit="cut")
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            embs = _embed_batch(batch, encoder, label_cache)
            for cut in batch:
                arrays = {kind: writer.store_array(f"{cut.id}.{kind}", embs[kind][cut.id])
                          for kind in KINDS if cut.id in embs[kind]}
                done[cut.id] = arrays
                journal.write(json.dumps({"cut_id": cut.id, "arrays": {
                    k: a.to_dict() for k, a in arrays.items()}}) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
            bar.update(len(batch))
        bar.close()

    def attach(cut):
        for kind, arr in done[cut.id].items():
            cut = cut.with_custom(f"{kind}_emb", arr)
        return cut

    return CutSet.from_cuts(attach(c) for c in cuts)


def _embed_batch(batch, encoder: QueryEncoder, label_cache: Dict[str, np.ndarray]):
    out = {kind: {} for kind in KINDS}
    if encoder.supports("text"):
        labels = sorted({cut_label(c) for c in batch} - set(label_cache))
        if labels:
            for label, emb in zip(labels, encoder.embed_text(labels).cpu().numpy()):
                label_cache[label] = emb
        for cut in batch:
            out["text"][cut.id] = label_cache[cut_label(cut)]
    if encoder.supports("audio"):
        # Clips differ in length: embed one at a time (each is a whole clip).
        for cut in batch:
            wav = torch.from_numpy(cut.load_audio()[0].astype(np.float32))
            out["audio"][cut.id] = encoder.embed_audio(wav[None])[0].cpu().numpy()
    if encoder.supports("image"):
        for cut in batch:
            frames = query_frames(cut.supervisions[0].custom.get("frames", []), cut.duration)
            if frames:
                emb = encoder.embed_image(frames).mean(0)
                out["image"][cut.id] = torch.nn.functional.normalize(emb, dim=0).cpu().numpy()
    return out


def mean_audio_query(clips: Sequence) -> torch.Tensor:
    """The normalised mean of ``clips``' audio embeddings ``[dim]``: a class's audio query."""
    mean = np.mean([c.load_custom("audio_emb") for c in clips], axis=0)
    return torch.nn.functional.normalize(torch.from_numpy(mean).float(), dim=0)


def build_audio_query_bank(cuts: CutSet, n_per_class: int, seed: int = 0) -> QuerySet:
    """Test-time audio queries: per class, the normalised mean of ``n_per_class`` training
    clips' audio embeddings, drawn with ``seed`` (S = 5 for VGGSound, 1 for MUSIC)."""
    by_label = defaultdict(list)
    for cut in cuts:
        if cut.has_custom("audio_emb"):
            by_label[cut_label(cut)].append(cut)
    if not by_label:
        raise ValueError("No cut has an audio_emb: run embed_cuts with an audio encoder first")
    rng = random.Random(seed)
    labels = sorted(by_label)
    embs = []
    for label in labels:
        pool = sorted(by_label[label], key=lambda c: c.id)
        embs.append(mean_audio_query(rng.sample(pool, min(n_per_class, len(pool)))))
    return QuerySet(labels, torch.stack(embs))


def build_label_query_set(labels: Sequence[str], encoder: QueryEncoder) -> QuerySet:
    """The Query-Set of Query-Aug: text embeddings of the training class labels."""
    labels = sorted(set(labels))
    return QuerySet(labels, encoder.embed_text(labels).cpu())


def build_free_text_set(cuts: CutSet, encoder: QueryEncoder) -> QuerySet:
    """Embeddings of each class's free-text description (supervision ``text``), keyed by
    label: the free-text queries of the paper's Table 3."""
    texts = {}
    for cut in cuts:
        texts.setdefault(cut_label(cut), cut.supervisions[0].custom["text"])
    labels = sorted(texts)
    return QuerySet(labels, encoder.embed_text([texts[lab] for lab in labels]).cpu())


def write_query_banks(cuts: CutSet, encoder: QueryEncoder, output_dir: Pathlike, prefix: str,
                      n_audio_per_class: int, seed: int = 0) -> Dict[str, Path]:
    """Save ``<prefix>_query_set.pt`` (label embeddings, Query-Aug), ``<prefix>_free_text.pt``
    (description embeddings) and ``<prefix>_audio_bank.pt`` beside the manifests."""
    output_dir = Path(output_dir)
    paths = {}
    if encoder.supports("text"):
        paths["query_set"] = output_dir / f"{prefix}_query_set.pt"
        build_label_query_set([cut_label(c) for c in cuts], encoder).save(paths["query_set"])
        paths["free_text"] = output_dir / f"{prefix}_free_text.pt"
        build_free_text_set(cuts, encoder).save(paths["free_text"])
    if any(c.has_custom("audio_emb") for c in cuts):
        paths["audio_bank"] = output_dir / f"{prefix}_audio_bank.pt"
        build_audio_query_bank(cuts, n_audio_per_class, seed).save(paths["audio_bank"])
    return paths

