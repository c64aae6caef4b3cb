"""Two-process DDP on the CPU (gloo) through torchrun, as the README's multi-node route runs:
each rank trains on its own shard, the ranks end with identical weights, and a run killed
mid-way and resumed logs the losses of the uninterrupted one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lhotse import CutSet

from omnisep_plugin.testing.tiny_recipe import make_tiny_embedded_corpus
from omnisep_plugin.training import NumberedBatches
from omnisep_plugin.training.run import read_metric

RANK_SCRIPT = Path(__file__).with_name("ddp_rank.py")
SETTINGS = ["--set", "training.accelerator=cpu", "--set", "training.devices=2",
            "--set", "training.strategy=ddp", "--set", "training.max_steps=16",
            "--set", "training.ckpt_every=4", "--set", "training.val_every=1000",
            "--set", "data.batch_size=2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_embedded_corpus(tmp_path_factory.mktemp("tiny"))


def _torchrun(corpus, exp, record, *extra, ok=True):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(RANK_SCRIPT), str(corpus["conf"]), str(corpus["train_cuts"]), str(exp),
           str(record), *SETTINGS, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert (out.returncode == 0) == ok, out.stdout[-2000:] + out.stderr[-3000:]


def _records(record):
    return [json.loads((record / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_two_ranks_train_on_different_shards_and_resume_after_a_kill(corpus, tmp_path):
    _torchrun(corpus, tmp_path / "straight", tmp_path / "rec_straight")
    rank0, rank1 = _records(tmp_path / "rec_straight")
    assert rank0["weights"] == rank1["weights"]
    assert sorted(map(int, rank0["cut_ids"])) == sorted(map(int, rank1["cut_ids"])) == list(range(16))
    for step in rank0["cut_ids"]:
        assert not set(rank0["cut_ids"][step]) & set(rank1["cut_ids"][step]), step
    # Lhotse's sampler gives each rank its own shard of every epoch (the next epoch
    # reshuffles, then shards again)
    cuts = CutSet.from_file(corpus["train_cuts"]).to_eager()
    n = NumberedBatches(cuts, 2, world_size=2, rank=0).batches_per_epoch
    epoch0 = [{c for s in range(n) for c in r["cut_ids"][str(s)]} for r in (rank0, rank1)]
    assert len(epoch0[0]) == len(epoch0[1]) == 2 * n and not epoch0[0] & epoch0[1]

    killed = tmp_path / "killed"
    _torchrun(corpus, killed, tmp_path / "rec_killed", "--kill-at", "6", ok=False)  # SIGKILL
    assert (killed / "checkpoints" / "step0000004.ckpt").exists()
    assert not (killed / "checkpoints" / "step0000008.ckpt").exists()
    assert not (killed / "omnisep.pth").exists()
    _torchrun(corpus, killed, tmp_path / "rec_resumed", "--resume")
    assert (killed / "omnisep.pth").exists()
    straight = dict(zip(*read_metric(tmp_path / "straight" / "logs" / "metrics.csv", "train_loss")))
    resumed = dict(zip(*read_metric(killed / "logs" / "metrics.csv", "train_loss")))
    later = [s for s in straight if s >= 4]
    assert later and all(s in resumed for s in later)
    for s in later:
        assert resumed[s] == pytest.approx(straight[s], rel=1e-4, abs=1e-5), s
    r0, r1 = _records(tmp_path / "rec_resumed")
    assert r0["weights"] == r1["weights"]
