"""Score any separator's outputs: SDR (museval BSS Eval v4), SDRi, SI-SDR(i), per query kind.

Reads files and runs no model (the runs that separate are in :mod:`omnisep_plugin.evaluation`):
:mod:`.metrics` scores one estimate, :mod:`.pairs` finds, checks and scores many files,
:mod:`.tables` summarises, writes and compares.

The paper scores with museval, one window spanning the whole clip, target SDR only; this
module does the same (``backend="museval"``) and reports mean, std, median and count per
query kind. SI-SDR and its input value come from ``asteroid.metrics.get_metrics``.

Fast path: ``backend="fast"`` computes SDR with fast_bss_eval (BSS Eval sources, 512-tap
filters). It is checked against museval on the first ``check_pairs`` pairs and used only
if every difference is within ``FAST_TOLERANCE_DB``; otherwise museval stays the reference.
museval's v4 is the "images" variant: for one mono estimate its SDR is the plain SNR, while
fast_bss_eval forgives a gain and a 512-tap filter, so the two agree on estimates whose error
is additive noise and differ by several dB on scaled or filtered ones (a separator's
outputs: 0.6-1.2 dB on average, docs/results.md section 15). The backend used and the
measured difference are reported.

Silent references: a reference whose mean power is below ``SILENCE_POWER`` (-80 dBFS) has
no defined SDR; such pairs are left out of the statistics and counted in the table's
``silent`` column, so the table never holds a NaN. Silent estimates are scored (0 dB SDR
and SI-SDR, the signal-to-error ratio of an all-zero estimate) and counted under the table.

Checked before scoring, each error naming the file: readable audio, sample rate and channel
count equal to the reference's, no NaN or Inf sample (see :mod:`.pairs`).
"""
from .metrics import (EXTRA_METRICS, FAST_TOLERANCE_DB, METRICS, SDR_BACKENDS, SILENCE_POWER,
                      SILENT_ESTIMATE_DB, _fit, bss_sdr, check_extra_metrics, fast_sdr,
                      score_pair)
from .pairs import (_load_pair, _score_group, check_fast_backend, check_pair_files, load_pair,
                    pairs_from_folders, read_pairs_csv, score_pairs)
from .tables import (_parse_cell, compare_scores, read_scores_csv, summarize, to_markdown,
                     write_results)

__all__ = ["EXTRA_METRICS", "FAST_TOLERANCE_DB", "METRICS", "SDR_BACKENDS", "SILENCE_POWER",
           "SILENT_ESTIMATE_DB", "bss_sdr", "check_extra_metrics", "check_fast_backend",
           "check_pair_files", "compare_scores", "fast_sdr", "load_pair", "pairs_from_folders",
           "read_pairs_csv", "read_scores_csv", "score_pair", "score_pairs", "summarize",
           "to_markdown", "write_results"]
