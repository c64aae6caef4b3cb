"""recipes/omni/local/specialist_targets.py: which targets are the specialist's 11 labels,
the mixtures that hold them, and the gate that keeps one of two networks' estimates."""
import json

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="module")
def st(omni_local):
    return omni_local("specialist_targets")


MIXTURES = {"n_samples": 8000, "mixtures": [
    {"id": "m0", "sources": [{"label": "cello"}, {"label": "dog barking"}]},
    {"id": "m1", "sources": [{"label": "dog barking"}, {"label": "rain"}]},
    {"id": "m2", "sources": [{"label": "acoustic_guitar"}, {"label": "violin"}]}]}


def test_the_labels_are_the_specialists_and_subset_keeps_their_mixtures(st, tmp_path):
    labels = st.specialist_labels()
    assert {"cello", "violin", "xylophone"} <= labels and "dog barking" not in labels
    (tmp_path / "mix.json").write_text(json.dumps(MIXTURES))
    assert st.targets(str(tmp_path / "mix.json"), labels) == [
        ("m0_0", "cello"), ("m2_0", "acoustic_guitar"), ("m2_1", "violin")]
    assert st.subset(str(tmp_path / "mix.json"), str(tmp_path / "out.json"), labels) == 2
    out = json.loads((tmp_path / "out.json").read_text())
    assert [m["id"] for m in out["mixtures"]] == ["m0", "m2"] and out["n_samples"] == 8000


def test_the_gate_keeps_the_specialist_within_the_margin_and_the_other_beyond_it(st, tmp_path, capsys):
    rng = np.random.default_rng(0)
    ref, other = 0.1 * rng.standard_normal((2, 16000))
    for name, est in (("spec", ref + 0.01 * other), ("omni", ref + 0.5 * other)):
        for sub in ("refs", "mix", "est/k"):
            (tmp_path / name / sub).mkdir(parents=True)
        sf.write(tmp_path / name / "refs/m0_0.wav", ref, 16000)
        sf.write(tmp_path / name / "mix/m0_0.wav", ref + other, 16000)
        sf.write(tmp_path / name / "est/k/m0_0.wav", est, 16000)
    # a margin of +2 keeps the specialist's estimate whatever the cosines (they lie in [-1, 1]),
    # -2 never does
    st.gate([("m0_0", "cello")], (str(tmp_path / "spec"), "k"), (str(tmp_path / "omni"), "k"), [2.0, -2.0])
    lines = capsys.readouterr().out.splitlines()
    spec, omni = (float(lines[0].split(f"{who} ")[1].split(",")[0]) for who in ("specialist", "open-domain"))
    assert spec > omni + 20        # 40 dB below the reference against 6
    assert lines[1] == f"margin 2: {spec:.2f} dB, the specialist's estimate kept for 100 %"
    assert lines[2] == f"margin -2: {omni:.2f} dB, the specialist's estimate kept for 0 %"
