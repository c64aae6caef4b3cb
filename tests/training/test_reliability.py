"""Messy inputs at the training configuration and sampler: each one gets a clear error (or a documented, logged
behaviour) and leaves no partial output file."""
import pytest

from omnisep_plugin.data.recipes import prepare_music
from omnisep_plugin.training import NumberedBatches
from omnisep_plugin.training.run import load_conf


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from omnisep_plugin.testing.fake_corpus import make_fake_music
    root = tmp_path_factory.mktemp("music")
    make_fake_music(root, instruments=("violin", "flute", "cello"), per_class=3, seconds=5)
    return root, prepare_music(root, instruments=["violin", "flute", "cello"])


def test_configs(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: 3\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_conf(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="section.key=value"):
        load_conf(None, ["lr=3"])
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match=r"loops \(loop.yaml -> loop.yaml\)"):
        load_conf(tmp_path / "loop.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: ./a.yaml\n")
    with pytest.raises(ValueError, match=r"loops \(a.yaml -> b.yaml -> a.yaml\)"):
        load_conf(tmp_path / "a.yaml")


def test_a_long_base_chain_loads_each_file_over_its_base(tmp_path):
    """recipes/omni's fine-tunes chain 7 files (wave_loss -> long_crops_c -> ... -> small ->
    music/train); a cap of 6 refused an eighth. Each file's values override its base's."""
    (tmp_path / "f0.yaml").write_text("optim:\n  lr: 0.5\ntraining:\n  max_steps: 1\n")
    for i in range(1, 12):
        text = f"base: f{i - 1}.yaml\ntraining:\n  max_steps: {i + 1}\n"
        (tmp_path / f"f{i}.yaml").write_text(text)
    conf = load_conf(tmp_path / "f11.yaml")
    assert conf["training"]["max_steps"] == 12 and conf["optim"]["lr"] == 0.5


def test_unknown_config_keys_are_refused_naming_the_known_ones(tmp_path):
    (tmp_path / "typo.yaml").write_text("training:\n  device: 4\n")
    with pytest.raises(ValueError, match=r"training\.device;.*\bdevices\b.*\bnum_nodes\b"):
        load_conf(tmp_path / "typo.yaml")
    with pytest.raises(ValueError, match=r"model\.unet_width;.*\bunet_widths\b"):
        load_conf(None, ["model.unet_width=[4, 8]"])
    with pytest.raises(ValueError, match="section 'trainer'; known sections: data, eval"):
        load_conf(None, ["trainer.devices=2"])
    conf = load_conf(None, ["training.devices=2", "training.strategy=ddp",
                            "training.num_nodes=2", "training.accumulate_grad_batches=4",
                            "model.unet_widths=[4, 8]"])
    assert conf["training"]["devices"] == 2 and conf["training"]["accumulate_grad_batches"] == 4
    assert conf["training"]["strategy"] == "ddp" and conf["model"]["unet_widths"] == [4, 8]


def test_numbers_without_a_decimal_point_are_numbers(tmp_path):
    # PyYAML alone reads 3e-5 as the string '3e-5', and training then failed inside torch
    conf = load_conf(None, ["optim.lr=3e-5", "optim.decay_steps=[6000, 7e3]", "optim.eps=1E-8"])
    assert conf["optim"]["lr"] == 3e-5 and conf["optim"]["decay_steps"] == [6000, 7000.0]
    assert conf["optim"]["eps"] == 1e-8 and isinstance(conf["optim"]["decay_steps"][0], int)
    (tmp_path / "lr.yaml").write_text("optim:\n  lr: 2e-4\ntraining:\n  precision: 32-true\n")
    conf = load_conf(tmp_path / "lr.yaml", ["data.seed=3"])
    assert conf["optim"]["lr"] == 2e-4 and conf["training"]["precision"] == "32-true"
    assert conf["data"]["seed"] == 3


def test_every_recipe_configuration_loads():
    from pathlib import Path
    confs = sorted(Path(__file__).parents[2].glob("recipes/*/conf/*.yaml"))
    assert len(confs) > 10
    for path in confs:
        load_conf(path)



def test_batch_larger_than_the_data(corpus):
    with pytest.raises(ValueError, match="no full batch"):
        NumberedBatches(corpus[1]["train"]["cuts"], batch_size=1000)


