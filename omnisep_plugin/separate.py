"""Deprecated: use :mod:`omnisep_plugin.separation` (same names)."""
import warnings

from .audio_io import read_audio  # noqa: F401
from .separation import file_separate, numpy_separate, separate, torch_separate  # noqa: F401

warnings.warn("omnisep_plugin.separate is deprecated; import from omnisep_plugin.separation",
              DeprecationWarning, stacklevel=2)
