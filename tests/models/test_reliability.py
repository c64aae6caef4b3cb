"""Messy inputs at ``OmniSep.from_pretrained`` (model files): each one gets a clear error (or a documented, logged
behaviour) and leaves no partial output file."""
import pytest
import torch

from omnisep_plugin.models import OmniSep
from omnisep_plugin.testing.dummies import tiny_omnisep


@pytest.fixture(scope="module")
def model():
    return tiny_omnisep().eval()


def _save(path, obj):
    torch.save(obj, path)
    return path


def test_checkpoints(model, tmp_path):
    good = tmp_path / "good.pth"
    model.save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    pkg = torch.load(good, weights_only=True)
    future = dict(pkg, model_args={**pkg["model_args"], "new_option": 1})
    resized = dict(pkg, model_args={**pkg["model_args"], "n_masks": 5})
    cases = {
        "truncated.pth": "not a valid OmniSep model file",
        _save(tmp_path / "other.pth", {**pkg, "model_name": "DPRNNTasNet"}).name: "Not an OmniSep",
        _save(tmp_path / "future.pth", future).name: "Incompatible OmniSep package",
        _save(tmp_path / "resized.pth", resized).name: "Incompatible OmniSep package",
        _save(tmp_path / "tensor.pth", torch.zeros(3)).name: "Not an OmniSep",
        _save(tmp_path / "no_state.pth", {**pkg, "state_dict": None}).name: "valid 'state_dict'",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            OmniSep.from_pretrained(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        OmniSep.from_pretrained(tmp_path / "missing.pth")


