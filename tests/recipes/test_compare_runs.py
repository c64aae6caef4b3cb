"""recipes/omni/local/compare_runs.py: paired SDRi / SI-SDRi of two separate-test runs."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def _run_folder(path: Path, refs, mix, estimates):
    for sub in ("refs", "mix", "est/text"):
        (path / sub).mkdir(parents=True)
    for name, ref in refs.items():
        sf.write(path / "refs" / name, ref, 16000)
        sf.write(path / "mix" / name, mix[name], 16000)
    for name, est in estimates.items():
        sf.write(path / "est" / "text" / name, est, 16000)


def test_compare_runs_pairs_the_targets_both_runs_scored(tmp_path):
    rng = np.random.default_rng(0)
    a, b = 0.3 * rng.standard_normal((2, 16000)).astype(np.float32)
    mix = a + b
    refs = {"m0_0.wav": a, "m0_1.wav": b, "m1_0.wav": a, "m1_1.wav": np.zeros_like(a)}  # silent: skipped
    mixes = dict.fromkeys(refs, mix)
    good = {"m0_0.wav": a + 0.01 * b, "m0_1.wav": b + 0.01 * a, "m1_0.wav": a + 0.01 * b}
    poor = {"m0_0.wav": a + 0.5 * b, "m0_1.wav": b + 0.5 * a}        # m1_0 missing: not paired
    _run_folder(tmp_path / "good", refs, mixes, good)
    _run_folder(tmp_path / "poor", refs, mixes, poor)
    (tmp_path / "mixtures.json").write_text(json.dumps({"mixtures": [
        {"id": "m0", "sources": [{"label": "dog"}, {"label": "cello"}]},
        {"id": "m1", "sources": [{"label": "dog"}, {"label": "cello"}]}]}))
    (tmp_path / "classes.json").write_text(json.dumps(
        {"dog": {"category": "animal"}, "cello": {"category": "instrument"}}))
    out = subprocess.run([sys.executable, str(ROOT / "recipes/omni/local/compare_runs.py"),
                          str(tmp_path / "mixtures.json"), str(tmp_path / "classes.json"),
                          str(tmp_path / "good"), str(tmp_path / "poor"), "--kinds", "text",
                          "--labels", "cello"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| text")]
    assert len(rows) == 2 and all(r[1].strip() == "2" for r in rows)   # m0's two targets only
    good_row, poor_row = ([float(c) for c in r[3:6]] for r in rows)
    # 40 dB less of the other source against 6 dB: the good run is far better on every column
    assert all(g > p + 20 for g, p in zip(good_row, poor_row))
    assert "(1)" in rows[0][-1]   # the one cello target
