"""recipes/omni/local/choose_checkpoint.py: which models a comma list with globs names, and
how each is loaded (a Lightning checkpoint by its own architecture, a package as saved)."""

import pytest
import torch

from omnisep_plugin.testing.dummies import tiny_omnisep


@pytest.fixture(scope="module")
def cc(omni_local):
    return omni_local("choose_checkpoint")


def test_globs_expand_in_order_and_names_are_kept(cc, tmp_path):
    for step in (3000, 1000, 2000):
        (tmp_path / f"step{step:07d}.ckpt").write_bytes(b"")
    got = cc.expand(f"omni, {tmp_path}/step*.ckpt,,{tmp_path}/missing.pth")
    assert got == ["omni", *(str(tmp_path / f"step{s:07d}.ckpt") for s in (1000, 2000, 3000)),
                   str(tmp_path / "missing.pth")]


def test_a_package_loads_as_saved_and_a_bad_checkpoint_is_named(cc, tmp_path):
    torch.manual_seed(0)
    model = tiny_omnisep().eval()
    model.save(tmp_path / "m.pth")
    loaded = cc.load(str(tmp_path / "m.pth"))
    assert not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.ckpt is not a checkpoint"):
        cc.load(str(tmp_path / "broken.ckpt"))
