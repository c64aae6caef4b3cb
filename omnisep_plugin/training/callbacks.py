"""Lightning callbacks of the training run."""
import logging
import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer


class DecayAfterMinutes(pl.Callback):
    """Multiplies the learning rate by ``factor`` once, when the run's training time passes
    ``minutes``: the decay of a run bounded by time (``training.max_minutes``, e.g. a GPU
    lease), whose number of steps is not known beforehand (``training.decay_at_minutes``).

    The time is Lightning's :class:`Timer` (counted across resumes) where the run has one,
    else the time since this fit began. The decay scales the scheduler's base rates, so the
    schedule's own factor (warm-up, step decays) still applies on top of it, and a resumed run
    keeps it (the scheduler's and this callback's states are in the checkpoint).
    """

    def __init__(self, minutes: float, factor: float):
        if minutes < 0 or not 0 < factor <= 1:
            raise ValueError(f"decay after {minutes} min by x{factor}: the minutes must be >= 0 "
                             "and the factor in (0, 1]")
        self.minutes, self.factor, self.done = float(minutes), float(factor), False
        self._start = None

    def state_dict(self):
        return {"done": self.done}

    def load_state_dict(self, state_dict):
        self.done = bool(state_dict["done"])

    def on_train_start(self, trainer, pl_module):
        self._start = time.monotonic()

    def _elapsed_s(self, trainer) -> float:
        for callback in trainer.callbacks:
            if isinstance(callback, Timer):
                return callback.time_elapsed("train")
        return time.monotonic() - self._start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.done or self._elapsed_s(trainer) < 60 * self.minutes:
            return
        for config in trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [lr * self.factor for lr in config.scheduler.base_lrs]
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= self.factor
        self.done = True
        logging.info("learning rate x%g after %.1f min of training (step %d)", self.factor,
                     self.minutes, trainer.global_step)
