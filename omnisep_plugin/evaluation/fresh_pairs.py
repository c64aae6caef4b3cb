"""A synth benchmark: separation of freshly rendered instrument pairs (``omnisep eval-pairs``)."""
import itertools
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm


def fresh_pair_gains(model, encoder, pairs: Optional[Sequence[Tuple[str, str]]] = None,
                     seconds: float = 4.0, seed: int = 9_000_000,
                     progress: bool = False) -> List[dict]:
    """Text-queried separation of freshly rendered 2-instrument mixtures (``synth_music``).

    Each pair's two clips are rendered with FluidSynth from melodies the recipe never uses
    (seeds from ``seed``, far above its splits' seeds), scaled to the same RMS (a 0 dB
    mixture, so "SDRi" means the same for both instruments), summed and separated with each
    label's text query.

    Args:
        model: an :class:`~omnisep_plugin.models.OmniSep` in eval mode.
        encoder: a query encoder with ``embed_text`` (the one the model was trained with).
        pairs: instrument pairs; default: every pair of the corpus's instruments.

    Returns:
        One row per target: ``pair``, ``label``, ``sdr``, ``sdri``, ``si_sdr``, ``si_sdri``,
        and ``selected`` (the estimate is nearer its own instrument than the other one).
    """
    from ..data.recipes import synth
    from ..scoring import score_pair

    pairs = list(pairs or itertools.combinations(sorted(synth.SYNTH_INSTRUMENTS), 2))
    unknown = sorted({label for pair in pairs for label in pair} - set(synth.SYNTH_INSTRUMENTS))
    if unknown:
        raise ValueError(f"Unknown instrument(s) {unknown}; known: {sorted(synth.SYNTH_INSTRUMENTS)}")
    rows = []
    for k, pair in enumerate(tqdm(pairs, desc="fresh pairs", disable=not progress)):
        sources = [synth.render_clip("synth_music", label, seed + 2 * k + i, seconds)
                   for i, label in enumerate(pair)]
        sources = [0.1 * s / np.sqrt(np.mean(s ** 2)) for s in sources]
        mix = sum(sources)
        with torch.no_grad():
            est = model(torch.from_numpy(mix)[None].float(),
                        encoder.embed_text(list(pair))[None])[0].numpy()
        for i, label in enumerate(pair):
            own = score_pair(sources[i], est[i], mix)
            other = score_pair(sources[1 - i], est[i], None)
            rows.append({"pair": "+".join(pair), "label": label, **own,
                         "selected": own["si_sdr"] > other["si_sdr"]})
    return rows
