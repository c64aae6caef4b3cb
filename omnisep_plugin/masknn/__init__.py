"""Mask-estimation networks."""
from .unet import AudioUNet, default_architecture

__all__ = ["AudioUNet", "default_architecture"]
