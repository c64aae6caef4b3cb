import subprocess
import sys

from click.testing import CliRunner
from lhotse import CutSet

from omnisep_plugin.bin.cli import cli
from omnisep_plugin.query import QuerySet
from omnisep_plugin.testing.dummies import save_tiny_imagebind_checkpoint
from omnisep_plugin.testing.fake_corpus import make_fake_music, make_fake_vggsound


def test_prepare_and_embed_music(tmp_path):
    corpus, out = tmp_path / "MUSIC", tmp_path / "data"
    make_fake_music(corpus, instruments=("violin", "flute", "cello", "trumpet"), per_class=3)
    runner = CliRunner()
    result = runner.invoke(cli, ["prepare", "music", str(corpus), str(out / "manifests")])
    assert result.exit_code == 0, result.output
    assert "train: 4 cuts" in result.output and "test: 4 cuts" in result.output
    ckpt = tmp_path / "tiny.pth"
    save_tiny_imagebind_checkpoint(ckpt)
    result = runner.invoke(cli, ["embed", str(out / "manifests/music_cuts_train.jsonl.gz"),
                                 str(out / "embedded"), "--imagebind", str(ckpt),
                                 "--bank-size", "1"])
    assert result.exit_code == 0, result.output
    cuts = CutSet.from_file(out / "embedded/music_cuts_train_embedded.jsonl.gz")
    assert all(c.has_custom("audio_emb") and c.has_custom("image_emb") for c in cuts)
    assert QuerySet.load(out / "embedded/music_cuts_train_audio_bank.pt").labels == [
        "cello", "flute", "trumpet", "violin"]
    result = runner.invoke(cli, ["export-shar", str(out / "embedded/music_cuts_train_embedded.jsonl.gz"),
                                 str(out / "shar"), "--shard-size", "2"])
    assert result.exit_code == 0 and "wrote 2 shards" in result.output, result.output
    assert len(CutSet.from_shar(in_dir=out / "shar").to_eager()) == 4


def test_prepare_vggsound_with_clean_list(tmp_path):
    corpus = tmp_path / "VGG"
    make_fake_vggsound(corpus, per_class=3)
    clean = tmp_path / "clean.txt"
    clean.write_text("y1x2_000020\n")
    result = CliRunner().invoke(cli, ["prepare", "vggsound", str(corpus), str(tmp_path / "m"),
                                      "--clean-list", f"test_clean={clean}"])
    assert result.exit_code == 0, result.output
    assert "test_clean: 1 cuts" in result.output


def test_cli_errors_are_one_line_not_tracebacks(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["prepare", "music", str(tmp_path / "missing"), str(tmp_path)])
    assert result.exit_code == 2 and "does not exist" in result.output
    cuts = tmp_path / "cuts.jsonl.gz"
    CutSet.from_cuts([]).to_file(cuts)
    result = runner.invoke(cli, ["embed", str(cuts), str(tmp_path / "e"),
                                 "--imagebind", str(tmp_path / "nope.pth")])
    assert result.exit_code == 2 and "imagebind_huge.pth" in result.output
    assert "Traceback" not in result.output


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "omnisep_plugin.bin.cli", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "prepare" in out.stdout


def test_eval_pairs_prints_gains_and_refuses_unknown_instruments(tmp_path):
    from omnisep_plugin.data.recipes import synth
    try:
        synth._synth()
    except RuntimeError as err:
        import pytest
        pytest.skip(str(err))
    runner = CliRunner()
    csv_path = tmp_path / "pairs.csv"
    result = runner.invoke(cli, ["eval-pairs", "--pairs", "flute+tuba,cello+oboe", "--seconds", "2",
                                 "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    assert "4 targets: median SDRi" in result.output and "selected:" in result.output
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("pair,label,sdr") and len(lines) == 5
    result = runner.invoke(cli, ["eval-pairs", "--pairs", "flute+kazoo"])
    assert result.exit_code == 2 and "Unknown instrument(s) ['kazoo']" in result.output
    result = runner.invoke(cli, ["eval-pairs", "--pairs", "flute"])
    assert result.exit_code == 2 and "--pairs takes a+b" in result.output


def test_every_command_reports_user_errors_as_one_line_exit_2(tmp_path):
    """One rule for all commands (some exited 1, some printed tracebacks)."""
    import json

    runner = CliRunner()
    music = tmp_path / "MUSIC"
    music.mkdir()
    (music / "MUSIC_solo_videos.json").write_text(json.dumps({"videos": {"violin": "abc"}}))
    cuts = tmp_path / "cuts.jsonl.gz"
    CutSet.from_cuts([]).to_file(cuts)
    bad_conf = tmp_path / "bad.yaml"
    bad_conf.write_text("model: 3\n")
    cases = [
        (["prepare", "music", str(music), str(tmp_path / "m")], "lists of video ids"),
        (["embed", str(cuts), str(tmp_path / "e"), "--offline", str(tmp_path / "x.pth"),
          "--device", "banana"], "Unknown device 'banana'"),
        (["train", "--conf", str(bad_conf), "--train-cuts", str(cuts), "--exp-dir",
          str(tmp_path / "exp")], "must be a mapping"),
        (["train", "--train-cuts", str(cuts), "--exp-dir", str(tmp_path / "exp"), "--set",
          "lr=3"], "section.key=value"),
        (["make-mixtures", str(cuts), str(tmp_path / "m.json")], "holds no cuts"),
        (["score", str(tmp_path / "s"), "--pairs", str(bad_conf)], "needs a header"),
        (["compare", str(bad_conf), str(bad_conf)], "not a scores.csv"),
        (["eval-pairs", "--pairs", "flute"], "--pairs takes a+b"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, args)
        lines = [l for l in result.output.splitlines() if l.startswith("Error")]
        assert result.exit_code == 2, (args, result.exit_code, result.output[-1000:])
        assert len(lines) == 1 and message in lines[0], (args, result.output[-1000:])
        assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "exp" / "conf.yaml").exists()


def test_make_mixtures_labels_mixes_only_those_classes(tmp_path):
    """--labels keeps one model's vocabulary (the default's 11 instruments of the held-out
    soundfont, docs/results.md); a label with no cut is a clear error."""
    import json

    from omnisep_plugin.testing.dummies import dummy_embedded_cuts

    cuts = tmp_path / "cuts.jsonl.gz"
    dummy_embedded_cuts(tmp_path / "c", n_classes=5).to_file(cuts)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(cli, ["make-mixtures", str(cuts), str(out), "-n", "20",
                                      "--labels", "class1, class3,class4"])
    assert result.exit_code == 0, result.output
    used = {s["label"] for m in json.loads(out.read_text())["mixtures"] for s in m["sources"]}
    assert used == {"class1", "class3", "class4"}
    result = CliRunner().invoke(cli, ["make-mixtures", str(cuts), str(tmp_path / "x.json"),
                                      "--labels", "class1,kazoo"])
    assert result.exit_code == 2 and "No cut of ['kazoo']" in result.output
    result = CliRunner().invoke(cli, ["make-mixtures", str(cuts), str(tmp_path / "x.json"),
                                      "--labels", " , "])
    assert result.exit_code == 2 and "--labels names no label" in result.output
    assert not (tmp_path / "x.json").exists()
