"""Separation models. Importing this module registers them with ``asteroid.models``."""
from asteroid.models import register_model

from .omnisep import OmniSep

register_model(OmniSep)

__all__ = ["OmniSep"]
