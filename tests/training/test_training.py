import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from asteroid.models import BaseModel
from lhotse import CutSet

from omnisep_plugin.models import OmniSep
from omnisep_plugin.training import NumberedBatches, model_from_checkpoint
from omnisep_plugin.training.run import load_conf, read_metric
from omnisep_plugin.testing.tiny_recipe import make_tiny_embedded_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_embedded_corpus(tmp_path_factory.mktemp("tiny"))


def _train(corpus, exp_dir, *extra, wait=True):
    cmd = [sys.executable, "-m", "omnisep_plugin.bin.cli", "train", "--conf", str(corpus["conf"]),
           "--train-cuts", str(corpus["train_cuts"]), "--valid-cuts", str(corpus["valid_cuts"]),
           "--valid-mixtures", str(corpus["valid_mixtures"]), "--exp-dir", str(exp_dir), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_numbered_batches_resume_on_the_same_batches(corpus):
    cuts = CutSet.from_file(corpus["train_cuts"]).to_eager()
    full = NumberedBatches(cuts, batch_size=2, seed=3)
    stream = iter(full)
    first = [(i, [c.id for c in b]) for i, b in (next(stream) for _ in range(9))]
    assert [i for i, _ in first] == list(range(9))
    resumed = NumberedBatches(cuts, batch_size=2, seed=3)
    resumed.start_at(5)  # crosses an epoch boundary (4 batches per epoch)
    stream = iter(resumed)
    assert [(i, [c.id for c in b]) for i, b in (next(stream) for _ in range(4))] == first[5:]
    assert first[0][1] != first[4][1]  # epochs are shuffled differently
    with pytest.raises(ValueError, match="no full batch"):
        NumberedBatches(cuts, batch_size=100)


def test_train_exports_an_asteroid_package_that_separates(corpus, tmp_path):
    _train(corpus, tmp_path / "exp")
    exp = tmp_path / "exp"
    assert {p.name for p in (exp / "checkpoints").iterdir()} == {
        "last.ckpt", "step0000006.ckpt", "step0000012.ckpt"}
    assert (exp / "loss.png").stat().st_size > 1000
    assert load_conf(exp / "conf.yaml")["model"]["query_dim"] == 16
    steps, losses = read_metric(exp / "logs" / "metrics.csv", "train_loss")
    assert steps == list(range(12)) and all(l == l for l in losses)
    # It learns: on the fixed validation mixtures (no sampling noise) the loss falls and the
    # SI-SDR rises between the validation at step 6 and the one at step 12.
    val_steps, val_loss = read_metric(exp / "logs" / "metrics.csv", "val_loss")
    _, val_si_sdr = read_metric(exp / "logs" / "metrics.csv", "val_si_sdr")
    assert val_steps == [5, 11] and len(val_si_sdr) == 2
    assert val_loss[1] < val_loss[0] and val_si_sdr[1] > val_si_sdr[0], (val_loss, val_si_sdr)
    model = BaseModel.from_pretrained(str(exp / "omnisep.pth"))
    assert isinstance(model, OmniSep)
    est = model.separate(torch.randn(1, 8000), query=torch.randn(1, 16))
    assert est.shape == (1, 1, 8000) and torch.isfinite(est).all()
    # Each checkpoint is a network: the last one is the exported model, an earlier one is not.
    mix, query = torch.randn(1, 8000), torch.randn(1, 2, 16)
    with torch.no_grad():
        exported = model.eval()(mix, query)
        assert torch.allclose(model_from_checkpoint(exp / "checkpoints" / "last.ckpt")(mix, query), exported)
        assert not torch.allclose(model_from_checkpoint(exp / "checkpoints" / "step0000006.ckpt")(mix, query),
                                  exported)
    with pytest.raises(ValueError, match="not a checkpoint of `omnisep train`"):
        model_from_checkpoint(exp / "conf.yaml")
    with pytest.raises(FileNotFoundError):
        model_from_checkpoint(exp / "checkpoints" / "step0099999.ckpt")
    # A second run into the same folder without --resume is refused.
    out = subprocess.run([sys.executable, "-m", "omnisep_plugin.bin.cli", "train",
                          "--train-cuts", str(corpus["train_cuts"]), "--exp-dir", str(exp)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--resume" in out.stderr


def _losses(exp):
    with open(exp / "logs" / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["train_loss"]) for r in csv.DictReader(f) if r.get("train_loss")}


def test_sigkill_and_resume_follows_the_uninterrupted_run(corpus, tmp_path):
    settings = ["--set", "training.max_steps=30", "--set", "training.ckpt_every=10",
                "--set", "training.val_every=1000", "--set", "data.n_samples=32000"]
    _train(corpus, tmp_path / "straight", *settings)
    proc = _train(corpus, tmp_path / "killed", *settings, wait=False)
    ckpt = tmp_path / "killed" / "checkpoints" / "step0000010.ckpt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    assert not (tmp_path / "killed" / "omnisep.pth").exists()
    _train(corpus, tmp_path / "killed", *settings, "--resume")
    straight, resumed = _losses(tmp_path / "straight"), _losses(tmp_path / "killed")
    later = [s for s in straight if s > 10]
    assert later and all(s in resumed for s in later)
    for s in later:
        assert resumed[s] == pytest.approx(straight[s], rel=1e-4, abs=1e-5), s
    a = torch.load(tmp_path / "straight/omnisep.pth", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "killed/omnisep.pth", weights_only=True)["state_dict"]
    for name in a:
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-5), name


def test_every_resume_continues_from_the_newest_state_and_keeps_the_metrics(corpus, tmp_path):
    """Two resumes in a row: each continues from where the previous part stopped (last.ckpt
    is overwritten, never versioned as last-v1.ckpt), and the logged metrics of every part
    stay readable."""
    exp = tmp_path / "parts"
    common = ["--set", "training.ckpt_every=4", "--set", "training.val_every=1000",
              "--set", "data.n_samples=32000"]
    _train(corpus, exp, *common, "--set", "training.max_steps=4")
    _train(corpus, exp, *common, "--set", "training.max_steps=8", "--resume")
    assert not list((exp / "checkpoints").glob("last-v*.ckpt"))
    assert torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 8
    _train(corpus, exp, *common, "--set", "training.max_steps=12", "--resume")
    assert torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 12
    steps, _ = read_metric(exp / "logs" / "metrics.csv", "train_loss")
    assert min(steps) < 4 and max(steps) >= 8 and steps == sorted(steps)


def test_gradient_accumulation_resumes_on_the_same_micro_batches(corpus, tmp_path):
    """``training.accumulate_grad_batches: 2``: a run stopped after 4 optimiser steps and
    resumed logs the losses of the uninterrupted one (the data stream restarts at batch
    8, not 4; the Query-Mixup draws follow the micro-batch)."""
    common = ["--set", "training.accumulate_grad_batches=2", "--set", "training.ckpt_every=4",
              "--set", "training.val_every=1000", "--set", "data.n_samples=16000"]
    _train(corpus, tmp_path / "straight", *common, "--set", "training.max_steps=8")
    _train(corpus, tmp_path / "parts", *common, "--set", "training.max_steps=4")
    _train(corpus, tmp_path / "parts", *common, "--set", "training.max_steps=8", "--resume")
    straight = dict(zip(*read_metric(tmp_path / "straight" / "logs" / "metrics.csv", "train_loss")))
    parts = dict(zip(*read_metric(tmp_path / "parts" / "logs" / "metrics.csv", "train_loss")))
    assert sorted(straight) == list(range(8)) and sorted(parts) == list(range(8))
    for s in range(4, 8):
        assert parts[s] == pytest.approx(straight[s], rel=1e-4, abs=1e-5), s
    a = torch.load(tmp_path / "straight/omnisep.pth", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "parts/omnisep.pth", weights_only=True)["state_dict"]
    for name in a:
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-5), name


def test_decay_at_minutes_lowers_the_rate_once_and_the_checkpoint_keeps_it(corpus, tmp_path):
    """A run bounded by time decays after ``training.decay_at_minutes`` (here at once, 0 min):
    the scheduler's base rate and the optimiser's rate are x decay_factor, once, and both are in
    the checkpoint a resumed run starts from; without the setting the rate stays."""
    lr = load_conf(corpus["conf"])["optim"]["lr"]
    _train(corpus, tmp_path / "decayed", "--set", "training.decay_at_minutes=0",
           "--set", "optim.decay_factor=0.25", "--set", "optim.warmup_steps=1")
    _train(corpus, tmp_path / "plain", "--set", "optim.warmup_steps=1")
    for name, expected in (("decayed", 0.25 * lr), ("plain", lr)):
        state = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", map_location="cpu",
                           weights_only=False)
        assert state["lr_schedulers"][0]["base_lrs"] == pytest.approx([expected])
        assert state["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(expected)
    callbacks = torch.load(tmp_path / "decayed" / "checkpoints" / "last.ckpt", map_location="cpu",
                           weights_only=False)["callbacks"]
    assert [v for k, v in callbacks.items() if "DecayAfterMinutes" in k] == [{"done": True}]


def _first_losses(corpus, tmp_path, key, values) -> dict:
    """The first training loss of a 2-step run per value of ``key`` (same weights, batches)."""
    for value in values:
        _train(corpus, tmp_path / str(value), "--set", f"{key}={value}",
               "--set", "training.max_steps=2", "--set", "training.val_every=2")
        assert load_conf(tmp_path / str(value) / "conf.yaml")["optim"][key.split(".")[1]] == value
    return {v: _losses(tmp_path / str(v))[0] for v in values}


def _assert_refused(corpus, exp_dir, setting, message):
    """``omnisep train --set SETTING`` fails naming ``message``, with no traceback, before
    it writes the experiment folder."""
    out = subprocess.run([sys.executable, "-m", "omnisep_plugin.bin.cli", "train", "--conf",
                          str(corpus["conf"]), "--train-cuts", str(corpus["train_cuts"]),
                          "--exp-dir", str(exp_dir), "--set", setting],
                         capture_output=True, text=True)
    assert out.returncode != 0 and message in out.stderr
    assert "Traceback" not in out.stderr and not exp_dir.exists()


def test_mask_target_ratio_reaches_the_loss_and_an_unknown_one_is_refused(corpus, tmp_path):
    """``optim.mask_target=ratio`` trains against the ratio mask: from the same weights and
    batches the first step's loss differs from eq. 3's; an unknown target stops the run
    before it writes anything, naming the known ones."""
    first = _first_losses(corpus, tmp_path, "optim.mask_target", ("binary", "ratio"))
    assert all(v == v for v in first.values()) and abs(first["binary"] - first["ratio"]) > 1e-4, first
    _assert_refused(corpus, tmp_path / "soft", "optim.mask_target=soft",
                    "Unknown mask target 'soft'; known: binary, ratio")


def test_wave_loss_weight_reaches_the_loss_and_a_negative_one_is_refused(corpus, tmp_path):
    """``optim.wave_loss_weight`` adds the waveform term: from the same weights and batches the
    first step's loss differs from eq. 3's alone (by the weight times a negative SNR); a
    negative weight stops the run before it writes anything."""
    first = _first_losses(corpus, tmp_path, "optim.wave_loss_weight", (0.0, 0.05))
    assert all(v == v for v in first.values()) and abs(first[0.0] - first[0.05]) > 1e-3, first
    _assert_refused(corpus, tmp_path / "neg", "optim.wave_loss_weight=-1",
                    "optim.wave_loss_weight must be a number >= 0, got -1")


def test_impossible_augmentation_is_refused_before_the_run_writes_anything(corpus, tmp_path):
    _assert_refused(corpus, tmp_path / "fast",
                    "data.augment={speed_prob: 0.5, speed_range: [1.1, 0.9]}",
                    "speed_range: low 1.1 above high 0.9")
