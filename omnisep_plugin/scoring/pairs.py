"""Which files to score, reading and checking them, and scoring many pairs (in parallel).

Every file is checked before it is scored, and every error names the file: a missing or
unreadable file, an absurd header (:func:`omnisep_plugin.audio_io.check_input_file`), NaN
or Inf samples, a sample rate or channel count that differs from the reference's. Multi-
channel files: channel 0 is scored (all three files must have the same channel count).
"""
import csv
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from ..audio_io import check_input_file, read_audio
from .metrics import (FAST_TOLERANCE_DB, PESQ_RATES, SDR_BACKENDS, SILENT_ESTIMATE_DB, _fit,
                      bss_sdr, check_extra_metrics, fast_sdr, is_silent, score_pair)


def check_pair_files(pair: dict) -> int:
    """Headers of a pair's files (reference, estimate, optional mixture): readable, same
    sample rate and channel count as the reference; returns the rate. ValueError /
    FileNotFoundError naming the file otherwise."""
    ref = check_input_file(pair["reference"])
    for key in ("estimate", "mixture"):
        if not pair.get(key):
            continue
        info = check_input_file(pair[key])
        if info.samplerate != ref.samplerate:
            raise ValueError(f"{pair[key]} is at {info.samplerate} Hz, its reference "
                             f"{pair['reference']} at {ref.samplerate} Hz")
        if info.channels != ref.channels:
            raise ValueError(f"{pair[key]} has {info.channels} channel(s), its reference "
                             f"{pair['reference']} {ref.channels}")
    return ref.samplerate


def load_pair(pair: dict):
    """``(reference, estimate, mixture or None, rate)``: channel 0 of each file, float64,
    after :func:`check_pair_files` (NaN / Inf samples are refused naming the file)."""
    sr = check_pair_files(pair)
    ref = read_audio(pair["reference"])[0]
    est = read_audio(pair["estimate"])[0]
    mix = read_audio(pair["mixture"])[0][0].astype(np.float64) if pair.get("mixture") else None
    return ref[0].astype(np.float64), est[0].astype(np.float64), mix, sr


_load_pair = load_pair  # the old private name


def read_pairs_csv(path: Path) -> List[dict]:
    """Pairs from a CSV with header ``id,kind,reference,estimate[,mixture]`` (paths)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"id", "kind", "reference", "estimate"} - set(rows[0] if rows else {})
    if not rows or missing:
        raise ValueError(f"{path}: needs a header id,kind,reference,estimate[,mixture] and rows"
                         + (f" (missing {sorted(missing)})" if rows else ""))
    return rows


def pairs_from_folders(references: Path, estimates: Path,
                       mixtures: Optional[Path] = None) -> List[dict]:
    """Pairs by file name: ``estimates/<kind>/<name>.wav`` (or ``estimates/<name>.wav``,
    kind ``all``) with ``references/<name>.wav`` and optionally ``mixtures/<name>.wav``."""
    references, estimates = Path(references), Path(estimates)
    kinds = sorted(p for p in estimates.iterdir() if p.is_dir()) or [estimates]
    pairs = []
    for kind_dir in kinds:
        kind = kind_dir.name if kind_dir != estimates else "all"
        for est in sorted(kind_dir.glob("*.wav")):
            pair = {"id": est.stem, "kind": kind, "reference": str(references / est.name),
                    "estimate": str(est)}
            if mixtures is not None:
                pair["mixture"] = str(Path(mixtures) / est.name)
            pairs.append(pair)
    if not pairs:
        raise ValueError(f"No estimate wavs under {estimates}")
    return pairs


def check_fast_backend(pairs: List[dict], n: int = 20) -> float:
    """Largest |SDR_fast - SDR_museval| (dB) over the first ``n`` non-silent pairs."""
    delta = 0.0
    for pair in pairs[:n]:
        ref, est, _, _ = load_pair(pair)
        if not is_silent(ref) and not is_silent(est):
            delta = max(delta, abs(fast_sdr(ref, est) - bss_sdr(ref, _fit(est, len(ref)))))
    return delta


def _score_group(pairs: List[dict], backend: str, extra_metrics: Iterable[str]) -> List[dict]:
    """Score pairs that share one reference and mixture (the mixture's SDR is computed once)."""
    rows, mixture_sdr = [], None
    for pair in pairs:
        ref, est, mix, sr = load_pair(pair)
        try:
            if mix is not None and mixture_sdr is None and not is_silent(ref):
                mix_fit = _fit(mix, len(ref))
                mixture_sdr = (SILENT_ESTIMATE_DB if is_silent(mix_fit)
                               else SDR_BACKENDS[backend](ref, mix_fit))
            scores = score_pair(ref, est, mix, sample_rate=sr, backend=backend,
                                extra_metrics=extra_metrics, mixture_sdr=mixture_sdr)
        except (ValueError, RuntimeError) as err:  # name the pair whatever went wrong
            raise ValueError(f"Cannot score {pair['estimate']} against {pair['reference']}: "
                             f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                             ) from None
        row = {"id": pair["id"], "kind": pair["kind"], "silent": scores is None}
        row.update(scores or {})
        rows.append(row)
    return rows


def _score_group_single_thread(pairs, backend, extra_metrics):
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):  # one BLAS thread per worker: the workers share the cores
        return _score_group(pairs, backend, extra_metrics)


def score_pairs(pairs: List[dict], backend: str = "museval", extra_metrics: Iterable[str] = (),
                check_pairs: int = 20, progress: bool = True, jobs: int = 1):
    """Score every pair (files read with soundfile, channel 0; all headers are checked
    first, see the module docstring).

    ``jobs`` > 1 scores in that many processes (one BLAS thread each); the rows are the
    same, in the same order.

    Returns:
        ``(rows, info)``: one row per pair, and ``{"backend", "max_fast_delta_db"}`` saying
        which SDR backend was used (``fast`` only if it matched museval within
        ``FAST_TOLERANCE_DB`` on the checked pairs).
    """
    import logging
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from tqdm.auto import tqdm

    if backend not in SDR_BACKENDS:
        raise ValueError(f"Unknown SDR backend {backend!r}; expected one of {sorted(SDR_BACKENDS)}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    extra_metrics = check_extra_metrics(extra_metrics)
    for pair in pairs:  # every header before any scoring: fail fast, naming the file
        sr = check_pair_files(pair)
        if "pesq" in extra_metrics and sr not in PESQ_RATES:
            raise ValueError(f"PESQ needs audio at {' or '.join(map(str, PESQ_RATES))} Hz; "
                             f"{pair['reference']} is at {sr} Hz")
    info = {"backend": backend, "max_fast_delta_db": None}
    if backend == "fast":
        delta = check_fast_backend(pairs, check_pairs)
        info["max_fast_delta_db"] = delta
        if delta > FAST_TOLERANCE_DB:
            logging.warning("fast SDR differs from museval by up to %.3f dB (> %.2f): using "
                            "museval", delta, FAST_TOLERANCE_DB)
            info["backend"] = "museval"
    groups: Dict[tuple, List[int]] = defaultdict(list)  # (reference, mixture) -> pair indices
    for i, pair in enumerate(pairs):
        groups[(pair["reference"], pair.get("mixture"))].append(i)
    tasks = [[pairs[i] for i in indices] for indices in groups.values()]
    options = {"backend": info["backend"], "extra_metrics": tuple(extra_metrics)}
    rows: List[Optional[dict]] = [None] * len(pairs)
    with tqdm(total=len(pairs), desc="scoring", disable=not progress, unit="pair") as bar:
        if jobs == 1:
            results = map(partial(_score_group, **options), tasks)
        else:
            pool = ProcessPoolExecutor(jobs)
            results = pool.map(partial(_score_group_single_thread, **options), tasks)
        try:
            for indices, group_rows in zip(groups.values(), results):
                for i, row in zip(indices, group_rows):
                    rows[i] = row
                bar.update(len(indices))
        finally:
            if jobs > 1:
                pool.shutdown(cancel_futures=True)
    return rows, info
