"""How often the query check errs (``omnisep eval-presence``): rendered instrument pairs,
queried for each of their instruments (present) and for an instrument and an everyday
sound that are not in them (absent)."""
import itertools
from dataclasses import replace
from typing import List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import PRESENCE, PresenceConfig
from ..query.presence import presence

#: Absent queries outside the default model's instruments.
EVERYDAY = ("dog barking", "a man speaking", "rain falling", "a car engine", "applause",
            "church bells", "birds singing", "a drum kit")


def presence_rows(model, encoder, n_pairs: Optional[int] = None, seconds: float = 4.0,
                  seed: int = 8_000_000, progress: bool = False) -> List[dict]:
    """Presence cues of 4 queries per rendered 0 dB pair (2 present, 2 absent).

    Pairs are every pair of the synth_music instruments in a seeded order (the first
    ``n_pairs``), rendered from melody seeds ``seed + 2k (+1)``; the absent instrument is a
    seeded choice among the other nine, the everyday sound cycles through :data:`EVERYDAY`.

    Returns:
        one row per query: ``pair``, ``text``, ``present`` and the :func:`presence` cues
        (with thresholds that flag nothing: :func:`flag_rates` applies them).
    """
    from ..data.recipes import synth

    rng = np.random.default_rng(seed)
    labels = sorted(synth.SYNTH_INSTRUMENTS)
    pairs = list(itertools.combinations(labels, 2))
    rng.shuffle(pairs)
    keep_all = replace(PRESENCE, min_similarity=-1.0, min_energy_db=-np.inf)
    rows = []
    for k, pair in enumerate(tqdm(pairs[:n_pairs], desc="presence", disable=not progress)):
        sources = [synth.render_clip("synth_music", label, seed + 2 * k + i, seconds)
                   for i, label in enumerate(pair)]
        mix = torch.from_numpy(sum(0.1 * s / np.sqrt(np.mean(s ** 2)) for s in sources)).float()
        others = [lab for lab in labels if lab not in pair]
        queries = [(lab, True) for lab in pair] + [
            (others[rng.integers(len(others))], False), (EVERYDAY[k % len(EVERYDAY)], False)]
        texts = [t.replace("_", " ") for t, _ in queries]
        q = encoder.embed_text(texts)
        with torch.no_grad():
            est = model(mix[None], q[None])[0]
        for i, (text, present) in enumerate(zip(texts, (p for _, p in queries))):
            cues = presence(est[i], mix, q[i], encoder, keep_all)
            rows.append({"pair": "+".join(pair), "text": text, "present": present,
                         "energy_db": cues["energy_db"], "similarity": cues["similarity"]})
    return rows


def flag_rates(rows: Sequence[dict], config: PresenceConfig = PRESENCE) -> dict:
    """False alarms (present targets flagged) and misses (absent ones not flagged)."""
    def flagged(r):
        sim = r["similarity"]
        return r["energy_db"] < config.min_energy_db or (sim is not None and sim < config.min_similarity)

    present = [flagged(r) for r in rows if r["present"]]
    absent = [not flagged(r) for r in rows if not r["present"]]
    return {"false_alarm": float(np.mean(present)), "miss": float(np.mean(absent)),
            "n_present": len(present), "n_absent": len(absent)}


def choose_similarity(rows: Sequence[dict], config: PresenceConfig = PRESENCE) -> float:
    """The similarity threshold (at ``config.min_energy_db``) with the fewest errors,
    false alarms and misses weighted equally (midpoint between neighbouring scores)."""
    sims = sorted({r["similarity"] for r in rows})
    candidates = [(a + b) / 2 for a, b in zip(sims, sims[1:])]

    def cost(t):
        rates = flag_rates(rows, replace(config, min_similarity=t))
        return rates["false_alarm"] + rates["miss"]
    return round(min(candidates, key=cost), 3)
