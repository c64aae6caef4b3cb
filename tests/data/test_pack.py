"""The travelling corpus pack (data/pack.py) and the one-command GPU run that trains from it
(recipes/omni/gpu_train.sh), at test size on the CPU."""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from click.testing import CliRunner
from lhotse import CutSet, load_manifest
from lhotse.utils import fastcopy

from omnisep_plugin.bin.cli import cli
from omnisep_plugin.data.mixtures import make_test_mixtures
from omnisep_plugin.data.pack import PackError, decode_audio, encode_opus, pack_corpus, unpack_corpus
from omnisep_plugin.models import OmniSep
from omnisep_plugin.query import QuerySet
from omnisep_plugin.query.offline import AudioBinder
from omnisep_plugin.testing.dummies import dummy_embedded_cuts, harmonic_tone
from omnisep_plugin.testing.tiny_recipe import TINY_TRAIN_CONF

ROOT = Path(__file__).resolve().parents[2]


def _snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    n = min(len(ref), len(est))
    return 10 * np.log10(np.sum(ref[:n] ** 2) / np.sum((ref[:n] - est[:n]) ** 2))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack")
    train = dummy_embedded_cuts(root / "train", n_classes=4, per_class=3, seconds=1.0, seed=0)
    valid = dummy_embedded_cuts(root / "valid", n_classes=4, per_class=1, seconds=1.0, seed=1)
    for cut in valid:  # distinct recordings in valid
        cut.supervisions[0].custom["license"] = "CC0-1.0"
    bg = root / "moh.wav"  # a background at 8 kHz: resampled to the cuts' rate when packed
    sf.write(bg, 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32), 8000)
    (root / "backgrounds.json").write_text(
        '{"license": "CC-BY-SA-3.0", "package": "asterisk-moh-opsound-wav", "files": ["%s"]}' % bg)
    make_test_mixtures(valid, 2, n_samples=8000, seed=1, path=root / "valid_mixtures.json")
    return {"root": root, "train": train, "valid": valid}


def test_opus_round_trip_keeps_a_tone_within_a_codec_error():
    tone = harmonic_tone(220, 1.0).numpy()
    back = decode_audio(encode_opus(tone, 16000, 0.9))
    assert len(back) == len(tone)
    assert _snr_db(tone, back) > 10


def test_pack_then_unpack_gives_the_same_cuts_queries_and_licences(corpus, tmp_path):
    root = corpus["root"]
    record = pack_corpus({"train": corpus["train"], "valid": corpus["valid"]}, tmp_path / "p.tar",
                         max_mib=0.5, backgrounds=root / "backgrounds.json",
                         extra_files=[root / "valid_mixtures.json"])
    assert record["bytes"] <= 0.5 * 2 ** 20 and (tmp_path / "p.tar").stat().st_size == record["bytes"]
    assert record["cuts"] == {"train": 12, "valid": 4} and record["backgrounds"] == 1
    assert not (tmp_path / "p.tar.tmp").exists()

    out = unpack_corpus(tmp_path / "p.tar", tmp_path / "u")
    for split in ("train", "valid"):
        before = {c.id: c for c in corpus[split]}
        after = load_manifest(out["cuts"][split])
        assert sorted(c.id for c in after) == sorted(before)
        for cut in after:
            old = before[cut.id]
            assert cut.supervisions[0].custom == old.supervisions[0].custom   # labels, licences
            assert Path(cut.recording.sources[0].source).is_file()
            assert cut.duration == pytest.approx(old.duration)
            assert _snr_db(old.load_audio()[0], cut.load_audio()[0]) > 10
            for kind in ("text", "audio"):   # fp16 in the pack
                np.testing.assert_allclose(cut.load_custom(f"{kind}_emb"), old.load_custom(f"{kind}_emb"),
                                           atol=2e-3)
    bg = yaml.safe_load(out["backgrounds"].read_text())
    assert bg["license"] == "CC-BY-SA-3.0" and len(bg["files"]) == 1
    assert sf.info(bg["files"][0]).samplerate == 16000 and sf.info(bg["files"][0]).frames == 16000
    assert out["extra"]["valid_mixtures.json"].read_text() == (root / "valid_mixtures.json").read_text()


def test_a_budget_too_small_is_refused_and_leaves_no_file(corpus, tmp_path):
    with pytest.raises(PackError, match="do not fit"):
        pack_corpus({"train": corpus["train"]}, tmp_path / "p.tar", max_mib=0.001)
    assert list(tmp_path.iterdir()) == []


def test_cuts_without_queries_and_corrupt_packs_are_refused(corpus, tmp_path):
    bare = [fastcopy(c, custom={k: v for k, v in c.custom.items() if k != "text_emb"})
            for c in corpus["train"]]
    with pytest.raises(PackError, match="omnisep embed"):
        pack_corpus({"train": bare}, tmp_path / "p.tar")
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(PackError, match="not a readable corpus pack"):
        unpack_corpus(tmp_path / "junk.tar", tmp_path / "u")
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    with pytest.raises(PackError, match="no pack.json"):
        unpack_corpus(tmp_path / "empty.tar", tmp_path / "u")


def test_pack_corpus_cli_refuses_to_overwrite(corpus, tmp_path):
    cuts = corpus["root"] / "train.jsonl.gz"
    corpus["train"].to_file(cuts)
    (tmp_path / "p.tar").write_bytes(b"precious")
    res = CliRunner().invoke(cli, ["pack-corpus", str(tmp_path / "p.tar"), "--cuts", f"train={cuts}"])
    assert res.exit_code == 2 and "exists" in res.output
    assert (tmp_path / "p.tar").read_bytes() == b"precious"


def test_gpu_train_sh_trains_from_a_pack_and_exports_a_bundle(corpus, tmp_path):
    """The one-command GPU run at test size: unpack, train, export (no download, no render)."""
    root = corpus["root"]
    labels = [f"class{c}" for c in range(4)]
    vectors = np.stack([corpus["train"][3 * c].load_custom("text_emb") for c in range(4)])
    QuerySet(labels, torch.from_numpy(vectors)).save(tmp_path / "omni_cuts_train_query_set.pt")
    QuerySet(labels, torch.from_numpy(vectors[::-1].copy())).save(tmp_path / "omni_cuts_train_audio_bank.pt")
    AudioBinder(dim=8, channels=(4, 8)).save(tmp_path / "audio_encoder.pth")
    extra = dummy_embedded_cuts(tmp_path / "extra", n_classes=3, per_class=2, seconds=1.0, seed=2)
    pack_corpus({"train": corpus["train"], "valid": corpus["valid"], "extra": extra}, tmp_path / "p.tar", max_mib=1,
                backgrounds=root / "backgrounds.json",
                extra_files=[root / "valid_mixtures.json", tmp_path / "omni_cuts_train_query_set.pt",
                             tmp_path / "omni_cuts_train_audio_bank.pt"])
    conf = {**TINY_TRAIN_CONF, "model": {**TINY_TRAIN_CONF["model"], "query_dim": 8},
            "data": {"batch_size": 2, "n_samples": 8000, "num_workers": 0},
            "training": {"max_steps": 4, "val_every": 2, "ckpt_every": 2}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(conf))
    narrow = OmniSep(**{**conf["model"], "unet_widths": [4, 4, 4]})  # --init: widened to [4, 8, 8]
    narrow.save(tmp_path / "narrow.pth")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHON": sys.executable}
    out = subprocess.run(
        ["bash", str(ROOT / "recipes/omni/gpu_train.sh"), str(tmp_path / "p.tar"), str(tmp_path / "out"),
         "--conf", str(tmp_path / "tiny.yaml"), "--minutes", "5", "--work", str(tmp_path / "work"),
         "--audio-encoder", str(tmp_path / "audio_encoder.pth"), "--example-labels", "class0,class1",
         "--val-every", "2", "--set", "training.max_steps=4", "--init", str(tmp_path / "narrow.pth"),
         "--mix-in", "extra=0.5"],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    bundle = tmp_path / "out" / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == [
        "audio_encoder.pth", "audio_prototypes.pt", "example_mixture.wav", "example_source-class0.wav",
        "example_source-class1.wav", "omnisep.pth", "query_set.pt"]
    assert torch.equal(QuerySet.load(bundle / "audio_prototypes.pt").embeddings,
                       torch.from_numpy(vectors[::-1].copy()).float())  # the packed bank, as is
    model = OmniSep.from_pretrained(bundle / "omnisep.pth")
    assert model.get_model_args()["query_dim"] == 8
    assert model.masker.widths == [4, 8, 8] and "-> [4, 8, 8]" in out.stdout
    assert "initialised from" in (tmp_path / "out" / "train.log").read_text()
    metrics = (tmp_path / "out" / "metrics.csv").read_text()
    assert "val_si_sdr" in metrics.splitlines()[0]
    written = yaml.safe_load((tmp_path / "out" / "conf.yaml").read_text())
    assert written["training"]["max_minutes"] == 5
    assert written["training"]["decay_at_minutes"] == 3.75  # --decay-at's default: 3/4 of --minutes
    assert written["data"]["mix_in"] == [{"cuts": str(tmp_path / "work" / "cuts_extra_embedded.jsonl.gz"),
                                          "weight": 0.5, "augment": None}]
    refused = subprocess.run(
        ["bash", str(ROOT / "recipes/omni/gpu_train.sh"), str(tmp_path / "p.tar"), str(tmp_path / "out2"),
         "--conf", str(tmp_path / "tiny.yaml"), "--work", str(tmp_path / "work2"), "--mix-in", "synth_music=0.4"],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "the pack has no split synth_music (it has: extra train valid)" in refused.stderr
    for spec in ("synth_music", "synth_music=1.5", "a b=0.4"):
        bad = subprocess.run(["bash", str(ROOT / "recipes/omni/gpu_train.sh"), str(tmp_path / "p.tar"),
                              str(tmp_path / "out3"), "--mix-in", spec], capture_output=True, text=True, env=env)
        assert bad.returncode == 2 and "--mix-in takes NAME=WEIGHT" in bad.stderr


def test_per_class_keeps_an_even_share_of_each_label(tmp_path):
    from omnisep_plugin.data.embed import cut_label
    from omnisep_plugin.data.pack import cap_per_label
    cuts = list(dummy_embedded_cuts(tmp_path, n_classes=3, per_class=6, seconds=0.2))
    cuts = cuts[:13]  # class0: 6, class1: 6, class2: 1
    kept = cap_per_label(cuts, 3)
    ids = [c.id for c in kept]
    assert ids == [c.id for c in cuts if c.id in set(ids)]  # manifest order kept
    assert [cut_label(c) for c in kept].count("class0") == 3 and "class2-0" in ids
    assert {"class0-0", "class0-5"} <= set(ids)  # spread from first to last, not the first 3
    pack = pack_corpus({"train": CutSet.from_cuts(cuts)}, tmp_path / "p.tar", max_mib=5,
                       per_class=2, num_jobs=1)
    assert pack["cuts"] == {"train": 5}
