"""Mixtures for training and evaluation, drawn from embedded cuts.

Training: :class:`MixtureDataset` is a Lhotse-style dataset (``__getitem__(cuts)``, fed by
a Lhotse sampler with ``DataLoader(batch_size=None)``): each sampled cut becomes the first
source of a mixture whose other ``n_src - 1`` sources are cuts of other classes drawn from
the pool. Evaluation: :func:`make_test_mixtures` writes a seeded, fixed list of mixtures
(cut ids, offsets, gains) so that every model is scored on the same material, and
:func:`render_mixture` turns an entry into audio.
"""
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from lhotse import CutSet
from lhotse.utils import Pathlike

from ..config import AUDIO
from ..utils import atomic_write
from .embed import KINDS, check_unique_ids, cut_label, mean_audio_query
from .recipes.common import CROP_SAMPLES


def _crop(cut, offset: int, n_samples: int) -> np.ndarray:
    """``n_samples`` mono samples of ``cut`` from sample ``offset`` (zero-padded at the end)."""
    wav = cut.load_audio()[0]
    out = np.zeros(n_samples, dtype=np.float32)
    piece = wav[offset:offset + n_samples]
    out[:len(piece)] = piece
    return out


def _gained(wav: np.ndarray, gain: float) -> np.ndarray:
    """CLIPSep's source gain: scale, then clip to [-1, 1]."""
    return np.clip(wav * gain, -1.0, 1.0)


class MixtureDataset(torch.utils.data.Dataset):
    """On-the-fly mixtures of ``n_src`` cuts of different classes, with their query embeddings.

    Args:
        pool: the cuts partners are drawn from (usually the training CutSet itself, eager);
            each needs a supervision ``label`` and the ``<kind>_emb`` arrays of
            :func:`embed_cuts`. ``None``: partners come from the same sampled batch, which is
            what streaming (Lhotse Shar, many nodes) needs; batches then need cuts of at
            least ``n_src`` classes.
        n_src: sources per mixture (2 in OmniSep).
        n_samples: crop length in samples (65535 at 16 kHz).
        gain_range: each source is scaled by ``U(gain_range)`` then clipped to [-1, 1].
        divide_by_n: also divide each source by ``n_src`` (CLIPSep's reference code does).
        seed: seeds the partner, crop and gain draws (a generator per dataset).
        min_src, max_src: when below ``n_src``, each mixture has ``U{min_src..max_src}`` real
            sources (``max_src`` defaults to ``n_src``); the remaining slots are *absent*
            targets: a silent source whose query names a class that is not in the mixture
            (the model learns to return silence for it). ``max_src < n_src``: every mixture
            has at least one absent target.
        augment: a :class:`~omnisep_plugin.data.augment.MixtureAugment` (levels, EQ, rooms,
            band limits, backgrounds) instead of the plain gains; then ``mixture`` is the
            sum of the sources plus a background.
        class_audio_query: chance that a source's audio query is a *class* query instead of
            its own clip's embedding (the paper's training query): the normalised mean of
            ``U{1..class_audio_clips}`` clips of its label drawn from the pool (the batch
            when ``pool`` is None), which is what a test-time audio query is (the mean of
            S training clips of the class, :func:`~.embed.build_audio_query_bank`).
        similar_partners: chance that each real partner source is of a class whose label
            text is *like* the first source's (hard negatives: flute with pan flute or oboe)
            instead of any class: the label is drawn with weights ``exp(cos / similar_temperature)``
            over the cosine of the labels' text queries. Absent targets stay uniform.

    Returns (``__getitem__(cuts)``), for a batch of B sampled cuts:

    .. code-block::

        {
            "mixture": float tensor [B, T],          # == sources.sum(1)
            "sources": float tensor [B, n_src, T],
            "text_emb" / "image_emb" / "audio_emb": float tensor [B, n_src, dim]
                                                  # zeros where missing
            "has_text" / "has_image" / "has_audio": bool tensor [B, n_src],
            "present": bool tensor [B, n_src],       # False: an absent target
            "labels": list of B lists of n_src labels,
            "cut_ids": list of B lists of n_src cut ids,
        }
    """

    def __init__(self, pool: Optional[CutSet], n_src: int = 2, n_samples: int = CROP_SAMPLES,
                 gain_range=AUDIO.gain_range, divide_by_n: bool = False, seed: int = 0,
                 min_src: Optional[int] = None, augment=None, max_src: Optional[int] = None,
                 class_audio_query: float = 0.0, class_audio_clips: int = 5,
                 similar_partners: float = 0.0, similar_temperature: float = 0.1):
        super().__init__()
        if not 0.0 <= class_audio_query <= 1.0:
            raise ValueError(f"class_audio_query is a probability, got {class_audio_query}")
        if class_audio_clips < 1:
            raise ValueError(f"class_audio_clips must be at least 1, got {class_audio_clips}")
        self.class_audio_query, self.class_audio_clips = class_audio_query, class_audio_clips
        if not 0.0 <= similar_partners <= 1.0:
            raise ValueError(f"similar_partners is a probability, got {similar_partners}")
        if similar_temperature <= 0:
            raise ValueError(f"similar_temperature must be positive, got {similar_temperature}")
        self.similar_partners, self.similar_temperature = similar_partners, similar_temperature
        self._label_texts: Dict[str, np.ndarray] = {}
        self.n_src, self.n_samples = n_src, n_samples
        self.max_src = n_src if max_src is None else max_src
        self.min_src = self.max_src if min_src is None else min_src
        if not 1 <= self.max_src <= n_src:
            raise ValueError(f"max_src must be in [1, n_src={n_src}], got {max_src}")
        if not 1 <= self.min_src <= self.max_src:
            raise ValueError(f"min_src must be in [1, max_src={self.max_src}], got {min_src}")
        self.augment = augment
        self.by_label = None if pool is None else self._group(check_unique_ids(pool), "pool")
        self.gain_range, self.divide_by_n = gain_range, divide_by_n
        self.seed = seed
        self._rng, self._rng_worker = None, None

    @property
    def rng(self) -> random.Random:
        """The dataset's generator, seeded apart in each DataLoader worker."""
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else -1
        if self._rng is None or self._rng_worker != worker:
            self._rng, self._rng_worker = random.Random(f"{self.seed}-{worker}"), worker
        return self._rng

    def _group(self, cuts, what: str) -> Dict[str, list]:
        by_label = _by_label(cuts)
        if len(by_label) < self.n_src:
            raise ValueError(f"Mixtures of {self.n_src} different classes need at least "
                             f"{self.n_src} classes in the {what}, found {len(by_label)}")
        return by_label

    def _partners(self, cut, by_label: Dict[str, list], rng: random.Random) -> list:
        others = sorted(lab for lab in by_label if lab != cut_label(cut))
        return [rng.choice(by_label[lab]) for lab in rng.sample(others, self.n_src - 1)]

    def _source(self, cut, rng: random.Random) -> np.ndarray:
        offset = rng.randint(0, max(0, cut.num_samples - self.n_samples))
        wav = _gained(_crop(cut, offset, self.n_samples), rng.uniform(*self.gain_range))
        return wav / self.n_src if self.divide_by_n else wav

    def __getitem__(self, item) -> dict:
        """``item``: a CutSet, or ``(batch_index, CutSet)`` from a sampler that numbers its
        batches; then the draws are seeded by ``(seed, batch_index)`` alone, so a batch is
        the same whichever worker makes it and after a resume."""
        if isinstance(item, tuple):
            index, cuts = item
            rng = random.Random(f"{self.seed}-batch-{index}")
        else:
            cuts, rng = item, self.rng
        by_label = self.by_label or self._group(cuts, "batch")
        groups = [[cut, *self._partners(cut, by_label, rng)] for cut in cuts]
        n_present = [rng.randint(self.min_src, self.max_src) if self.min_src < self.max_src
                     else self.max_src for _ in groups]
        if self.similar_partners > 0:
            for group, k in zip(groups, n_present):
                self._similar_partners(group, k, by_label, rng)
        present = torch.tensor([[i < k for i in range(self.n_src)] for k in n_present])
        mixtures, sources = [], []
        for g, k in zip(groups, n_present):
            clean = np.stack([self._source(c, rng) if i < k else np.zeros(self.n_samples, np.float32)
                              for i, c in enumerate(g)])
            if self.augment is not None:
                mix, clean = self.augment.mix(clean, rng)
            else:
                mix = clean.sum(0)
            mixtures.append(mix)
            sources.append(clean)
        batch = {"mixture": torch.from_numpy(np.stack(mixtures)),
                 "sources": torch.from_numpy(np.stack(sources)), "present": present,
                 "labels": [[cut_label(c) for c in g] for g in groups],
                 "cut_ids": [[c.id for c in g] for g in groups]}
        batch.update(collate_embeddings(groups))
        if self.class_audio_query > 0:
            self._class_audio_queries(batch, groups, by_label, rng)
        return batch

    def _similar_partners(self, group: list, k: int, by_label: Dict[str, list],
                          rng: random.Random) -> None:
        """Redraw, each with chance ``similar_partners``, the real partners ``group[1:k]``
        from classes like ``group[0]``'s (in place; every label stays distinct)."""
        lead = self._label_text(group[0])
        for i in range(1, k):
            if rng.random() >= self.similar_partners:
                continue
            taken = {cut_label(c) for j, c in enumerate(group) if j != i}
            labels = sorted(lab for lab in by_label if lab not in taken)
            cosine = np.array([float(lead @ self._label_text(by_label[lab][0])) for lab in labels])
            weights = np.exp((cosine - cosine.max()) / self.similar_temperature)
            group[i] = rng.choice(by_label[rng.choices(labels, weights=weights.tolist())[0]])

    def _label_text(self, cut) -> np.ndarray:
        """The unit text query of ``cut``'s label (read once per label)."""
        label = cut_label(cut)
        if label not in self._label_texts:
            if not cut.has_custom("text_emb"):
                raise ValueError(f"Cut {cut.id} has no text_emb: similar partners need text queries")
            vec = cut.load_custom("text_emb").astype(np.float64)
            self._label_texts[label] = vec / (np.linalg.norm(vec) + 1e-12)
        return self._label_texts[label]

    def _class_audio_queries(self, batch: dict, groups: List[list], by_label: Dict[str, list],
                             rng: random.Random) -> None:
        """Replace, each with chance ``class_audio_query``, the sources' own-clip audio
        queries ``batch["audio_emb"] [B, n_src, dim]`` by class queries (in place)."""
        for b, group in enumerate(groups):
            for i, cut in enumerate(group):
                if not batch["has_audio"][b, i] or rng.random() >= self.class_audio_query:
                    continue
                pool = [c for c in by_label[cut_label(cut)] if c.has_custom("audio_emb")]
                n = min(rng.randint(1, self.class_audio_clips), len(pool))
                batch["audio_emb"][b, i] = mean_audio_query(rng.sample(pool, n))


def balance_labels(cuts: CutSet) -> CutSet:
    """Every label as often as the most frequent one: each label's cuts are cycled (in
    manifest order) up to that count; repeats get the id ``<id>#<k>``. Used as the
    sampler's epoch, so that the mixtures' first sources are drawn class-balanced (the
    partners already are); the dataset's pool stays the original cuts."""
    by_label = _by_label(cuts)
    most = max((len(v) for v in by_label.values()), default=0)
    out = []
    for label in sorted(by_label):
        group = by_label[label]
        for i in range(most):
            cut = group[i % len(group)]
            out.append(cut if i < len(group) else cut.with_id(f"{cut.id}#{i // len(group)}"))
    return CutSet.from_cuts(out)


def _by_label(cuts) -> Dict[str, list]:
    """``{label: [cut, ...]}`` in manifest order."""
    by_label: Dict[str, list] = defaultdict(list)
    for cut in cuts:
        by_label[cut_label(cut)].append(cut)
    return by_label


def collate_embeddings(groups: List[list]) -> dict:
    """Stack the cached ``<kind>_emb`` arrays of ``[B][n_src]`` cuts (zeros where missing)."""
    out = {}
    dim = None
    loaded = {}
    for kind in KINDS:
        for g in groups:
            for c in g:
                if c.has_custom(f"{kind}_emb"):
                    arr = c.load_custom(f"{kind}_emb")
                    loaded[kind, c.id] = arr
                    dim = dim or arr.shape[-1]
    if dim is None:
        raise ValueError("The cuts carry no query embeddings: run embed_cuts first")
    for kind in KINDS:
        emb = torch.zeros(len(groups), len(groups[0]), dim)
        has = torch.zeros(len(groups), len(groups[0]), dtype=torch.bool)
        for b, g in enumerate(groups):
            for i, c in enumerate(g):
                if (kind, c.id) in loaded:
                    emb[b, i] = torch.from_numpy(loaded[kind, c.id])
                    has[b, i] = True
        out[f"{kind}_emb"], out[f"has_{kind}"] = emb, has
    return out


def export_shar(cuts: CutSet, output_dir: Pathlike, shard_size: int = 1000) -> Dict[str, list]:
    """Write embedded cuts as Lhotse Shar shards (audio as FLAC, query arrays as numpy) for
    streaming training on many GPUs / nodes without a shared file system.

    Read back with ``CutSet.from_shar(in_dir=output_dir)`` and train with
    ``MixtureDataset(pool=None)`` (partners from the same batch).
    """
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    fields = {"recording": "flac"}
    for kind in KINDS:
        if any(c.has_custom(f"{kind}_emb") for c in cuts):
            fields[f"{kind}_emb"] = "numpy"
    return cuts.to_shar(output_dir, fields=fields, shard_size=shard_size)


def make_test_mixtures(cuts: CutSet, n_mixtures: int, n_src: int = 2,
                       n_samples: int = CROP_SAMPLES, seed: int = 1234,
                       gain_range=AUDIO.gain_range, path: Optional[Pathlike] = None) -> List[dict]:
    """A fixed, seeded list of mixtures of ``n_src`` cuts of different classes.

    Each entry: ``{"id", "sources": [{"cut_id", "label", "offset", "gain"}, ...]}``; written
    atomically as JSON to ``path`` when given.
    """
    by_label = defaultdict(list)
    for cut in sorted(check_unique_ids(cuts), key=lambda c: c.id):
        by_label[cut_label(cut)].append(cut)
    labels = sorted(by_label)
    if len(labels) < n_src:
        raise ValueError(f"Need at least {n_src} classes for test mixtures, found {len(labels)}")
    rng = random.Random(seed)
    mixtures = []
    for m in range(n_mixtures):
        chosen = [rng.choice(by_label[lab]) for lab in rng.sample(labels, n_src)]
        mixtures.append({"id": f"mix{m:05d}", "sources": [
            {"cut_id": c.id, "label": cut_label(c),
             "offset": rng.randint(0, max(0, c.num_samples - n_samples)),
             "gain": round(rng.uniform(*gain_range), 4)} for c in chosen]})
    if path is not None:
        with atomic_write(path) as tmp:
            Path(tmp).write_text(json.dumps({"n_samples": n_samples, "mixtures": mixtures},
                                            indent=1))
    return mixtures


def load_test_mixtures(path: Pathlike) -> tuple:
    """``(n_samples, mixtures)`` from a file written by :func:`make_test_mixtures`."""
    data = json.loads(Path(path).read_text())
    return data["n_samples"], data["mixtures"]


def render_mixture(entry: dict, cuts: CutSet, n_samples: int = CROP_SAMPLES):
    """Audio of a fixed mixture: ``(mixture [T], sources [n_src, T])`` as float tensors.

    ``cuts`` must be indexable by id (an eager CutSet: ``CutSet.from_file(...).to_eager()``).
    """
    missing = [s["cut_id"] for s in entry["sources"] if s["cut_id"] not in cuts]
    if missing:
        raise ValueError(f"Mixture {entry.get('id')} names cuts that are not in the manifest: "
                         f"{missing}")
    sources = np.stack([_gained(_crop(cuts[s["cut_id"]], s["offset"], n_samples), s["gain"])
                        for s in entry["sources"]])
    sources = torch.from_numpy(sources)
    return sources.sum(0), sources
