"""Numbered, resumable batches on top of a Lhotse sampler."""
from typing import Iterator, Tuple

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
