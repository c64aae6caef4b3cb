"""recipes/omni/local/set_mask_temperatures.py: a package given a mask-temperature table by
category, rewritten in the precision it was stored in."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from omnisep_plugin.models import OmniSep
from omnisep_plugin.query import QuerySet
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep

ROOT = Path(__file__).resolve().parents[2]
D = TINY_OMNISEP["query_dim"]


def test_a_package_gets_its_categories_temperatures(tmp_path):
    torch.manual_seed(0)
    model = tiny_omnisep().eval()
    pkg = model.serialize()
    pkg["state_dict"] = {k: v.half() if v.is_floating_point() else v  # as export-bundle ships
                         for k, v in pkg["state_dict"].items()}
    torch.save(pkg, tmp_path / "omnisep.pth")
    labels = ["dog barking", "cello", "rain"]
    QuerySet(labels, torch.eye(D)[:3]).save(tmp_path / "qs.pt")
    (tmp_path / "classes.json").write_text(json.dumps({
        "dog barking": {"category": "animal"}, "cello": {"category": "instrument"},
        "rain": {"category": "nature"}}))
    script = str(ROOT / "recipes/omni/local/set_mask_temperatures.py")
    args = [str(tmp_path / "omnisep.pth"), str(tmp_path / "qs.pt"), str(tmp_path / "classes.json")]
    out = subprocess.run([sys.executable, script, *args, "--default", "1.5", "--category",
                          "instrument=1"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    stored = torch.load(tmp_path / "omnisep.pth", weights_only=True)["state_dict"]
    assert stored["temperature_values"].dtype == torch.float16
    assert stored["mask_bias"].dtype == torch.float16
    loaded = OmniSep.from_pretrained(tmp_path / "omnisep.pth")
    assert loaded.temperature_values.tolist() == [1.5, 1.0, 1.5]
    assert torch.allclose(loaded.temperature_keys, torch.eye(D)[:3])
    # a Query-Set label without a category is refused, and the package is left as it was
    (tmp_path / "classes.json").write_text(json.dumps({"cello": {"category": "instrument"}}))
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "No category for 2" in out.stderr
    assert "Traceback" not in out.stderr
    missing = [str(tmp_path / "none.pth"), *args[1:]]
    out = subprocess.run([sys.executable, script, *missing], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and "Traceback" not in out.stderr and "none.pth" in out.stderr
    assert OmniSep.from_pretrained(tmp_path / "omnisep.pth").temperature_values.tolist() == [1.5, 1.0, 1.5]
