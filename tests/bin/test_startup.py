"""Start-up: the ``omnisep`` command imports torch, Lhotse, Asteroid and the text model only
when a command that needs them runs (timings: benchmarks/startup.sh, docs/benchmarks.md)."""
import subprocess
import sys

import pytest
import torch

HEAVY = ("torch", "torchaudio", "lhotse", "asteroid", "transformers", "sentence_transformers",
         "pytorch_lightning", "matplotlib")


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_cli_module_and_help_import_nothing_heavy():
    code = ("import sys; from click.testing import CliRunner; import omnisep_plugin.bin.cli as c;"
            "r = [CliRunner().invoke(c.cli, a) for a in (['--help'], ['separate', '--help'],"
            " ['prepare', '--help'], ['train', '--help'])];"
            "assert all(x.exit_code == 0 for x in r), [x.output for x in r];"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert run_python(code) == "[]"


@pytest.mark.parametrize("first", ["omnisep_plugin", "asteroid.models"])
def test_asteroid_knows_omnisep_whatever_the_import_order(first):
    other = "asteroid.models" if first == "omnisep_plugin" else "omnisep_plugin"
    code = (f"import {first}, {other}; from asteroid.models import get;"
            "m = get('OmniSep')(query_dim=4, unet_widths=[4, 4]);"
            "print(type(m).__module__, m.training)")
    assert run_python(code) == "omnisep_plugin.models.omnisep False"


def test_text_cache_skips_the_text_model_for_known_texts(tmp_path):
    from omnisep_plugin.pipelines import DEFAULT, label_texts
    from omnisep_plugin.query import QuerySet
    from omnisep_plugin.query.offline import OfflineEncoder

    encoder = DEFAULT.get_encoder()
    seeded = label_texts(QuerySet.load(DEFAULT.query_set).labels)
    assert {"cello", "acoustic guitar"} <= set(seeded)
    q = encoder.embed_text(["cello", "acoustic guitar"])
    assert encoder.text_model is None  # seeds: no MiniLM
    fresh = OfflineEncoder(text_cache=False)
    torch.testing.assert_close(q, fresh.embed_text(["cello", "acoustic guitar"]), atol=1e-6,
                               rtol=0)
    new = encoder.embed_text(["a bowed double bass"])  # a miss: MiniLM runs, result cached
    assert encoder.text_model is not None
    again = DEFAULT.get_encoder()
    torch.testing.assert_close(again.embed_text(["a bowed double bass"]), new)
    assert again.text_model is None
