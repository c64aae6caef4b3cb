"""Score any separator's outputs: SDR (museval BSS Eval v4), SDRi, SI-SDR(i), per query kind.

The paper scores with museval, one window spanning the whole clip, target SDR only; this
module does the same (``backend="museval"``) and reports mean, std, median and count per
query kind. SI-SDR and its input value come from ``asteroid.metrics.get_metrics``.

Fast path: ``backend="fast"`` computes SDR with fast_bss_eval (BSS Eval sources, 512-tap
filters). It is checked against museval on the first ``check_pairs`` pairs and used only
if every difference is within ``FAST_TOLERANCE_DB``; otherwise museval stays the reference
(museval's v4 is the "images" variant, so the two differ by a few hundredths of a dB on
typical material). The backend used and the measured difference are reported.

Silent references: a reference whose mean power is below ``SILENCE_POWER`` (-80 dBFS) has
no defined SDR; such pairs are left out of the statistics and counted in the table's
``silent`` column, so the table never holds a NaN.
"""
import csv
import math
from collections import defaultdict
from pathlib import Path
from statistics import mean, median, pstdev
from typing import Dict, Iterable, List, Optional

import numpy as np

from .utils import atomic_write, write_csv

SILENCE_POWER = 1e-8
FAST_TOLERANCE_DB = 0.01
METRICS = ("sdr", "sdri", "si_sdr", "si_sdri", "stoi", "pesq")


def bss_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """museval BSS Eval v4 SDR of one mono estimate, one window over the whole clip."""
    import museval

    n = len(reference)
    sdr, _, _, _ = museval.evaluate(reference[None, :, None], estimate[None, :n, None],
                                    win=n, hop=n)
    return float(sdr[0, 0])


def fast_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """fast_bss_eval's SDR (BSS Eval sources, 512-tap distortion filter) of one estimate."""
    import fast_bss_eval

    return float(fast_bss_eval.sdr(reference[None], estimate[None, :len(reference)],
                                   filter_length=512)[0])


SDR_BACKENDS = {"museval": bss_sdr, "fast": fast_sdr}


def score_pair(reference: np.ndarray, estimate: np.ndarray, mixture: Optional[np.ndarray],
               sample_rate: int = 16000, backend: str = "museval",
               extra_metrics: Iterable[str] = (),
               mixture_sdr: Optional[float] = None) -> Optional[Dict[str, float]]:
    """SDR, SDRi, SI-SDR, SI-SDRi of one estimate; None for a silent reference.

    Args:
        reference, estimate, mixture: mono ``[time]`` arrays (the estimate is cut or
            zero-padded to the reference's length). Without a mixture, SDRi and SI-SDRi
            are left out of the result.
        backend: ``museval`` or ``fast`` (see the module docstring).
        extra_metrics: more of ``asteroid.metrics.get_metrics``' set (``stoi``, ``pesq``).
        mixture_sdr: the mixture's own SDR against the reference, when already known (it is
            the same for every estimate of one target: :func:`score_pairs` caches it).
    """
    from asteroid.metrics import get_metrics

    reference = np.asarray(reference, dtype=np.float64)
    estimate = _fit(np.asarray(estimate, dtype=np.float64), len(reference))
    if not np.isfinite(estimate).all():
        raise ValueError("Estimate contains NaN or Inf samples")
    if np.mean(reference ** 2) < SILENCE_POWER:
        return None
    sdr = SDR_BACKENDS[backend]
    out = {"sdr": sdr(reference, estimate)}
    mix = _fit(np.asarray(mixture, dtype=np.float64), len(reference)) if mixture is not None else estimate
    extra = list(extra_metrics)
    m = get_metrics(mix[None], reference[None], estimate[None], sample_rate=sample_rate,
                    metrics_list=["si_sdr", *extra], average=True)
    out["si_sdr"] = float(m["si_sdr"])
    out.update({name: float(m[name]) for name in extra})
    if mixture is not None:
        out["sdri"] = out["sdr"] - (sdr(reference, mix) if mixture_sdr is None else mixture_sdr)
        out["si_sdri"] = out["si_sdr"] - float(m["input_si_sdr"])
    return out


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def summarize(rows: Iterable[dict]) -> List[dict]:
    """Per query kind: mean, std, median and count of each metric (rows: ``kind`` + metrics
    + ``silent``). Kinds keep their first-seen order."""
    groups: Dict[str, List[dict]] = defaultdict(list)
    for row in rows:
        groups[row["kind"]].append(row)
    table = []
    for kind, items in groups.items():
        scored = [r for r in items if not r.get("silent")]
        line = {"kind": kind, "count": len(scored), "silent": len(items) - len(scored)}
        for metric in METRICS:
            values = [r[metric] for r in scored if metric in r and math.isfinite(r[metric])]
            if values:
                line.update({f"{metric}_mean": mean(values), f"{metric}_std": pstdev(values),
                             f"{metric}_median": median(values)})
        table.append(line)
    return table


def to_markdown(table: List[dict]) -> str:
    """The results table as Markdown: ``mean ± std (median)`` per metric, dB."""
    metrics = [m for m in METRICS if any(f"{m}_mean" in line for line in table)]
    head = "| query | " + " | ".join(m.upper().replace("_", "-") for m in metrics) + " | n | silent |"
    lines = [head, "|" + " --- |" * (len(metrics) + 3)]
    for line in table:
        cells = [f"{line[f'{m}_mean']:.2f} ± {line[f'{m}_std']:.2f} ({line[f'{m}_median']:.2f})"
                 if f"{m}_mean" in line else "-" for m in metrics]
        lines.append(f"| {line['kind']} | " + " | ".join(cells) +
                     f" | {line['count']} | {line['silent']} |")
    return "\n".join(lines) + "\n"


def write_results(rows: List[dict], table: List[dict], out_dir: Path) -> Dict[str, Path]:
    """Write per-pair scores (CSV), the summary (CSV) and the Markdown table, atomically."""
    out_dir = Path(out_dir)
    paths = {"pairs": out_dir / "scores.csv", "summary": out_dir / "summary.csv",
             "table": out_dir / "results.md"}
    for key, data in (("pairs", rows), ("summary", table)):
        fields = sorted({k for r in data for k in r}, key=lambda k: (k != "kind", k != "id", k))
        write_csv(paths[key], data, fields)
    with atomic_write(paths["table"]) as tmp:
        Path(tmp).write_text(to_markdown(table))
    return paths


def read_scores_csv(path: Path) -> List[dict]:
    """Per-target rows of a ``scores.csv`` written by :func:`write_results`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No scores file at {path}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"kind", "id", "sdr"} <= set(rows[0]):
        raise ValueError(f"{path} is not a scores.csv of `omnisep score` (kind,id,sdr,...)")
    return [{k: _parse_cell(k, v) for k, v in r.items()} for r in rows]


def _parse_cell(column: str, value: str):
    """A ``scores.csv`` cell back to its type: text ids, the ``silent`` flag, metrics
    (empty for silent references: NaN)."""
    if column in ("kind", "id"):
        return value
    if column == "silent":
        return value == "True"
    return float(value) if value else math.nan


def compare_scores(a: List[dict], b: List[dict], metric: str = "sdr") -> List[dict]:
    """Paired comparison of two runs scored on the same targets, per query kind.

    Returns one line per kind present in both: ``n`` common targets, ``mean_a``, ``mean_b``,
    the mean paired difference ``diff`` (a - b) with its 95 % interval half-width ``ci95``
    (normal approximation, 1.96 standard errors) and ``wins`` (share of targets where a > b).
    """
    for name, rows in (("A", a), ("B", b)):
        if not any(metric in r for r in rows):
            raise ValueError(f"Run {name} has no {metric!r} scores (SDRi needs the mixtures)")
    values_b = {(r["kind"], r["id"]): r.get(metric) for r in b if not r.get("silent")}
    kinds: Dict[str, List[tuple]] = defaultdict(list)
    for r in a:
        va, vb = r.get(metric, math.nan), values_b.get((r["kind"], r["id"]), math.nan)
        if not r.get("silent") and math.isfinite(va) and math.isfinite(vb):
            kinds[r["kind"]].append((va, vb))
    lines = []
    for kind, pairs in kinds.items():
        diffs = [x - y for x, y in pairs]
        n = len(diffs)
        lines.append({"kind": kind, "n": n, "mean_a": mean(x for x, _ in pairs),
                      "mean_b": mean(y for _, y in pairs), "diff": mean(diffs),
                      "ci95": 1.96 * pstdev(diffs) / math.sqrt(n) if n > 1 else math.nan,
                      "wins": sum(d > 0 for d in diffs) / n})
    if not lines:
        raise ValueError("The two runs share no scored target (same kinds and ids expected)")
    return lines


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


def _load_pair(pair: dict):
    from .separate import read_audio

    ref, sr = read_audio(pair["reference"])
    est, est_sr = read_audio(pair["estimate"])
    if est_sr != sr:
        raise ValueError(f"{pair['estimate']} is at {est_sr} Hz, its reference at {sr} Hz")
    mix = read_audio(pair["mixture"])[0][0] if pair.get("mixture") else None
    return ref[0].astype(np.float64), est[0].astype(np.float64), mix, sr


def check_fast_backend(pairs: List[dict], n: int = 20) -> float:
    """Largest |SDR_fast - SDR_museval| (dB) over the first ``n`` non-silent pairs."""
    delta = 0.0
    for pair in pairs[:n]:
        ref, est, _, _ = _load_pair(pair)
        if np.mean(ref ** 2) >= SILENCE_POWER:
            delta = max(delta, abs(fast_sdr(ref, est) - bss_sdr(ref, _fit(est, len(ref)))))
    return delta


def _score_group(pairs: List[dict], backend: str, extra_metrics: Iterable[str]) -> List[dict]:
    """Score pairs that share one reference and mixture (the mixture's SDR is computed once)."""
    rows, mixture_sdr = [], None
    for pair in pairs:
        ref, est, mix, sr = _load_pair(pair)
        if mix is not None and mixture_sdr is None and np.mean(ref ** 2) >= SILENCE_POWER:
            mixture_sdr = SDR_BACKENDS[backend](ref, _fit(mix, len(ref)))
        scores = score_pair(ref, est, mix, sample_rate=sr, backend=backend,
                            extra_metrics=extra_metrics, mixture_sdr=mixture_sdr)
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
    """Score every pair (files read with soundfile, first channel).

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
