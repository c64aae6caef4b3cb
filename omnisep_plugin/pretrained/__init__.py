"""The files of the shipped models (``default/``). The bundles that load them are in
:mod:`omnisep_plugin.pipelines`; importing them from here still works (deprecated)."""
import warnings

from ..pipelines import BUNDLES, DEFAULT, OmniSepBundle, export_bundle  # noqa: F401

warnings.warn("omnisep_plugin.pretrained is deprecated as a module; import DEFAULT, BUNDLES, "
              "OmniSepBundle and export_bundle from omnisep_plugin.pipelines",
              DeprecationWarning, stacklevel=2)
