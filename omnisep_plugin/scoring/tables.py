"""Per-kind statistics of scored rows, the Markdown table, result files and paired
comparison of two runs."""
import csv
import math
from collections import defaultdict
from pathlib import Path
from statistics import mean, median, pstdev
from typing import Dict, Iterable, List

from ..utils import atomic_write, write_csv
from .metrics import METRICS, SILENT_ESTIMATE_DB


def summarize(rows: Iterable[dict]) -> List[dict]:
    """Per query kind: mean, std, median and count of each metric (rows: ``kind`` + metrics
    + ``silent``). Kinds keep their first-seen order."""
    groups: Dict[str, List[dict]] = defaultdict(list)
    for row in rows:
        groups[row["kind"]].append(row)
    table = []
    for kind, items in groups.items():
        scored = [r for r in items if not r.get("silent")]
        line = {"kind": kind, "count": len(scored), "silent": len(items) - len(scored),
                "silent_estimates": sum(bool(r.get("silent_estimate")) for r in scored)}
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
    silent_est = sum(line.get("silent_estimates", 0) for line in table)
    if silent_est:
        lines += ["", f"{silent_est} silent estimate(s) scored as {SILENT_ESTIMATE_DB:g} dB SDR and "
                  "SI-SDR (the signal-to-error ratio of an all-zero estimate)."]
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
    if column in ("silent", "silent_estimate"):
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


