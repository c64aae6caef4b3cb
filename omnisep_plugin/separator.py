"""Deprecated: use :mod:`omnisep_plugin.separation.files` (files),
:mod:`omnisep_plugin.query.spec` (``QuerySpec``, ``build_query``) and
:mod:`omnisep_plugin.audio_io` (``check_input_file``)."""
import warnings

from .audio_io import check_input_file  # noqa: F401
from .query.spec import MAX_ALPHA, QuerySpec, build_query  # noqa: F401
from .separation.files import (output_paths, plot_file_spectrograms, separate_file,  # noqa: F401
                               unique_stems, write_sidecar)

warnings.warn("omnisep_plugin.separator is deprecated; import from omnisep_plugin.separation "
              "(files), omnisep_plugin.query.spec (QuerySpec) or omnisep_plugin.audio_io",
              DeprecationWarning, stacklevel=2)
