"""Training on several corpora at once: ``data.mix_in`` (MuxedBatches + MuxedMixtures)."""
import subprocess
import sys

import pytest
import torch
from lhotse import CutSet

from omnisep_plugin.testing.tiny_recipe import make_tiny_embedded_corpus
from omnisep_plugin.training import NumberedBatches
from omnisep_plugin.training.datamodule import MixtureDataModule
from omnisep_plugin.training.sampler import MuxedBatches

from .test_training import _train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tiny_embedded_corpus(tmp_path_factory.mktemp("tiny_mix"))


def _ids(path):
    return {c.id for c in CutSet.from_file(path)}


def _streams(corpus):
    main = CutSet.from_file(corpus["train_cuts"]).to_eager()
    other = CutSet.from_file(corpus["test_cuts"]).to_eager()
    return [NumberedBatches(main, 2, seed=1), NumberedBatches(other, 2, seed=1)]


def test_muxed_batches_keep_each_corpus_share_and_resume_on_the_same_batches(corpus):
    main_ids, other_ids = _ids(corpus["train_cuts"]), _ids(corpus["test_cuts"])
    full = MuxedBatches(_streams(corpus), [0.7, 0.3], seed=5)
    stream = iter(full)
    seen = [(i, k, [c.id for c in cuts]) for i, k, cuts in (next(stream) for _ in range(400))]
    assert [i for i, _, _ in seen] == list(range(400))
    for _, k, ids in seen:  # a batch is drawn from one corpus, the one it says
        assert set(ids) <= (main_ids if k == 0 else other_ids)
    share = sum(k == 1 for _, k, _ in seen) / len(seen)
    assert 0.24 < share < 0.36
    # each corpus's batches are its own stream's, in order, epochs and all
    own = iter(_streams(corpus)[1])
    assert [ids for _, k, ids in seen if k == 1][:30] == [[c.id for c in next(own)[1]] for _ in range(30)]
    resumed = MuxedBatches(_streams(corpus), [0.7, 0.3], seed=5)
    resumed.start_at(137)
    stream = iter(resumed)
    assert [(i, k, [c.id for c in cuts]) for i, k, cuts in (next(stream) for _ in range(40))] \
        == seen[137:177]


def test_muxed_batches_refuse_bad_weights(corpus):
    with pytest.raises(ValueError, match="positive"):
        MuxedBatches(_streams(corpus), [1.0, 0.0])
    with pytest.raises(ValueError, match="as many weights"):
        MuxedBatches(_streams(corpus), [1.0])


def test_mix_in_batches_come_from_their_corpus_with_its_own_settings(corpus):
    main_ids, other_ids = _ids(corpus["train_cuts"]), _ids(corpus["test_cuts"])
    data = MixtureDataModule(corpus["train_cuts"], batch_size=2, n_src=3, n_samples=4000,
                             num_workers=0, seed=2, min_src=2, max_src=3,
                             augment={"level_db": [-5.0, 5.0], "eq_prob": 1.0},
                             mix_in=[{"cuts": str(corpus["test_cuts"]), "weight": 0.5,
                                      "augment": None, "min_src": 3}])
    loader = iter(data.train_dataloader())
    kinds = set()
    for _ in range(16):
        batch = next(loader)
        ids = {i for group in batch["cut_ids"] for i in group}
        assert ids <= main_ids or ids <= other_ids
        if ids <= other_ids:  # the mixed-in corpus: plain sums of 3 real sources
            kinds.add("mix_in")
            assert batch["present"].all()
            torch.testing.assert_close(batch["mixture"], batch["sources"].sum(1))
        else:
            kinds.add("main")
    assert kinds == {"main", "mix_in"}


@pytest.mark.parametrize("mix_in, message", [
    ([{"cuts": "CUTS"}], "with 'cuts' and 'weight'"),
    ([{"cuts": "CUTS", "weight": 1.0}], r"weight is a share of the batches in \(0, 1\), got 1.0"),
    ([{"cuts": "CUTS", "weight": None}], r"weight is a share of the batches in \(0, 1\), got None"),
    ([{"cuts": "CUTS", "weight": 0.6}, {"cuts": "CUTS", "weight": 0.5}], "leave the main corpus a share"),
    ([{"cuts": "CUTS", "weight": 0.3, "n_src": 2}], r"sets \['n_src'\]"),
    ([{"cuts": "CUTS", "weight": 0.3, "balance": "clip"}], "balance must be 'label' or null"),
    ([{"cuts": "CUTS", "weight": 0.3, "augment": {"echo": 1}}], "Unknown augmentation settings"),
    ([{"cuts": "missing.jsonl.gz", "weight": 0.3}], r"data.mix_in\[0\].cuts: no such manifest"),
])
def test_bad_mix_in_settings_are_refused_before_training(corpus, mix_in, message):
    mix_in = [{k: str(corpus["test_cuts"]) if v == "CUTS" else v for k, v in m.items()} for m in mix_in]
    with pytest.raises(ValueError, match=message):
        MixtureDataModule(corpus["train_cuts"], mix_in=mix_in)


def test_a_mixed_in_corpus_too_small_for_a_batch_is_named(corpus, tmp_path):
    few = CutSet.from_file(corpus["test_cuts"]).subset(first=1)
    few.to_file(tmp_path / "few.jsonl.gz")
    data = MixtureDataModule(corpus["train_cuts"], batch_size=2, n_src=2, num_workers=0,
                             mix_in=[{"cuts": str(tmp_path / "few.jsonl.gz"), "weight": 0.5}])
    with pytest.raises(ValueError, match=r"data.mix_in\[0\] \(.*few.jsonl.gz\): .*no full batch"):
        data.train_dataloader()


def test_a_resumed_mixed_stream_gives_the_same_mixtures(corpus):
    def data():
        return MixtureDataModule(corpus["train_cuts"], batch_size=2, n_src=2, n_samples=4000,
                                 num_workers=0, seed=3,
                                 mix_in=[{"cuts": str(corpus["test_cuts"]), "weight": 0.4}])
    fresh = iter(data().train_dataloader())
    batches = [next(fresh) for _ in range(7)]
    resumed = data()
    resumed.load_state_dict({"batches_done": 4})
    again = iter(resumed.train_dataloader())
    for want in batches[4:]:
        got = next(again)
        assert got["cut_ids"] == want["cut_ids"]
        torch.testing.assert_close(got["mixture"], want["mixture"])


def test_train_with_a_mixed_in_corpus(corpus, tmp_path):
    out = _train(corpus, tmp_path / "exp", "--set",
                 f"data.mix_in=[{{cuts: {corpus['test_cuts']}, weight: 0.5}}]")
    assert (tmp_path / "exp" / "omnisep.pth").is_file(), out.stderr[-2000:]
    # the setting reaches training: a missing corpus stops the command with its name
    cmd = [sys.executable, "-m", "omnisep_plugin.bin.cli", "train", "--conf", str(corpus["conf"]),
           "--train-cuts", str(corpus["train_cuts"]), "--exp-dir", str(tmp_path / "exp2"),
           "--set", "data.mix_in=[{cuts: nowhere.jsonl.gz, weight: 0.5}]"]
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode != 0 and "data.mix_in[0].cuts: no such manifest" in bad.stderr
    assert "Traceback" not in bad.stderr
