"""Paired comparison of two models' test outputs: SDRi and SI-SDRi (fast_bss_eval) of the same
targets, per query kind, mean per category then over categories (as the issue's targets
are stated), the mean over targets, and the mean over one list of labels' targets; each
estimate scored as ``omnisep score --backend fast`` scores it.

Each RUN folder is what ``omnisep separate-test`` writes for one test set (recipes/omni
stage 5): ``refs/``, ``mix/`` and ``est/<kind>/`` of ``<mixture id>_<source>.wav``. Only
targets both runs scored are compared (a silent reference is skipped), so the figures are
paired; the mixtures JSON gives each target's label and the corpus's classes its category.

    python recipes/omni/local/compare_runs.py data/omni/embedded/test_mixtures.json \\
        data/omni/corpus/classes.json exp/omni/gpu2/test exp/omni/model/test \\
        --kinds text,composed --labels cello,clarinet
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

import numpy as np
import soundfile as sf

from omnisep_plugin.open_domain import load_categories
from omnisep_plugin.scoring.metrics import score_pair


def score_kind(runs, kind: str):
    """``{target file name: [(SDRi, SI-SDRi) per run]}`` over the targets every run has an
    estimate of, scored as ``omnisep score --backend fast`` scores them
    (:func:`~omnisep_plugin.scoring.metrics.score_pair`: a silent reference is left out, a
    silent estimate scores 0 dB); the mixture's own SDR is computed once per target."""
    names = set.intersection(*({p.name for p in (run / "est" / kind).glob("*.wav")} for run in runs))
    rows = {}
    for name in sorted(names):
        ref, mix = _read(runs[0] / "refs" / name), _read(runs[0] / "mix" / name)
        for run in runs[1:]:
            if not np.array_equal(_read(run / "refs" / name), ref):
                raise ValueError(f"{run / 'refs' / name} differs from {runs[0] / 'refs' / name}: "
                                 "the runs are not of the same test mixtures")
        scores, mixture_sdr = [], None
        for run in runs:
            score = score_pair(ref, _read(run / "est" / kind / name), mix, backend="fast",
                               mixture_sdr=mixture_sdr)
            if score is None:   # a silent reference
                break
            mixture_sdr = score["sdr"] - score["sdri"]
            scores.append((score["sdri"], score["si_sdri"]))
        else:
            rows[name] = scores
    return rows


def _read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mixtures", help="the test set's mixtures JSON (labels of the targets)")
    ap.add_argument("classes", help="the corpus's classes.json (label -> category)")
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--kinds", default="text,text+neg,audio+label,composed,composed+neg")
    ap.add_argument("--labels", default="", help="comma list: also the mean over their targets")
    args = ap.parse_args()
    label = {f"{m['id']}_{i}.wav": s["label"]
             for m in json.loads(Path(args.mixtures).read_text())["mixtures"]
             for i, s in enumerate(m["sources"])}
    categories = load_categories(args.classes)
    chosen = {x.strip() for x in args.labels.split(",") if x.strip()}
    runs = (args.run_a, args.run_b)
    print(f"| kind | targets | run | SDRi (categories) | SI-SDRi (categories) | SDRi (targets) |"
          + (f" SDRi ({len(chosen)} labels) |" if chosen else ""))
    print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if chosen else ""))
    for kind in args.kinds.split(","):
        rows = score_kind(runs, kind)
        for r, run in enumerate(runs):
            per_cat = defaultdict(list)
            for name, scores in rows.items():
                per_cat[categories.get(label[name], label[name])].append(scores[r])
            cat_sdri = mean(mean(s[0] for s in v) for v in per_cat.values())
            cat_si = mean(mean(s[1] for s in v) for v in per_cat.values())
            line = (f"| {kind} | {len(rows)} | {run} | {cat_sdri:.2f} | {cat_si:.2f} | "
                    f"{mean(s[r][0] for s in rows.values()):.2f} |")
            if chosen:
                picked = [s[r][0] for n, s in rows.items() if label[n] in chosen]
                line += f" {mean(picked):.2f} ({len(picked)}) |" if picked else " - |"
            print(line, flush=True)


if __name__ == "__main__":
    main()
