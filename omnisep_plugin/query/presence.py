"""Is the queried sound in the mixture? A presence score per query and mixture.

OmniSep always returns something: a query for a sound that is not there gives a quiet copy
of whatever is. Two cues tell it apart (docs/results.md, "Query check"):

- ``energy_db``: estimate-to-mixture energy, ``10 log10(E[est^2] / E[mix^2])``: an absent
  target's mask is mostly closed;
- ``similarity``: cosine of the query and the audio embedding of the estimate (when the
  query encoder embeds audio): what came out does not sound like what was asked for. The
  cosine with the mixture's embedding, ``similarity_mixture``, is recorded too.

The query is flagged ("target likely absent") when a cue falls below its threshold in
:data:`omnisep_plugin.config.PRESENCE`.
"""
from pathlib import Path
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from ..audio_io import read_audio, resample
from ..config import PRESENCE, PresenceConfig

_TINY = 1e-12


@torch.no_grad()
def presence(estimate: torch.Tensor, mixture: torch.Tensor, query: torch.Tensor,
             encoder=None, config: PresenceConfig = PRESENCE) -> dict:
    """Presence cues of one query.

    Args:
        estimate, mixture: ``[time]`` at the encoder's rate (16 kHz).
        query: ``[dim]``, the query the estimate was separated with.
        encoder: a :class:`~omnisep_plugin.query.base.QueryEncoder`; the similarity cues
            need one that embeds audio.

    Returns:
        ``energy_db``, ``similarity`` and ``similarity_mixture`` (``None`` without an
        audio encoder), the thresholds, and ``absent`` (bool).

    Example:
        >>> mix = torch.randn(16000)
        >>> presence(0.5 * mix, mix, torch.ones(4))["absent"], presence(1e-3 * mix, mix, torch.ones(4))["absent"]
        (False, True)
    """
    return stems_presence([estimate], mixture, query.reshape(1, -1), encoder, config)[0]


@torch.no_grad()
def stems_presence(estimates: Sequence[torch.Tensor], mixture: torch.Tensor,
                   queries: torch.Tensor, encoder=None,
                   config: PresenceConfig = PRESENCE) -> List[dict]:
    """:func:`presence` of several stems of one mixture, the mixture embedded once.

    Args:
        estimates: ``n`` tensors ``[time]`` (the mixture's length); mixture: ``[time]``.
        queries: ``[n, dim]``, each stem's query.

    Returns:
        one record per stem, as :func:`presence`.
    """
    mixture = mixture.float().reshape(-1)
    estimates = [e.float().reshape(-1) for e in estimates]
    mix_power = mixture.pow(2).mean() + _TINY
    energies = [float(10 * torch.log10((e.pow(2).mean() + _TINY) / mix_power)) for e in estimates]
    sims = [(None, None)] * len(estimates)
    use_similarity = encoder is not None and encoder.supports("audio") and \
        mixture.shape[-1] >= encoder.min_audio_samples
    if use_similarity:
        q = F.normalize(queries.float().reshape(len(estimates), -1).to(encoder.device), dim=-1)
        emb = encoder.embed_audio(torch.stack([*estimates, mixture]).to(encoder.device))
        sims = list(zip((emb[:-1] * q).sum(-1).tolist(),   # each stem against its own query
                        (q @ emb[-1]).tolist()))           # the mixture against each query
    return [{"energy_db": round(energy, 2),
             "similarity": None if se is None else round(se, 4),
             "similarity_mixture": None if sm is None else round(sm, 4),
             "min_energy_db": config.min_energy_db,
             "min_similarity": config.min_similarity if use_similarity else None,
             "absent": energy < config.min_energy_db or (se is not None and se < config.min_similarity)}
            for energy, (se, sm) in zip(energies, sims)]


def file_presence(mixture_path, estimate_paths, queries: torch.Tensor, encoder=None,
                  config: PresenceConfig = PRESENCE) -> List[dict]:
    """:func:`stems_presence` of estimate files and their mixture: the first
    ``config.max_seconds``, channels averaged, at the encoder's rate (16 kHz without one).
    The mixture is read and embedded once, whatever the number of stems.

    Args:
        estimate_paths: ``n`` files; queries: ``[n, dim]``.
    """
    rate = getattr(encoder, "sample_rate", 16000)

    def load(path):
        wav, sr = read_audio(Path(path), max_seconds=config.max_seconds)
        return resample(torch.from_numpy(wav.mean(0)), sr, rate)

    return stems_presence([load(p) for p in estimate_paths], load(mixture_path), queries,
                          encoder, config)


def absent_warning(name: str, record: dict) -> Optional[str]:
    """The one-line warning for a flagged query, or ``None``."""
    if not record["absent"]:
        return None
    cue = (f"similarity {record['similarity']:.2f} < {record['min_similarity']}"
           if record["similarity"] is not None and record["similarity"] < record["min_similarity"]
           else f"estimate {-record['energy_db']:.1f} dB below the mixture")
    return f"Warning: {name}: target likely absent ({cue})"
