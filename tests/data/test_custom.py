"""Your own data: ``omnisep prepare custom`` (folder per label or CSV), every ``prepare``
refusing to keep nothing, and ``omnisep train --init`` fine-tuning from a package."""
import copy

import numpy as np
import soundfile as sf
import torch
from click.testing import CliRunner
from lhotse import CutSet

from omnisep_plugin.bin.cli import cli
from omnisep_plugin.data.recipes.custom import prepare_custom
from omnisep_plugin.testing.dummies import dummy_embedded_cuts, tiny_omnisep
from omnisep_plugin.testing.fake_corpus import make_fake_vggsound, make_labelled_folder
from omnisep_plugin.testing.tiny_recipe import TINY_TRAIN_CONF


def test_folder_per_label_gives_the_usual_manifests(tmp_path):
    make_labelled_folder(tmp_path / "corpus")
    out = tmp_path / "manifests"
    result = CliRunner().invoke(cli, ["prepare", "custom", str(tmp_path / "corpus"), str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"custom_{k}_{s}.jsonl.gz" for k in ("recordings", "supervisions", "cuts")
                           for s in ("train", "valid", "test"))
    cuts = [c for s in ("train", "valid", "test")
            for c in CutSet.from_file(out / f"custom_cuts_{s}.jsonl.gz")]
    assert len(cuts) == 21  # 11 dogs + 10 sirens; the short file skipped, the .txt ignored
    labels = [c.supervisions[0].custom["label"] for c in cuts]
    assert labels.count("dog") == 11 and labels.count("siren") == 10
    for split in ("valid", "test"):
        held = CutSet.from_file(out / f"custom_cuts_{split}.jsonl.gz")
        assert sorted(c.supervisions[0].custom["label"] for c in held) == ["dog", "siren"]
    stereo = next(c for c in cuts if "stereo" in c.id)
    audio = stereo.load_audio()
    assert stereo.sampling_rate == 16000 and audio.shape == (1, 72000)
    assert all(c.supervisions[0].custom["text"] for c in cuts)
    assert len({c.id for c in cuts}) == 21
    again = prepare_custom(tmp_path / "corpus", out)  # splits already written: read back
    assert sum(len(m["cuts"]) for m in again.values()) == 21


def test_ids_and_splits_do_not_depend_on_where_the_folder_lives(tmp_path):
    make_labelled_folder(tmp_path / "a" / "sounds")
    first = prepare_custom(tmp_path / "a" / "sounds")
    (tmp_path / "a" / "sounds").rename(tmp_path / "elsewhere")
    moved = prepare_custom(tmp_path / "elsewhere")
    assert {s: sorted(c.id for c in m["cuts"]) for s, m in first.items()} == \
        {s: sorted(c.id for c in m["cuts"]) for s, m in moved.items()}


def test_csv_with_own_descriptions(tmp_path):
    make_labelled_folder(tmp_path / "corpus", per_label=3)
    rows = ["path,label,text", "corpus/dog/dog1.wav,dog,a small dog yapping",
            "corpus/dog/dog2.wav,dog,", f"{tmp_path}/corpus/siren/siren1.wav,siren,an ambulance"]
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n")
    manifests = prepare_custom(tmp_path / "clips.csv", name="mine")
    cuts = {c.supervisions[0].custom["text"]: c for m in manifests.values() for c in m["cuts"]}
    assert "a small dog yapping" in cuts and "an ambulance" in cuts and len(cuts) == 3
    (tmp_path / "bad.csv").write_text("file,class\nx.wav,dog\n")
    result = CliRunner().invoke(cli, ["prepare", "custom", str(tmp_path / "bad.csv"), str(tmp_path / "o")])
    assert result.exit_code == 2 and "path,label" in result.output


def test_every_prepare_refuses_to_keep_nothing(tmp_path):
    (tmp_path / "empty" / "dog").mkdir(parents=True)
    sf.write(tmp_path / "empty" / "dog" / "tiny.wav", np.zeros(100, np.float32), 16000)
    result = CliRunner().invoke(cli, ["prepare", "custom", str(tmp_path / "empty"), str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: custom: no clip kept (1 shorter than the crop)"]
    # A VGGSound layout without frames (audio copied over): every clip skipped -> exit 2.
    make_fake_vggsound(tmp_path / "vgg", per_class=2)
    import shutil
    shutil.rmtree(tmp_path / "vgg" / "frames")
    result = CliRunner().invoke(cli, ["prepare", "vggsound", str(tmp_path / "vgg"), str(tmp_path / "v")])
    assert result.exit_code == 2 and "missing frames" in result.output and "--no-frames" in result.output
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())
    result = CliRunner().invoke(cli, ["prepare", "vggsound", str(tmp_path / "vgg"), str(tmp_path / "v"),
                                      "--no-frames"])
    assert result.exit_code == 0, result.output
    assert "train: 2 cuts" in result.output


def test_train_init_starts_from_the_package(tmp_path):
    """With a zero learning rate the exported weights are the initial package's: --init
    loads them (and its architecture), a plain run does not."""
    from omnisep_plugin.models import OmniSep
    from omnisep_plugin.training.run import load_conf, train

    cuts = dummy_embedded_cuts(tmp_path / "cuts", n_classes=4, per_class=2, seconds=1.0, dim=8)
    cuts.to_file(tmp_path / "train.jsonl.gz")
    torch.manual_seed(5)
    start = tiny_omnisep(query_dim=8)
    start.set_mask_temperatures(torch.eye(8)[:2], torch.tensor([1.0, 2.0]))  # separation only
    start.save(tmp_path / "start.pth")
    conf = load_conf(None, ())
    for section, values in copy.deepcopy(TINY_TRAIN_CONF).items():
        conf[section].update(values)
    conf["model"] = {"query_dim": 8, "unet_widths": [2, 2]}  # replaced by --init's
    conf["query"]["modalities"] = ["text", "audio"]
    conf["data"].update(n_samples=8000, batch_size=4)
    conf["optim"]["lr"] = 0.0
    conf["training"].update(max_steps=2, precision="32")
    package = train(conf, tmp_path / "exp", tmp_path / "train.jsonl.gz", progress=False,
                    init=str(tmp_path / "start.pth"))
    tuned = OmniSep.from_pretrained(package)
    assert tuned.get_model_args() == start.get_model_args()
    assert load_conf(tmp_path / "exp" / "conf.yaml")["model"] == start.get_model_args()
    params = dict(start.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in tuned.named_parameters())
    assert len(tuned.temperature_values) == 0  # trained and exported without the table
    # resumed with the same configuration (its model section is not --init's), the run keeps
    # the architecture it started with instead of failing to load its checkpoint
    conf["training"]["max_steps"] = 3
    conf["model"] = {"query_dim": 8, "unet_widths": [2, 2]}
    package = train(conf, tmp_path / "exp", tmp_path / "train.jsonl.gz", progress=False,
                    init=str(tmp_path / "start.pth"), resume=True)
    assert OmniSep.from_pretrained(package).get_model_args() == start.get_model_args()
    result = CliRunner().invoke(cli, ["train", "--train-cuts", str(tmp_path / "train.jsonl.gz"),
                                      "--exp-dir", str(tmp_path / "exp2"), "--init",
                                      str(tmp_path / "missing.pth")])
    assert result.exit_code == 2 and "missing.pth" in result.output
