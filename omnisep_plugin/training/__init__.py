"""Training: the Lightning system, the data module and the resumable sampler."""
from .datamodule import FixedMixtures, MixtureDataModule
from .sampler import NumberedBatches
from .system import OmniSepSystem, warmup_step_decay

__all__ = ["FixedMixtures", "MixtureDataModule", "NumberedBatches", "OmniSepSystem",
           "warmup_step_decay"]
