"""Deprecated: use :mod:`omnisep_plugin.separation.overlap_add` (windows) and
:mod:`omnisep_plugin.audio_io` (reading, resampling)."""
import warnings

from .audio_io import read_blocks, resample_stream  # noqa: F401
from .separation.overlap_add import (crossfade_window, rechunk, separate_array,  # noqa: F401
                                     separate_stream)

warnings.warn("omnisep_plugin.streaming is deprecated; import from "
              "omnisep_plugin.separation.overlap_add or omnisep_plugin.audio_io",
              DeprecationWarning, stacklevel=2)
