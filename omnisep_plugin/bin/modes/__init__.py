"""The ``omnisep`` command, one module per command group (Lhotse's ``bin/modes`` layout).

:mod:`.cli_base` defines the groups and the user-error rule; importing a module below
registers its commands. To add a group, write ``bin/modes/<name>.py`` (see
:mod:`.cli_base`) and import it here.
"""
from . import (evaluate, export, omni, prepare, query, score, separate,  # noqa: F401
               train)  # (registration)
from .cli_base import CONTEXT, BadInput, cli, load_encoder, prepare as prepare_group  # noqa: F401
