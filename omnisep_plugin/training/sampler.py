"""Numbered, resumable batches on top of a Lhotse sampler, from one corpus or several."""
import random
from typing import Iterator, Sequence, Tuple

from lhotse import CutSet
from lhotse.dataset import SimpleCutSampler


class NumberedBatches:
    """Endless ``(batch_index, CutSet)`` batches from a shuffling Lhotse sampler.

    Epoch ``e`` is Lhotse's ``SimpleCutSampler`` order for ``seed`` after ``set_epoch(e)``;
    batch ``i`` of the stream is a pure function of ``(seed, i)`` (and the rank under DDP),
    so ``start_at(i)`` resumes a killed run on the very batches it would have seen.
    ``MixtureDataset`` seeds its draws from the index as well.

    Args:
        cuts: training cuts (eager).
        batch_size: cuts per batch (per rank).
        seed: shuffling seed.
        world_size, rank: passed to Lhotse (auto-detected under torch.distributed).
    """

    def __init__(self, cuts: CutSet, batch_size: int, seed: int = 0, world_size=None, rank=None):
        self.sampler = SimpleCutSampler(cuts, max_cuts=batch_size, shuffle=True, drop_last=True,
                                        seed=seed, world_size=world_size, rank=rank)
        self.start = 0
        n_batches = sum(1 for _ in self._epoch(0))
        if n_batches == 0:
            raise ValueError(f"{len(cuts)} cuts make no full batch of {batch_size}"
                             f" per rank; lower the batch size")
        self.batches_per_epoch = n_batches

    def _epoch(self, epoch: int):
        self.sampler.set_epoch(epoch)
        return iter(self.sampler)

    def start_at(self, index: int) -> None:
        self.start = int(index)

    def __iter__(self) -> Iterator[Tuple[int, CutSet]]:
        index = self.start
        epoch, skip = divmod(index, self.batches_per_epoch)
        while True:
            for n, cuts in enumerate(self._epoch(epoch)):
                if n >= skip:
                    yield index, cuts
                    index += 1
            epoch, skip = epoch + 1, 0


class MuxedBatches:
    """Endless ``(batch_index, corpus, CutSet)`` batches drawn from several corpora.

    Batch ``i`` comes from corpus ``k`` with probability ``weights[k]``, drawn by a generator
    seeded with ``(seed, i)`` alone; corpus ``k``'s batches are the consecutive batches of
    its own :class:`NumberedBatches` stream. So batch ``i`` is still a pure function of
    ``(seed, i)``, and ``start_at(i)`` resumes on the very batches a killed run would have
    seen (each stream is moved to the number of batches it gave before ``i``).

    Args:
        streams: one :class:`NumberedBatches` per corpus.
        weights: each corpus's share of the batches (positive; normalised).
        seed: seeds the corpus draws.
    """

    def __init__(self, streams: Sequence[NumberedBatches], weights: Sequence[float], seed: int = 0):
        if not streams:
            raise ValueError("MuxedBatches needs at least one stream")
        if len(streams) != len(weights):
            raise ValueError(f"{len(streams)} streams need as many weights, got {len(weights)}")
        if any(w <= 0 for w in weights):
            raise ValueError(f"Corpus weights must be positive, got {list(weights)}")
        self.streams, self.weights, self.seed = list(streams), [float(w) for w in weights], seed
        self.start = 0

    def corpus_of(self, index: int) -> int:
        """The corpus batch ``index`` is drawn from."""
        rng = random.Random(f"{self.seed}-corpus-{index}")
        return rng.choices(range(len(self.streams)), weights=self.weights)[0]

    def start_at(self, index: int) -> None:
        self.start = int(index)

    def __iter__(self) -> Iterator[Tuple[int, int, CutSet]]:
        done = [0] * len(self.streams)
        for i in range(self.start):
            done[self.corpus_of(i)] += 1
        for stream, n in zip(self.streams, done):
            stream.start_at(n)
        batches = [iter(s) for s in self.streams]
        index = self.start
        while True:
            k = self.corpus_of(index)
            _, cuts = next(batches[k])
            yield index, k, cuts
            index += 1
