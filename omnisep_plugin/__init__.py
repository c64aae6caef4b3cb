"""omnisep-plugin: OmniSep (ICLR 2025) omni-modal query-based sound separation for Asteroid."""
__version__ = "0.1.0"

from .models import OmniSep  # noqa: E402  (registers OmniSep with asteroid.models)
from . import pipelines  # noqa: E402,F401  (registers the shipped models' names)

__all__ = ["OmniSep", "__version__"]
