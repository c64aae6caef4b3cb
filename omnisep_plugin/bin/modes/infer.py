"""``omnisep-infer``: Asteroid's ``asteroid-infer`` with a query.

``asteroid-infer MODEL --files ...`` cannot separate with OmniSep: it has no way to pass a
query (and does not import this plugin, so it cannot even rebuild the model). This command
takes the same arguments (``--files`` with files, folders or globs, ``-f``, ``-r``,
``-o``, ``-d``, ``-w`` / ``--ola-hop``) and passes every other option to ``omnisep
separate`` (``--text``, ``--audio``, ``--image``, ``--negative-text``, ``--offline``,
``--imagebind``, ...); estimates are ``<name>_est1.wav`` beside each input, or in ``-o``,
as Asteroid writes them, with the ``.json`` sidecar of ``omnisep separate``.
"""
import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import List, Optional

import click

from .cli_base import cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omnisep-infer", description="asteroid-infer for OmniSep: separate files with a "
        "query. Options not listed here (--text, --audio, --offline, ...) go to "
        "`omnisep separate` (see `omnisep separate --help`).")
    p.add_argument("url_or_path", help="OmniSep package (omnisep.pth) or 'default'.")
    p.add_argument("--files", required=True, nargs="+",
                   help="Files to separate; also folders and globs.")
    p.add_argument("-f", "--force-overwrite", action="store_true")
    p.add_argument("-r", "--resample", action="store_true",
                   help="Accepted for compatibility: other rates are always resampled.")
    p.add_argument("-w", "--ola-window", type=int, help="Window length in samples.")
    p.add_argument("--ola-hop", type=int, help="Hop in samples (default: window // 2).")
    p.add_argument("-o", "--output-dir", help="Output folder (default: beside each input).")
    p.add_argument("-d", "--device", default="auto")
    return p


def separate_args(argv: Optional[List[str]] = None) -> List[List[str]]:
    """The ``omnisep separate`` command lines of an ``omnisep-infer`` call (one per
    output folder)."""
    from asteroid.scripts.asteroid_cli import _process_files_as_list

    args, rest = _parser().parse_known_args(argv)
    files = _process_files_as_list(args.files)
    if not files:
        raise click.UsageError(f"--files {' '.join(args.files)}: no audio file found")
    common = ["--model", args.url_or_path, "--device", args.device, *rest]
    if args.force_overwrite:
        common.append("--force")
    if args.ola_window:
        hop = args.ola_hop or args.ola_window // 2
        common += ["--window", str(args.ola_window),
                   "--overlap", repr(1 - hop / args.ola_window)]
    groups = defaultdict(list)
    for f in files:
        groups[args.output_dir or str(Path(f).parent)].append(f)
    return [["separate", *group, *common, "--out", out] for out, group in groups.items()]


def infer_main(argv: Optional[List[str]] = None) -> None:
    """Console script ``omnisep-infer``."""
    try:
        for command in separate_args(argv):
            cli.main(command, prog_name="omnisep-infer", standalone_mode=False)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
