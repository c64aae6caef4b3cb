"""One process of the 2-process DDP test (``test_ddp.py`` starts it under torchrun).

Usage: ddp_rank.py CONF TRAIN_CUTS EXP_DIR RECORD_DIR [--resume] [--kill-at STEP]
                   [--set section.key=value ...]
Trains with ``omnisep_plugin.training.run.train`` and writes ``RECORD_DIR/rank<r>.json``: the
first cut id of every example this rank trained on, per step, and a digest of its parameters.
"""
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import pytorch_lightning as pl

from omnisep_plugin.training.run import load_conf, train


class Record(pl.Callback):
    def __init__(self, out: Path, kill_at=None):
        self.out, self.cut_ids, self.kill_at = out, {}, kill_at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.kill_at and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        self.cut_ids[trainer.global_step] = [group[0] for group in batch["cut_ids"]]

    def on_train_end(self, trainer, module):
        # the parameters (BatchNorm's running statistics are each rank's own until DDP
        # broadcasts rank 0's at the next forward pass)
        weights = b"".join(p.detach().cpu().contiguous().numpy().tobytes()
                           for p in module.parameters())
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
            {"cut_ids": self.cut_ids, "weights": hashlib.sha256(weights).hexdigest()}))


def main(argv):
    conf_path, train_cuts, exp_dir, record = argv[:4]
    rest = argv[4:]
    resume = "--resume" in rest
    overrides = [rest[i + 1] for i, a in enumerate(rest) if a == "--set"]
    kill_at = [int(rest[i + 1]) for i, a in enumerate(rest) if a == "--kill-at"]
    conf = load_conf(conf_path, overrides)
    train(conf, exp_dir, train_cuts, resume=resume, progress=False,
          callbacks=[Record(Path(record), kill_at[0] if kill_at else None)])


if __name__ == "__main__":
    main(sys.argv[1:])
