"""recipes/custom/run.sh end to end on a folder of labelled tones the test writes: your
own data -> manifests -> offline embeddings -> fine-tuning from a package -> scores."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from omnisep_plugin.models import OmniSep
from omnisep_plugin.testing.dummies import tiny_omnisep
from omnisep_plugin.training.run import load_conf

from omnisep_plugin.testing.fake_corpus import make_labelled_folder

ROOT = Path(__file__).resolve().parents[2]


def test_custom_recipe_fine_tunes_on_a_folder(tmp_path):
    make_labelled_folder(tmp_path / "sounds")
    start = tiny_omnisep(query_dim=384)
    start.save(tmp_path / "start.pth")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({
        "query": {"modalities": ["text", "audio"]},
        "data": {"batch_size": 4, "n_samples": 16000, "num_workers": 0},
        "optim": {"lr": 0.01, "warmup_steps": 1, "decay_steps": 100},
        "training": {"max_steps": 3, "val_every": 3, "ckpt_every": 3, "precision": "32"},
        "eval": {"compose_weights": {"text": 1.0, "audio": 1.0}}}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", str(ROOT / "recipes/custom/run.sh"), "--corpus-dir",
                          str(tmp_path / "sounds"), "--init", str(tmp_path / "start.pth"),
                          "--conf", str(tmp_path / "tiny.yaml"), "--n-test-mixtures", "3",
                          "--n-samples", "16000", "--bank-size", "1"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    exp = tmp_path / "exp/custom/omnisep"
    tuned = OmniSep.from_pretrained(exp / "omnisep.pth")
    assert tuned.get_model_args() == start.get_model_args()
    assert load_conf(exp / "conf.yaml")["model"] == start.get_model_args()
    table = (exp / "results" / "results.md").read_text()
    assert {"text", "audio"} <= {line.split("|")[1].strip() for line in table.splitlines()[2:]}
    assert (tmp_path / "data/custom/manifests/custom_cuts_train.jsonl.gz").is_file()
