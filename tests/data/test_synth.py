import numpy as np
import pytest
from lhotse.qa import validate_recordings_and_supervisions

from omnisep_plugin.data.recipes import synth

try:
    synth._synth()
    HAVE_FLUIDSYNTH = True
except RuntimeError as err:  # CI installs it, so this only skips on a bare machine
    HAVE_FLUIDSYNTH, WHY = False, str(err)

needs_fluidsynth = pytest.mark.skipif(not HAVE_FLUIDSYNTH, reason="FluidSynth or FluidR3_GM missing")


@needs_fluidsynth
def test_tiny_render_is_audible_distinct_and_prepares(tmp_path):
    stats = synth.render_corpus(tmp_path, "synth_music", ["violin", "tuba"],
                                {"train": 2, "test": 1}, seconds=2.0)
    assert stats["rendered_s"] == pytest.approx(12.0)
    manifests = synth.prepare_synth(tmp_path, tmp_path / "m", min_samples=16000)
    assert {s: len(m["cuts"]) for s, m in manifests.items()} == {"train": 4, "test": 2}
    for parts in manifests.values():
        validate_recordings_and_supervisions(parts["recordings"], parts["supervisions"])
    cuts = {c.id: c for c in manifests["train"]["cuts"]}
    violin = cuts["violin-train-0000"].load_audio()[0]
    tuba = cuts["tuba-train-0000"].load_audio()[0]
    assert violin.shape == (32000,) and np.abs(violin).max() > 0.25 and np.abs(tuba).max() > 0.25

    def centroid(x):
        mag = np.abs(np.fft.rfft(x))
        return (mag * np.fft.rfftfreq(len(x), 1 / 16000)).sum() / mag.sum()
    assert centroid(violin) > 1.5 * centroid(tuba)  # a violin is brighter than a tuba
    assert cuts["violin-train-0000"].supervisions[0].custom["text"].startswith("Someone bowing")
    # Splits use disjoint seeds: no test clip repeats a train clip.
    test_violin = manifests["test"]["cuts"][0].load_audio()[0]
    assert not np.allclose(test_violin, violin)
    # Resumable: a second call renders nothing new.
    assert synth.render_corpus(tmp_path, "synth_music", ["violin", "tuba"],
                               {"train": 2, "test": 1}, seconds=2.0)["rendered_s"] == 0


@needs_fluidsynth
def test_sound_effects_render_with_variation(tmp_path):
    synth.render_corpus(tmp_path, "synth_sfx", ["helicopter", "drums"], {"train": 2}, seconds=2.0)
    a = synth.render_clip("synth_sfx", "helicopter", 1, 2.0)
    b = synth.render_clip("synth_sfx", "helicopter", 2, 2.0)
    assert not np.allclose(a, b) and np.abs(a).max() > 0.25


def test_unknown_labels_and_corpora():
    with pytest.raises(ValueError, match="Unknown synthetic corpus"):
        synth.render_corpus("/tmp/x", "synth_speech")
    with pytest.raises(ValueError, match="Unknown synth_music labels"):
        synth.render_corpus("/tmp/x", "synth_music", ["erhu"])
