import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from omnisep_plugin.models import OmniSep
from omnisep_plugin.testing.dummies import save_tiny_imagebind_checkpoint
from omnisep_plugin.testing.fake_corpus import make_fake_music, make_fake_vggsound
from omnisep_plugin.testing.tiny_recipe import TINY_TRAIN_CONF

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["audio", "audio+label", "audio+label+neg", "audio+neg", "composed", "composed+neg",
         "free_text", "free_text+aug", "free_text+proto", "image", "image+neg", "text", "text+neg"]


def _run(script, tmp_path, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", str(ROOT / script), *args], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    return out


@pytest.fixture
def tiny(tmp_path):
    save_tiny_imagebind_checkpoint(tmp_path / "ib.pth")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_TRAIN_CONF))
    return ["--imagebind", str(tmp_path / "ib.pth"), "--conf", str(tmp_path / "tiny.yaml"),
            "--n-test-mixtures", "3", "--n-samples", "16000"]


def _check_outputs(exp: Path):
    table = (exp / "results" / "results.md").read_text()
    rows = {line.split("|")[1].strip() for line in table.splitlines()[2:]}
    assert rows == set(KINDS)
    assert "nan" not in table.lower()
    assert (exp / "separated" / "mix00000_0.png").stat().st_size > 1000
    assert isinstance(OmniSep.from_pretrained(exp / "omnisep.pth"), OmniSep)


def test_music_recipe_end_to_end(tmp_path, tiny):
    make_fake_music(tmp_path / "MUSIC", instruments=("violin", "flute", "cello", "trumpet"),
                    per_class=5)
    out = _run("recipes/music/run.sh", tmp_path, "--corpus-dir", str(tmp_path / "MUSIC"), *tiny)
    assert out.returncode == 0, out.stderr[-4000:]
    _check_outputs(tmp_path / "exp/music/omnisep")
    assert "Stage 4" in out.stderr
    # A Table 12 variant re-runs stages 3-4 into its own folders; the main table stays.
    exp = tmp_path / "exp/music/omnisep"
    before = (exp / "results/results.md").read_text()
    variant = tmp_path / "table12.yaml"
    variant.write_text(yaml.safe_dump({"base": "tiny.yaml", "eval": {"negative_variant": "subtract"}}))
    out = _run("recipes/music/run.sh", tmp_path, *tiny, "--stage", "3", "--conf", str(variant),
               "--eval-tag", "subtract")
    assert out.returncode == 0, out.stderr[-4000:]
    assert (exp / "results/results.md").read_text() == before
    subtract = (exp / "results_subtract/results.md").read_text()
    row = {line.split("|")[1].strip(): line for line in subtract.splitlines()[2:]}
    plain = {line.split("|")[1].strip(): line for line in before.splitlines()[2:]}
    assert row["text"] == plain["text"] and row["text+neg"] != plain["text+neg"]
    out = _run("recipes/music/run.sh", tmp_path, "--no-such-option", "x")
    assert out.returncode == 2 and "unknown option --no-such-option" in out.stderr


def test_vggsound_recipe_end_to_end(tmp_path, tiny):
    make_fake_vggsound(tmp_path / "VGG", labels=("dog barking", "helicopter", "rain falling",
                                                 "playing violin, fiddle"), per_class=5)
    clean = tmp_path / "clean.txt"
    clean.write_text("y0x4_000040\ny1x4_000040\ny2x4_000040\ny0x3_000030\n")
    out = _run("recipes/vggsound/run.sh", tmp_path, "--corpus-dir", str(tmp_path / "VGG"),
               "--clean-list", str(clean), "--valid-fraction", "0.3", *tiny)
    assert out.returncode == 0, out.stderr[-4000:]
    _check_outputs(tmp_path / "exp/vggsound/omnisep")
    assert (tmp_path / "data/vggsound/embedded/test_clean_mixtures.json").is_file()


def test_missing_arguments_are_clear(tmp_path):
    out = _run("recipes/music/run.sh", tmp_path)
    assert out.returncode == 2 and "--corpus-dir is required" in out.stderr
    out = _run("recipes/synth_music/run.sh", tmp_path, "--ablations", "switch nomix")
    assert out.returncode == 2 and "unknown ablation nomix" in out.stderr
    assert not (tmp_path / "data").exists()  # refused before stage 0


def test_synth_music_recipe_end_to_end(tmp_path):
    from omnisep_plugin.data.recipes import synth
    try:
        synth._synth()
    except RuntimeError as err:
        pytest.skip(str(err))
    conf = {**TINY_TRAIN_CONF, "model": {**TINY_TRAIN_CONF["model"], "query_dim": 384},
            "query": {"modalities": ["text", "audio"]}, "eval": {"compose_weights": {"text": 1.0, "audio": 1.0}}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(conf))
    out = _run("recipes/synth_music/run.sh", tmp_path, "--conf", str(tmp_path / "tiny.yaml"),
               "--n-train", "4", "--n-valid", "2", "--n-test", "2", "--seconds", "5",
               "--bind-steps", "5", "--n-test-mixtures", "3", "--ablations", "switch",
               "--bundle-dir", str(tmp_path / "bundle"), "--stop-stage", "7")
    assert out.returncode == 0, out.stderr[-4000:]
    results = (tmp_path / "exp/synth_music/results.md").read_text()
    assert "## omnisep" in results and "## switch" in results
    for kind in ("text", "audio", "composed", "text+neg", "free_text+aug"):
        assert f"| {kind} |" in results
    assert "image" not in results  # no image queries offline
    bundle = tmp_path / "bundle"
    assert {p.name for p in bundle.iterdir()} == {
        "omnisep.pth", "audio_encoder.pth", "query_set.pt", "example_mixture.wav",
        "text_queries.pt",  # the labels' text embeddings: known texts skip MiniLM
        "example_source-cello.wav", "example_source-clarinet.wav"}  # the example's sources
    assert OmniSep.from_pretrained(bundle / "omnisep.pth").query_dim == 384
