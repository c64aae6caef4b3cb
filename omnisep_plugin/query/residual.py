"""Residual negatives: a second pass that removes what the first pass left out.

A single query names what to keep, never what else is in the mixture. The first pass's
residual (mixture minus estimate) *is* what else is there, so its audio embedding is a
negative query that no one has to name: the query's second pass is
``Q' = (1 + alpha) Q - alpha R`` (eq. 4), where ``R`` is the residual's embedding with its
component along ``Q`` removed (so that a leak of the target into the residual does not
remove the target itself), then L2-normalised as every negative is. Chosen on the dev
mixtures of recipes/omni (``recipes/omni/local/choose_residual_negative.py``: alpha 0.5, the
projection kept; +0.65 dB SDRi for text + prototype queries there); docs/results.md section
8. ``omnisep separate`` gives it to composed queries only: a bare text's second pass loses
SI-SDR (:func:`omnisep_plugin.pipelines.residual_negative_stems`).

- :func:`residual_negative`: the second pass's queries from the residuals' embeddings;
- :func:`residual_queries`: those queries from a mixture and its first-pass estimates
  (tensors), residuals with next to no energy left alone;
- :func:`separate_with_residual_negative`: both passes for a mixture tensor;
- :func:`file_residual_queries`: the second pass's queries from files (`omnisep separate`).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..config import SEPARATE
from .ops import negative_query


def residual_negative(query: torch.Tensor, residual: torch.Tensor,
                      alpha: float = SEPARATE.residual_alpha) -> torch.Tensor:
    """``(1 + alpha) Q - alpha R``, with ``R`` the ``residual`` embedding less its component
    along ``Q`` (:func:`~omnisep_plugin.query.ops.negative_query`, which normalises it);
    ``[n, dim]`` -> ``[n, dim]``.

    A residual parallel to the query leaves the query unchanged.

    Example:
        >>> q, r = torch.tensor([[1., 0.]]), torch.tensor([[1., 1.]])
        >>> residual_negative(q, r, 0.5).tolist()
        [[1.5, -0.5]]
    """
    if query.shape != residual.shape:
        raise ValueError(f"query {tuple(query.shape)} and residual {tuple(residual.shape)} differ")
    unit = F.normalize(query.float(), dim=-1)
    rest = residual.float() - (residual.float() * unit).sum(-1, keepdim=True) * unit
    keep = rest.norm(dim=-1, keepdim=True) < 1e-6      # nothing but the query: no negative
    out = negative_query(query.float(), rest, alpha)
    return torch.where(keep, query.float(), out)


def residual_queries(encoder, mixture: torch.Tensor, estimates: torch.Tensor,
                     queries: torch.Tensor, alpha: float = SEPARATE.residual_alpha,
                     min_energy_db: float = SEPARATE.residual_min_energy_db,
                     wanted: Optional[torch.Tensor] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The second pass's queries and which stems have one.

    Args:
        encoder: a :class:`~omnisep_plugin.query.base.QueryEncoder` that embeds audio, at
            the rate of ``mixture``.
        mixture: ``[time]``; estimates: ``[n, time]``, the first pass of ``queries``
            ``[n, dim]``.
        min_energy_db: a residual quieter than this against the mixture (the estimate is
            the whole mixture, or the mixture is silent) is no negative: that stem keeps
            its query.
        wanted: ``[n]`` bool, the stems to give a second query (default all); the others
            keep theirs and are not embedded.

    Returns:
        ``([n, dim] queries, [n] bool: stems whose query changed)``.
    """
    if mixture.dim() != 1 or estimates.dim() != 2 or estimates.shape[-1] != mixture.shape[-1]:
        raise ValueError(f"Expected a mixture [time] and estimates [n, time], got "
                         f"{tuple(mixture.shape)} and {tuple(estimates.shape)}")
    residuals = mixture.float()[None] - estimates.float()
    energy = residuals.pow(2).sum(-1)
    floor = mixture.float().pow(2).sum() * 10 ** (min_energy_db / 10)
    used = (energy > floor) & (energy > 0)
    if wanted is not None:
        used &= wanted.to(used.device)
    if residuals.shape[-1] < getattr(encoder, "min_audio_samples", 1):
        used[:] = False
    out = queries.float().clone()
    if used.any():
        emb = encoder.embed_audio(residuals[used]).to(out)
        out[used] = residual_negative(out[used], emb, alpha)
    return out, used


def same_experts(model, query: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``[n]`` bool: where ``model`` answers the second queries ``[n, dim]`` with the expert
    that answers the first (always, for one network): a routed stem whose second query would
    go to another expert keeps its first pass."""
    if not hasattr(model, "route"):
        return torch.ones(len(query), dtype=torch.bool)
    device = model.route_embeddings.device
    return (model.route(second.to(device)) == model.route(query.to(device))).cpu()


@torch.no_grad()
def separate_with_residual_negative(model, encoder, wav: torch.Tensor, query: torch.Tensor,
                                    alpha: float = SEPARATE.residual_alpha,
                                    wanted: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Both passes for one mixture: ``wav`` ``[time]``, ``query`` ``[n, dim]`` ->
    estimates ``[n, time]`` (``wanted``, ``[n]`` bool: the stems that take a second pass;
    default all; a routed model's stem only where :func:`same_experts`).
    The mixture is at the model's rate, which must be the encoder's."""
    if int(model.sample_rate) != int(encoder.sample_rate):
        raise ValueError(f"The model runs at {model.sample_rate} Hz, the encoder at "
                         f"{encoder.sample_rate} Hz")
    device = next(model.parameters()).device
    first = model(wav[None].to(device), query[None].to(device))[0].cpu()
    second, changed = residual_queries(encoder, wav.cpu(), first, query.cpu(), alpha,
                                       wanted=wanted)
    changed &= same_experts(model, query, second)
    if not changed.any():
        return first
    est = model(wav[None].to(device), second[changed][None].to(device))[0].cpu()
    first[changed] = est
    return first


def file_residual_queries(mixture_path, output_paths, queries: torch.Tensor, encoder,
                          alpha: float = SEPARATE.residual_alpha, max_seconds: float = 60.0,
                          outputs_are_residuals: bool = False,
                          wanted: Optional[torch.Tensor] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`residual_queries` of a mixture file and its first pass's files: the first
    ``max_seconds``, channels averaged, at the encoder's rate (as the query check reads
    them). ``outputs_are_residuals``: the files are already mixture minus estimate
    (``omnisep separate --remove``); ``wanted``: as :func:`residual_queries` (the other
    stems' files are not read)."""
    from ..audio_io import read_audio, resample

    def load(path):
        wav, sr = read_audio(path, max_seconds=max_seconds)
        return resample(torch.from_numpy(wav.mean(0)), sr, encoder.sample_rate)

    wanted = torch.ones(len(output_paths), dtype=torch.bool) if wanted is None else wanted.cpu()
    mix = load(mixture_path)
    outs = [load(p) if w else None for p, w in zip(output_paths, wanted.tolist())]
    n = min([mix.shape[-1]] + [o.shape[-1] for o in outs if o is not None])
    mix = mix[:n]
    outs = torch.stack([mix if o is None else o[:n] for o in outs])  # unread: not embedded
    estimates = mix[None] - outs if outputs_are_residuals else outs
    return residual_queries(encoder, mix, estimates, queries, alpha, wanted=wanted)
