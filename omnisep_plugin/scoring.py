"""Score any separator's outputs: SDR (museval BSS Eval v4), SDRi, SI-SDR(i), per query kind.

The paper scores with museval, one window spanning the whole clip, target SDR only; this
module does the same (``backend="museval"``) and reports mean, std, median and count per
query kind. SI-SDR and its input value come from ``asteroid.metrics.get_metrics``.

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

from .utils import atomic_write

SILENCE_POWER = 1e-8
METRICS = ("sdr", "sdri", "si_sdr", "si_sdri")


def bss_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """museval BSS Eval v4 SDR of one mono estimate, one window over the whole clip."""
    import museval

    n = len(reference)
    sdr, _, _, _ = museval.evaluate(reference[None, :, None], estimate[None, :n, None],
                                    win=n, hop=n)
    return float(sdr[0, 0])


def score_pair(reference: np.ndarray, estimate: np.ndarray, mixture: Optional[np.ndarray],
               sample_rate: int = 16000) -> Optional[Dict[str, float]]:
    """SDR, SDRi, SI-SDR, SI-SDRi of one estimate; None for a silent reference.

    Args:
        reference, estimate, mixture: mono ``[time]`` arrays (the estimate is cut or
            zero-padded to the reference's length). Without a mixture, SDRi and SI-SDRi
            are NaN-free by being left out of the result.
    """
    from asteroid.metrics import get_metrics

    reference = np.asarray(reference, dtype=np.float64)
    estimate = _fit(np.asarray(estimate, dtype=np.float64), len(reference))
    if not np.isfinite(estimate).all():
        raise ValueError("Estimate contains NaN or Inf samples")
    if np.mean(reference ** 2) < SILENCE_POWER:
        return None
    out = {"sdr": bss_sdr(reference, estimate)}
    mix = _fit(np.asarray(mixture, dtype=np.float64), len(reference)) if mixture is not None else estimate
    m = get_metrics(mix[None], reference[None], estimate[None], sample_rate=sample_rate,
                    metrics_list=["si_sdr"], average=True)
    out["si_sdr"] = float(m["si_sdr"])
    if mixture is not None:
        out["sdri"] = out["sdr"] - bss_sdr(reference, mix)
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
        with atomic_write(paths[key]) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(data)
    with atomic_write(paths["table"]) as tmp:
        Path(tmp).write_text(to_markdown(table))
    return paths


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


def score_pairs(pairs: List[dict], progress: bool = True) -> List[dict]:
    """Score every pair (files are read with soundfile, first channel); returns rows."""
    from tqdm.auto import tqdm

    from .separate import read_audio

    rows = []
    for pair in tqdm(pairs, desc="scoring", disable=not progress, unit="pair"):
        ref, sr = read_audio(pair["reference"])
        est, est_sr = read_audio(pair["estimate"])
        if est_sr != sr:
            raise ValueError(f"{pair['estimate']} is at {est_sr} Hz, its reference at {sr} Hz")
        mix = read_audio(pair["mixture"])[0][0] if pair.get("mixture") else None
        scores = score_pair(ref[0], est[0], mix, sample_rate=sr)
        row = {"id": pair["id"], "kind": pair["kind"], "silent": scores is None}
        row.update(scores or {})
        rows.append(row)
    return rows
