"""Evaluation runs: separation with a model on benchmark data (scoring itself, which runs
no model, is :mod:`omnisep_plugin.scoring`).

- :mod:`.fixed_mixtures`: the fixed test mixtures with every query kind (recipe stage 3);
- :mod:`.fresh_pairs`: freshly rendered instrument pairs (``omnisep eval-pairs``);
- :mod:`.figures`: spectrogram figures of a run.
"""
from .figures import plot_separation
from .fixed_mixtures import (DEFAULT_COMPOSE_WEIGHTS, separate_test_mixtures,
                             source_queries)
from .fresh_pairs import fresh_pair_gains

__all__ = ["DEFAULT_COMPOSE_WEIGHTS", "fresh_pair_gains", "plot_separation",
           "separate_test_mixtures", "source_queries"]
