"""Names of shipped models, and Asteroid's registry, without importing torch.

``import omnisep_plugin`` must stay cheap (the ``omnisep`` command imports it before
parsing its options), yet it promises that Asteroid's ``BaseModel.from_pretrained`` knows
OmniSep. :func:`register_with_asteroid` keeps both: OmniSep is registered as soon as
``asteroid.models`` exists (at once if it is already imported, else right after its import).
"""
import importlib.abc
import importlib.machinery
import os
import sys
from typing import Callable, Dict, Union

#: Names ``OmniSep.from_pretrained`` accepts besides paths -> a function giving the package's
#: path. Filled by :mod:`omnisep_plugin.pipelines` (the model knows no shipped file).
PRETRAINED: Dict[str, Callable[[], Union[str, os.PathLike]]] = {}

_MODELS = "omnisep_plugin.models"  # importing it registers OmniSep with asteroid.models
_ASTEROID_MODELS = "asteroid.models"


def register_pretrained(name: str, path_getter: Callable[[], Union[str, os.PathLike]]) -> None:
    """Let ``OmniSep.from_pretrained(name)`` load the package at ``path_getter()``."""
    PRETRAINED[name] = path_getter


def _import_models() -> None:
    if _MODELS not in sys.modules:  # when present it is importing: it registers at its end
        importlib.import_module(_MODELS)


class _AfterAsteroidModels(importlib.abc.MetaPathFinder):
    """Finds ``asteroid.models`` as usual and imports :data:`_MODELS` once it has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _ASTEROID_MODELS:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _import_models()
        spec.loader.exec_module = exec_module
        return spec


def register_with_asteroid() -> None:
    """Register OmniSep with ``asteroid.models`` now or, lazily, when Asteroid is imported."""
    if _ASTEROID_MODELS in sys.modules:
        _import_models()
    elif not any(isinstance(f, _AfterAsteroidModels) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterAsteroidModels())
