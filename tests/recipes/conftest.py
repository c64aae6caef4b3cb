import importlib
import sys
from pathlib import Path

import pytest

OMNI_LOCAL = Path(__file__).resolve().parents[2] / "recipes/omni/local"


@pytest.fixture(scope="module")
def omni_local():
    """Import a script of recipes/omni/local by name (they import each other as top-level
    modules, so their folder is on sys.path while the test module runs)."""
    sys.path.insert(0, str(OMNI_LOCAL))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(OMNI_LOCAL))
