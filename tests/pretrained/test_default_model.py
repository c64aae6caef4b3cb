"""The embedded default model: loads offline and separates rendered instruments."""
import numpy as np
import pytest
import torch

from omnisep_plugin.data.recipes import synth
from omnisep_plugin.models import OmniSep
from omnisep_plugin.pretrained import DEFAULT
from omnisep_plugin.scoring import score_pair

try:
    synth._synth()
    HAVE_FLUIDSYNTH = True
except RuntimeError:
    HAVE_FLUIDSYNTH = False


def test_default_bundle_is_shipped_small_and_loads():
    size = sum(p.stat().st_size for p in DEFAULT.folder.iterdir())
    assert size <= 64 * 2**20
    model = OmniSep.from_pretrained("default")
    assert isinstance(model, OmniSep) and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert DEFAULT.example.is_file()


PAIRS = [("violin", "trumpet"), ("flute", "tuba"), ("cello", "clarinet"), ("xylophone", "accordion")]


@pytest.mark.skipif(not HAVE_FLUIDSYNTH, reason="FluidSynth or FluidR3_GM missing")
def test_text_queries_separate_fresh_renderings():
    """Eight targets in four rendered 2-instrument mixtures, melodies the model never heard
    (seeds far from the recipe's): each text query picks its own instrument (the estimate is
    nearer its target than the other source), and the median SDR gain is >= 3 dB. Per-pair
    figures are in docs/results.md (the weakest targets, violin next to a trumpet and an
    accordion next to a xylophone, stay below 3 dB)."""
    model = DEFAULT.get_model()
    encoder = DEFAULT.get_encoder()
    gains = []
    for pair in PAIRS:
        sources = [synth.render_clip("synth_music", label, 9_000_000 + i, 4.0)
                   for i, label in enumerate(pair)]
        sources = [0.5 * s / np.abs(s).max() for s in sources]
        mix = sum(sources)
        with torch.no_grad():
            est = model(torch.from_numpy(mix)[None].float(), encoder.embed_text(list(pair))[None])[0]
        for i in range(2):
            own = score_pair(sources[i], est[i].numpy(), mix)
            other = score_pair(sources[1 - i], est[i].numpy(), None)
            assert own["si_sdr"] > other["si_sdr"], (pair[i], own, other)
            gains.append(own["sdri"])
    assert np.median(gains) >= 3.0, gains
