"""Training and validation data for :class:`OmniSepSystem`, resumable to the batch."""
import pytorch_lightning as pl
import torch
from lhotse import CutSet

from ..config import AUDIO, DataConf
from ..data.augment import MixtureAugment
from ..data.mixtures import (MixtureDataset, balance_labels, collate_embeddings,
                             load_test_mixtures, render_mixture)
from .sampler import NumberedBatches


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
                 similar_temperature=DataConf.similar_temperature):
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
        self.resume_index = 0

    def _rank(self):
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self):
        cuts = CutSet.from_file(self.train_cuts).to_eager()
        world_size, rank = self._rank()
        epoch = balance_labels(cuts) if self.balance == "label" else cuts
        batches = NumberedBatches(epoch, self.batch_size, seed=self.seed,
                                  world_size=world_size, rank=rank)
        batches.start_at(max(self._batches_done(), self.resume_index))
        dataset = MixtureDataset(cuts, n_src=self.n_src, n_samples=self.n_samples,
                                 gain_range=self.gain_range, divide_by_n=self.divide_by_n,
                                 seed=f"{self.seed}-rank{rank}", min_src=self.min_src,
                                 max_src=self.max_src, augment=self.augment,
                                 class_audio_query=self.class_audio_query,
                                 class_audio_clips=self.class_audio_clips,
                                 similar_partners=self.similar_partners,
                                 similar_temperature=self.similar_temperature)
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
