"""``omnisep`` command line: corpus preparation, query embedding, training, separation, scoring.

The commands live in :mod:`omnisep_plugin.bin.modes` (one module per group); this module is
the console scripts' entry point and keeps the old import path.

Examples::

    omnisep prepare music CORPUS_DIR data/manifests
    omnisep prepare vggsound CORPUS_DIR data/manifests --clean-list test_clean=clean.txt
    omnisep embed data/manifests/music_cuts_train.jsonl.gz data/embedded \\
        --imagebind /path/to/imagebind_huge.pth --bank-size 1
    omnisep export-shar data/embedded/music_cuts_train_embedded.jsonl.gz data/shar
    omnisep score results/ --references refs/ --estimates est/ --mixtures mix/
    omnisep-infer default --files mixes/ -o separated/ --text cello   # asteroid-infer + query
"""
from .modes import CONTEXT, BadInput, cli, load_encoder  # noqa: F401
from .modes.cli_base import install_signal_handlers, setup_logging, user_errors  # noqa: F401
from .modes.cli_base import prepare
from .modes.infer import infer_main  # noqa: F401  (console script omnisep-infer)
from .modes.query import embed
from .modes.score import score


def prepare_main():
    """Console script ``omnisep-prepare``: the ``prepare`` group on its own."""
    setup_logging()
    install_signal_handlers()
    prepare()


def embed_main():
    """Console script ``omnisep-embed``."""
    setup_logging()
    install_signal_handlers()
    embed()


def score_main():
    """Console script ``omnisep-score``."""
    install_signal_handlers()
    score()


if __name__ == "__main__":
    cli()
