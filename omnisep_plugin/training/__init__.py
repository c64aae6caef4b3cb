"""Training: the Lightning system, the data module and the resumable sampler."""
from .datamodule import FixedMixtures, MixtureDataModule
from .sampler import MuxedBatches, NumberedBatches
from .system import OmniSepSystem, model_from_checkpoint, warmup_step_decay

__all__ = ["FixedMixtures", "MixtureDataModule", "MuxedBatches", "NumberedBatches", "OmniSepSystem",
           "model_from_checkpoint", "warmup_step_decay"]
