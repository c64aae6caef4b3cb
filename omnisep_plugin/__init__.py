"""omnisep-plugin: OmniSep (ICLR 2025) omni-modal query-based sound separation for Asteroid.

Importing the package is cheap (no torch): :class:`OmniSep` is imported on first use, and
it is registered with ``asteroid.models`` as soon as Asteroid is imported, so that
``asteroid.models.BaseModel.from_pretrained("omnisep.pth")`` rebuilds an OmniSep.
"""
__version__ = "0.1.0"

from . import pipelines  # noqa: E402,F401  (registers the shipped models' names)
from .registry import register_with_asteroid  # noqa: E402

register_with_asteroid()

__all__ = ["OmniSep", "__version__"]


def __getattr__(name):
    if name == "OmniSep":
        from .models import OmniSep
        return OmniSep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
