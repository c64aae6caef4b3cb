"""Separation models. Importing this module registers them with ``asteroid.models``.

Asteroid's ``BaseModel.from_pretrained(package)`` builds the registered class and loads the
weights; what it builds for ``"OmniSep"`` is an OmniSep in eval mode, as every loading
route of this package returns it: ready for inference (BatchNorm uses, and keeps, the
stored statistics). Call ``.train()`` to fine-tune.
"""
from asteroid.models import register_model

from .omnisep import OmniSep
from .routed import RoutedOmniSep


def _omnisep_for_inference(*args, **kwargs) -> OmniSep:
    """``asteroid.models.get("OmniSep")``: an :class:`OmniSep` in eval mode."""
    return OmniSep(*args, **kwargs).eval()


_omnisep_for_inference.__name__ = OmniSep.__name__
register_model(_omnisep_for_inference)


def _routed_for_inference(*args, **kwargs) -> RoutedOmniSep:
    """``asteroid.models.get("RoutedOmniSep")``: a :class:`RoutedOmniSep` in eval mode."""
    return RoutedOmniSep(*args, **kwargs).eval()


_routed_for_inference.__name__ = RoutedOmniSep.__name__
register_model(_routed_for_inference)

__all__ = ["OmniSep", "RoutedOmniSep"]
