"""Training and validation data for :class:`OmniSepSystem`, resumable to the batch."""
from pathlib import Path

import pytorch_lightning as pl
import torch
from lhotse import CutSet

from ..config import AUDIO, DataConf
from ..data.augment import MixtureAugment
from ..data.mixtures import (MixtureDataset, balance_labels, collate_embeddings,
                             load_test_mixtures, render_mixture)
from .sampler import MuxedBatches, NumberedBatches

#: The mixture settings a ``data.mix_in`` corpus may set for itself (the others are shared).
MIX_IN_KEYS = ("min_src", "max_src", "balance", "augment", "gain_range", "divide_by_n",
               "class_audio_query", "class_audio_clips", "similar_partners",
               "similar_temperature")


class MuxedMixtures(torch.utils.data.Dataset):
    """One :class:`MixtureDataset` per corpus, fed ``(batch_index, corpus, CutSet)`` by
    :class:`MuxedBatches`: the batch is made by that corpus's dataset (its own partners,
    levels and augmentation); the returned dict is ``MixtureDataset``'s."""

    def __init__(self, datasets):
        self.datasets = list(datasets)

    def __getitem__(self, item):
        index, corpus, cuts = item
        return self.datasets[corpus][(index, cuts)]


class FixedMixtures(torch.utils.data.Dataset):
    """The fixed mixtures of :func:`make_test_mixtures` as a map-style dataset.

    Item ``i``: ``{"sources": [n_src, T], "<kind>_emb": [n_src, dim], "has_<kind>": [n_src]}``.
    """

    def __init__(self, mixtures_path, cuts: CutSet):
        self.n_samples, self.entries = load_test_mixtures(mixtures_path)
        self.cuts = cuts

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        entry = self.entries[i]
        _, sources = render_mixture(entry, self.cuts, self.n_samples)
        group = [self.cuts[s["cut_id"]] for s in entry["sources"]]
        item = {k: v[0] for k, v in collate_embeddings([group]).items()}
        item["sources"] = sources
        return item


class MixtureDataModule(pl.LightningDataModule):
    """Train on on-the-fly mixtures of embedded cuts; validate on fixed mixtures.

    Args:
        train_cuts: embedded training cuts manifest (from ``omnisep embed``).
        valid_cuts / valid_mixtures: embedded validation cuts and their fixed mixtures
            (``make_test_mixtures``); both or neither.
        batch_size: mixtures per step and device; n_src, n_samples, gain_range,
            divide_by_n, min_src, max_src: see MixtureDataset; augment: the settings of
            :class:`MixtureAugment` (a dict; empty or None: no augmentation);
            num_workers: DataLoader workers.
        balance: ``"label"``: the sampler's epoch holds every label equally often
            (:func:`balance_labels`), so each class leads as many mixtures; ``None``: each cut
            once per epoch.
        class_audio_query, class_audio_clips, similar_partners, similar_temperature: class
            audio queries and like-named partners (see MixtureDataset).
        mix_in: other training corpora mixed into the stream, a list of
            ``{"cuts": embedded cuts manifest, "weight": share of the batches, ...}``, each
            with any of :data:`MIX_IN_KEYS` for its own mixtures (the rest as above); a batch
            is drawn from one corpus, so its partners and absent targets come from that
            corpus. The main corpus keeps ``1 - sum(weights)`` of the batches.

    The number of batches consumed is saved in checkpoints (``state_dict``) and restored on
    resume, so a killed run continues on the batches it would have seen.
    """

    def __init__(self, train_cuts, valid_cuts=None, valid_mixtures=None,
                 batch_size: int = DataConf.batch_size, n_src: int = DataConf.n_src,
                 n_samples: int = DataConf.n_samples, gain_range=AUDIO.gain_range,
                 divide_by_n: bool = DataConf.divide_by_n,
                 num_workers: int = DataConf.num_workers, seed: int = DataConf.seed,
                 min_src=DataConf.min_src, augment=DataConf.augment,
                 max_src=DataConf.max_src, balance=DataConf.balance,
                 class_audio_query=DataConf.class_audio_query,
                 class_audio_clips=DataConf.class_audio_clips,
                 similar_partners=DataConf.similar_partners,
                 similar_temperature=DataConf.similar_temperature, mix_in=DataConf.mix_in):
        super().__init__()
        if (valid_cuts is None) != (valid_mixtures is None):
            raise ValueError("Pass both valid_cuts and valid_mixtures, or neither")
        self.train_cuts, self.valid_cuts, self.valid_mixtures = train_cuts, valid_cuts, valid_mixtures
        self.batch_size, self.n_src, self.n_samples = batch_size, n_src, n_samples
        self.gain_range, self.divide_by_n = tuple(gain_range), divide_by_n
        self.num_workers, self.seed = num_workers, seed
        self.min_src, self.max_src = min_src, max_src
        if balance not in (None, "label"):
            raise ValueError(f"data.balance must be 'label' or null, got {balance!r}")
        self.balance = balance
        self.augment = MixtureAugment.from_dict(augment)
        self.class_audio_query, self.class_audio_clips = class_audio_query, class_audio_clips
        self.similar_partners, self.similar_temperature = similar_partners, similar_temperature
        self.mix_in = [self._check_mix_in(i, m) for i, m in enumerate(mix_in or [])]
        mixed = sum(m["weight"] for m in self.mix_in)
        if mixed >= 1:
            raise ValueError("data.mix_in weights must leave the main corpus a share: their sum"
                             f" is {mixed} (>= 1)")
        self.corpus_weights = [1 - mixed] + [m["weight"] for m in self.mix_in]  # main first
        self.resume_index = 0

    @staticmethod
    def _check_mix_in(i: int, entry) -> dict:
        """One ``data.mix_in`` entry, checked before training starts (its path exists, its
        weight is a share, its settings are known); ``augment`` becomes a MixtureAugment."""
        where = f"data.mix_in[{i}]"
        if not isinstance(entry, dict) or "cuts" not in entry or "weight" not in entry:
            raise ValueError(f"{where} must be a mapping with 'cuts' and 'weight', got {entry!r}")
        unknown = set(entry) - {"cuts", "weight", *MIX_IN_KEYS}
        if unknown:
            raise ValueError(f"{where} sets {sorted(unknown)}; a mixed-in corpus may set"
                             f" cuts, weight and {', '.join(MIX_IN_KEYS)}")
        try:
            weight = float(entry["weight"])
        except (TypeError, ValueError):
            weight = float("nan")
        if not 0 < weight < 1:
            raise ValueError(f"{where}.weight is a share of the batches in (0, 1), got {entry['weight']!r}")
        if entry.get("balance") not in (None, "label"):
            raise ValueError(f"{where}.balance must be 'label' or null, got {entry['balance']!r}")
        out = {**entry, "weight": weight}
        if "augment" in entry:
            out["augment"] = MixtureAugment.from_dict(entry["augment"])
        if not Path(str(entry["cuts"])).is_file():
            raise ValueError(f"{where}.cuts: no such manifest {entry['cuts']!r}")
        return out

    def _rank(self):
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _corpus(self, cuts_path, settings: dict, seed: str, world_size: int, rank: int):
        """``(NumberedBatches, MixtureDataset)`` of one training corpus."""
        cuts = CutSet.from_file(cuts_path).to_eager()
        epoch = balance_labels(cuts) if settings["balance"] == "label" else cuts
        batches = NumberedBatches(epoch, self.batch_size, seed=self.seed,
                                  world_size=world_size, rank=rank)
        dataset = MixtureDataset(cuts, n_src=self.n_src, n_samples=self.n_samples,
                                 gain_range=tuple(settings["gain_range"]),
                                 divide_by_n=settings["divide_by_n"], seed=seed,
                                 min_src=settings["min_src"], max_src=settings["max_src"],
                                 augment=settings["augment"],
                                 class_audio_query=settings["class_audio_query"],
                                 class_audio_clips=settings["class_audio_clips"],
                                 similar_partners=settings["similar_partners"],
                                 similar_temperature=settings["similar_temperature"])
        return batches, dataset

    def train_dataloader(self):
        world_size, rank = self._rank()
        main = {k: getattr(self, k) for k in MIX_IN_KEYS}
        batches, dataset = self._corpus(self.train_cuts, main, f"{self.seed}-rank{rank}",
                                        world_size, rank)
        if self.mix_in:
            corpora = [(batches, dataset)]
            for i, m in enumerate(self.mix_in):
                try:
                    corpora.append(self._corpus(
                        m["cuts"], {**main, **{k: m[k] for k in MIX_IN_KEYS if k in m}},
                        f"{self.seed}-rank{rank}-mix{i}", world_size, rank))
                except ValueError as err:
                    raise ValueError(f"data.mix_in[{i}] ({m['cuts']}): {err}") from None
            batches = MuxedBatches([b for b, _ in corpora], self.corpus_weights, seed=self.seed)
            dataset = MuxedMixtures([d for _, d in corpora])
        batches.start_at(max(self._batches_done(), self.resume_index))
        return torch.utils.data.DataLoader(
            dataset, sampler=batches, batch_size=None, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def val_dataloader(self):
        if self.valid_cuts is None:
            return []
        cuts = CutSet.from_file(self.valid_cuts).to_eager()
        return torch.utils.data.DataLoader(FixedMixtures(self.valid_mixtures, cuts),
                                           batch_size=self.batch_size,
                                           num_workers=min(self.num_workers, 1))

    def _batches_done(self) -> int:
        """Batches this rank has consumed: optimiser steps x gradient-accumulation factor."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return trainer.global_step * trainer.accumulate_grad_batches

    def state_dict(self):
        return {"batches_done": self._batches_done()}

    def load_state_dict(self, state):
        self.resume_index = int(state.get("batches_done", 0))
