"""Judging an open-domain model: absent targets, per-category tables, capacity comparison.

- :func:`absent_target_rows`: for every fixed test mixture, the estimate-to-mixture energy
  ratio (dB) with a text query for a source that *is* in it and for a class that is *not*;
  a good open-domain separator returns near silence for the second.
- :func:`category_table`: the scorer's per-target rows (``scores.csv``) grouped by the
  category of the target's class (speech, instrument, animal, ...), per query kind.
- :func:`compare_runs`: the validation SI-SDR each training run reached (for choosing a
  capacity at equal wall time).
"""
import csv
import json
import math
import random
from collections import defaultdict
from pathlib import Path
from statistics import mean, median
from typing import Dict, List, Optional, Sequence

import torch

from .data.mixtures import load_test_mixtures, render_mixture


def energy_ratio_db(estimate: torch.Tensor, mixture: torch.Tensor) -> float:
    """``10 log10(|estimate|^2 / |mixture|^2)``: 0 dB = as loud as the mixture.

    Example:
        >>> round(energy_ratio_db(torch.ones(10) * 0.1, torch.ones(10)), 1)
        -20.0
    """
    num = float((estimate.double() ** 2).sum())
    den = float((mixture.double() ** 2).sum())
    return 10 * math.log10(max(num, 1e-20) / max(den, 1e-20))


def absent_target_rows(model, cuts, mixtures_path, query_set, seed: int = 0,
                       progress: bool = True, audio_bank=None, encoder=None) -> List[dict]:
    """Rows per fixed mixture: ``present`` (text query of its first source) and ``absent``
    (text query of a seeded random class that is not in the mixture), each with the
    estimate-to-mixture energy ratio in dB; with an ``audio_bank`` (the labels' audio
    prototypes), ``present+proto`` and ``absent+proto``: the same labels' text composed
    with their prototypes (``omnisep separate --prototypes``). Each form also as
    ``<kind>+neg``: the two queries asked for together, each removing the other
    (``omnisep separate --text A --text B``:
    :func:`~omnisep_plugin.query.ops.remove_each_other`). All from one pass; with an
    ``encoder`` (embeds audio), each single query's form also as ``<kind>+resid``: its
    residual-negative second pass (``omnisep separate --residual-negative``)."""
    from tqdm.auto import tqdm

    from .query.ops import remove_each_other
    from .query.residual import residual_queries
    from .query.spec import text_with_prototype

    def queries(label):
        text = query_set.lookup(label)
        out = {"": text}
        if audio_bank is not None:
            out["+proto"] = text_with_prototype(text, query_set, audio_bank)
        return out

    n_samples, entries = load_test_mixtures(mixtures_path)
    rng = random.Random(seed)
    device = next(model.parameters()).device
    rows = []
    model.eval()
    for entry in tqdm(entries, desc="present vs absent queries", disable=not progress):
        mix, _ = render_mixture(entry, cuts, n_samples)
        inside = {s["label"] for s in entry["sources"]}
        outside = sorted(set(query_set.labels) - inside)
        if not outside:
            continue
        present, absent = entry["sources"][0]["label"], rng.choice(outside)
        forms = {kind: queries(label) for kind, label in (("present", present), ("absent", absent))}
        todo = []
        for suffix in forms["present"]:
            pair = torch.stack([forms["present"][suffix], forms["absent"][suffix]])
            for tag, qs in ((suffix, pair), (suffix + "+neg", remove_each_other(pair))):
                todo += [("present" + tag, present, qs[0]), ("absent" + tag, absent, qs[1])]
        with torch.no_grad():
            est = model(mix[None].to(device), torch.stack([q for *_, q in todo])[None].to(device))[0].cpu()
        if encoder is not None:  # each query alone, again without its first pass's residual
            alone = [i for i, (kind, *_) in enumerate(todo) if not kind.endswith("+neg")]
            second, _ = residual_queries(encoder, mix, est[alone],
                                         torch.stack([todo[i][2] for i in alone]))
            with torch.no_grad():
                more = model(mix[None].to(device), second[None].to(device))[0].cpu()
            todo = todo + [(todo[i][0] + "+resid", todo[i][1], q) for i, q in zip(alone, second)]
            est = torch.cat([est, more])
        for (kind, label, _), wav in zip(todo, est):
            rows.append({"id": entry["id"], "kind": kind, "label": label,
                         "ratio_db": round(energy_ratio_db(wav, mix), 3)})
    return rows


def write_rows(path, rows: List[dict]) -> None:
    from .utils import write_csv
    write_csv(path, rows, list(rows[0]) if rows else ["id"])


def read_rows(path) -> List[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def absent_summary(rows: Sequence[dict]) -> Dict[str, float]:
    """Mean and median ratio of present and absent queries and the difference of the means
    (dB), per query form (``present``/``absent``, ``present+proto``/``absent+proto`` and each
    with ``+neg``).

    Example:
        >>> rows = [{"kind": "present", "ratio_db": -6}, {"kind": "absent", "ratio_db": -22}]
        >>> absent_summary(rows)["absent_quieter_db"]
        16.0
    """
    by = defaultdict(list)
    for r in rows:
        by[r["kind"]].append(float(r["ratio_db"]))
    out = {f"{k}_mean_db": mean(v) for k, v in by.items() if v}
    out.update({f"{k}_median_db": median(v) for k, v in by.items() if v})
    for suffix in sorted({k.split("+", 1)[1] for k in by if "+" in k} | {""}):
        tag = f"+{suffix}" if suffix else ""
        if f"present{tag}_mean_db" in out and f"absent{tag}_mean_db" in out:
            out[f"absent{tag}_quieter_db"] = out[f"present{tag}_mean_db"] - out[f"absent{tag}_mean_db"]
    return out


def energy_flag_rates(rows: Sequence[dict], min_energy_db: float, suffix: str = "") -> Dict[str, float]:
    """The energy cue of the query check at ``min_energy_db`` on present/absent rows (of the
    form ``present<suffix>`` / ``absent<suffix>``): the share of present targets flagged
    (false alarms) and of absent ones not flagged (misses).

    Example:
        >>> rows = [{"kind": "present", "ratio_db": -6}, {"kind": "absent", "ratio_db": -22},
        ...         {"kind": "absent", "ratio_db": -12}]
        >>> energy_flag_rates(rows, -15.0)
        {'false_alarm': 0.0, 'miss': 0.5, 'n_present': 1, 'n_absent': 2}
    """
    present = [float(r["ratio_db"]) for r in rows if r["kind"] == f"present{suffix}"]
    absent = [float(r["ratio_db"]) for r in rows if r["kind"] == f"absent{suffix}"]
    if not present or not absent:
        raise ValueError(f"No present{suffix} or absent{suffix} rows to rate")
    return {"false_alarm": float(mean(v < min_energy_db for v in present)),
            "miss": float(mean(v >= min_energy_db for v in absent)),
            "n_present": len(present), "n_absent": len(absent)}


def choose_energy_threshold(rows: Sequence[dict], suffix: str = "") -> float:
    """The ``min_energy_db`` (0.1 dB steps) with the fewest errors on ``rows``, false-alarm
    and miss rates weighted equally; of equal ones, the middle.

    Example:
        >>> rows = [{"kind": "present", "ratio_db": v} for v in (-4, -8, -12)] + [
        ...         {"kind": "absent", "ratio_db": v} for v in (-18, -24, -30)]
        >>> choose_energy_threshold(rows)
        -14.9
    """
    values = [float(r["ratio_db"]) for r in rows if r["kind"] in (f"present{suffix}", f"absent{suffix}")]
    if not values:
        raise ValueError(f"No present{suffix} or absent{suffix} rows to choose from")
    grid = [t / 10 for t in range(math.floor(min(values) * 10), math.ceil(max(values) * 10) + 1)]
    rates = [energy_flag_rates(rows, t, suffix) for t in grid]
    costs = [r["false_alarm"] + r["miss"] for r in rates]
    best = [t for t, c in zip(grid, costs) if c == min(costs)]
    return round(best[len(best) // 2], 1)


def target_labels(mixtures_path) -> Dict[str, str]:
    """``<mixture id>_<source index>`` -> class label, from a fixed-mixture file."""
    _, entries = load_test_mixtures(mixtures_path)
    return {f"{e['id']}_{i}": s["label"] for e in entries for i, s in enumerate(e["sources"])}


def category_table(scores: Sequence[dict], labels: Dict[str, str], categories: Dict[str, str],
                   metric: str = "sdri", kinds: Optional[Sequence[str]] = None) -> List[dict]:
    """Mean ``metric`` per category and query kind (rows), plus the mean over categories.

    ``scores``: rows of the scorer's ``scores.csv`` (``id``, ``kind``, metrics);
    ``labels``: target id -> label; ``categories``: label -> category.
    """
    cells = defaultdict(list)
    for row in scores:
        value = row.get(metric)
        if value in (None, "") or row.get("silent") in ("True", True):
            continue
        value = float(value)
        if math.isfinite(value):
            cells[categories[labels[row["id"]]], row["kind"]].append(value)
    kinds = list(kinds or sorted({k for _, k in cells}))
    table = []
    for cat in sorted({c for c, _ in cells}):
        line = {"category": cat, "targets": max(len(cells[cat, k]) for k in kinds if (cat, k) in cells)}
        line.update({k: mean(cells[cat, k]) for k in kinds if cells.get((cat, k))})
        table.append(line)
    if table:
        overall = {"category": "mean over categories", "targets": sum(t["targets"] for t in table)}
        overall.update({k: mean(t[k] for t in table if k in t) for k in kinds if any(k in t for t in table)})
        table.append(overall)
    return table


def table_markdown(table: List[dict], first: str = "category") -> str:
    """A list of dicts as a Markdown table (floats to 2 decimals)."""
    if not table:
        return "(no rows)\n"
    cols = [first] + [c for c in table[0] if c != first]
    for t in table[1:]:
        cols += [c for c in t if c not in cols]
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(fmt(t.get(c, "")) for c in cols) + " |" for t in table]
    return "\n".join(lines) + "\n"


def run_summary(run_dir) -> dict:
    """Last validation SI-SDR, steps and parameters of a training run folder."""
    from .training.run import read_metric
    run_dir = Path(run_dir)
    steps, values = read_metric(run_dir / "logs" / "metrics.csv", "val_si_sdr")
    conf = {}
    if (run_dir / "conf.yaml").is_file():
        import yaml
        conf = yaml.safe_load((run_dir / "conf.yaml").read_text())
    params = None
    if (run_dir / "omnisep.pth").is_file():
        from .models import OmniSep
        params = sum(p.numel() for p in OmniSep.from_pretrained(str(run_dir / "omnisep.pth")).parameters())
    return {"run": run_dir.name, "val_si_sdr": values[-1] if values else float("nan"),
            "step": steps[-1] if steps else 0, "params": params,
            "widths": conf.get("model", {}).get("unet_widths"),
            "crop": conf.get("data", {}).get("n_samples")}


def text_query_si_sdri(model, cuts, mixtures_path) -> float:
    """Mean SI-SDR improvement (dB) over fixed mixtures with each source's text query."""
    from torchmetrics.functional import scale_invariant_signal_distortion_ratio as si_sdr

    n_samples, entries = load_test_mixtures(mixtures_path)
    gains = []
    model.eval()
    for entry in entries:
        mix, sources = render_mixture(entry, cuts, n_samples)
        queries = torch.stack([torch.from_numpy(cuts[s["cut_id"]].load_custom("text_emb")).float()
                               for s in entry["sources"]])
        with torch.no_grad():
            est = model(mix[None], queries[None])[0]
        gains += (si_sdr(est, sources) - si_sdr(mix.expand_as(sources), sources)).tolist()
    return mean(gains)


def compare_runs(run_dirs: Sequence, valid_cuts=None, valid_mixtures=None) -> List[dict]:
    """:func:`run_summary` of each run, best first. With ``valid_cuts`` (embedded) and
    ``valid_mixtures``, every run's final model is also scored on those mixtures with text
    queries (``valid_text_si_sdri``: the same yardstick for runs stopped at any step) and
    ranked by it; otherwise by the last logged ``val_si_sdr``."""
    rows = [run_summary(d) for d in run_dirs]
    key = "val_si_sdr"
    if valid_cuts is not None:
        from .models import OmniSep
        for row, d in zip(rows, run_dirs):
            model = OmniSep.from_pretrained(str(Path(d) / "omnisep.pth"))
            row["valid_text_si_sdri"] = text_query_si_sdri(model, valid_cuts, valid_mixtures)
        key = "valid_text_si_sdri"
    return sorted(rows, key=lambda r: -r[key] if math.isfinite(r[key]) else math.inf)


def load_categories(classes_json) -> Dict[str, str]:
    """label -> category from a corpus's ``classes.json``."""
    return {lab: entry["category"] for lab, entry in json.loads(Path(classes_json).read_text()).items()}


def category_temperatures(query_set, categories: Dict[str, str], temperatures: Dict[str, float],
                          default: float = 1.0):
    """A mask-temperature table (:meth:`OmniSep.set_mask_temperatures`) by category: each
    Query-Set label's text embedding with the temperature of its category
    (``temperatures``; ``default`` for the others). Returns ``(keys [L, dim], values [L])``.

    Example:
        >>> from omnisep_plugin.query import QuerySet
        >>> qs = QuerySet(["dog", "flute"], torch.eye(2))
        >>> category_temperatures(qs, {"dog": "animal", "flute": "instrument"},
        ...                       {"instrument": 1.0}, default=1.5)[1].tolist()
        [1.5, 1.0]
    """
    unknown = sorted(set(query_set.labels) - set(categories))
    if unknown:
        raise ValueError(f"No category for {len(unknown)} Query-Set labels, e.g. {unknown[:3]}")
    values = [temperatures.get(categories[lab], default) for lab in query_set.labels]
    return query_set.embeddings.clone(), torch.tensor(values, dtype=torch.float32)
