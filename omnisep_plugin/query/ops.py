"""Query operations of OmniSep: Query-Mixup (eq. 1), composition, negative query (eq. 4).

All functions take and return ``[batch, dim]`` tensors unless said otherwise.
"""
from typing import Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SEPARATE

MODALITIES = ("text", "image", "audio")
NEGATIVE_VARIANTS = ("omnisep", "subtract", "interpolate")
MIXUP_MODES = ("mixup", "random", "switch")


def check_modality(name: str) -> str:
    """Return ``name`` if it is a known modality, else raise a ValueError naming the known ones."""
    if name not in MODALITIES:
        raise ValueError(f"Unknown query modality {name!r}; expected one of {MODALITIES}")
    return name


def _stack(queries: Mapping[str, torch.Tensor]):
    if not queries:
        raise ValueError("No query given: pass at least one of text, image or audio")
    names = [check_modality(n) for n in queries]
    shapes = {tuple(q.shape) for q in queries.values()}
    if len(shapes) != 1:
        raise ValueError(f"Queries of different shapes cannot be combined: "
                         f"{ {n: tuple(q.shape) for n, q in queries.items()} }")
    return names, torch.stack([queries[n] for n in names], dim=-2)


def compose_query(queries: Mapping[str, torch.Tensor],
                  weights: Optional[Mapping[str, float]] = None,
                  normalize: bool = True) -> torch.Tensor:
    """Weighted mean of query embeddings of several modalities (composed query, inference).

    ``Q = sum_m w_m Q_m / sum_m w_m``, then L2-normalised when ``normalize``.

    Args:
        queries: modality name -> embeddings ``[..., dim]`` (all the same shape).
        weights: modality name -> non-negative weight (default 1 each).

    Example:
        >>> q = compose_query({"text": torch.tensor([[1., 0.]]), "audio": torch.tensor([[0., 1.]])},
        ...                   normalize=False)
        >>> q.tolist()
        [[0.5, 0.5]]
    """
    names, stacked = _stack(queries)
    weights = dict(weights or {})
    unknown = set(weights) - set(names)
    if unknown:
        raise ValueError(f"Weights given for modalities without a query: {sorted(unknown)}")
    w = torch.tensor([float(weights.get(n, 1.0)) for n in names], dtype=stacked.dtype,
                     device=stacked.device)
    if (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"Query weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    q = (stacked * w[:, None]).sum(-2) / w.sum()
    return F.normalize(q, dim=-1) if normalize else q


def negative_query(query: torch.Tensor, negative: torch.Tensor, alpha: float,
                   variant: str = "omnisep", normalize_negative: bool = True) -> torch.Tensor:
    """Combine a positive and a negative query (training-free, eq. 4 and Table 12 baselines).

    - ``omnisep``: ``Q' = (1 + alpha) Q - alpha Q_N`` (the paper's method);
    - ``subtract``: ``Q' = Q - alpha Q_N``;
    - ``interpolate``: ``Q' = (1 - alpha) Q + alpha Q_N``.

    ``Q_N`` is L2-normalised first (``normalize_negative``, as the official code's
    ``q (1 + a) - a normalize(q_neg)``), so that a mean of several negative queries or a raw
    user tensor weighs as much as one unit-norm query. ``alpha = 0`` returns ``query``
    unchanged for every variant.

    Example:
        >>> negative_query(torch.tensor([1., 0.]), torch.tensor([0., 1.]), 0.5).tolist()
        [1.5, -0.5]
        >>> negative_query(torch.tensor([1., 0.]), torch.tensor([0., 4.]), 0.5).tolist()
        [1.5, -0.5]
    """
    if variant not in NEGATIVE_VARIANTS:
        raise ValueError(f"Unknown negative-query variant {variant!r}; "
                         f"expected one of {NEGATIVE_VARIANTS}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 10.0 or alpha != alpha:
        raise ValueError(f"alpha must be in [0, 10], got {alpha}")
    if query.shape != negative.shape:
        raise ValueError(f"Query and negative query shapes differ: {tuple(query.shape)} vs "
                         f"{tuple(negative.shape)}")
    if normalize_negative:
        negative = F.normalize(negative, dim=-1)
    if variant == "omnisep":
        return (1 + alpha) * query - alpha * negative
    if variant == "subtract":
        return query - alpha * negative
    return (1 - alpha) * query + alpha * negative


def remove_each_other(queries: torch.Tensor, alpha: float = SEPARATE.alpha,
                      variant: str = "omnisep") -> torch.Tensor:
    """Stem queries ``[n, dim]`` where each removes the others: query i with the mean of the
    other ``n - 1`` as its negative (eq. 4). What ``omnisep separate`` does with several
    stems (:func:`omnisep_plugin.query.spec.build_queries`); one query is returned as it is.

    Example:
        >>> remove_each_other(torch.tensor([[1., 0.], [0., 1.]])).tolist()
        [[1.5, -0.5], [-0.5, 1.5]]
    """
    n = queries.shape[0]
    if n < 2:
        return queries
    others = (queries.sum(0, keepdim=True) - queries) / (n - 1)
    return negative_query(queries, others, alpha, variant)


class QueryMixup(nn.Module):
    """Training-time combination of the per-modality queries of each example.

    Modes:
        - ``mixup`` (OmniSep, eq. 1): ``Q = sum_m w_m Q_m / sum_m w_m`` with
          ``w_m ~ U[0, 1]`` over the modalities available for the example; drawn per
          example (``per_example=True``, the paper) or once per step (the official code).
        - ``random`` (no mixup, the ablation): each example uses one available modality,
          drawn uniformly.
        - ``switch`` (CLIPSep's modality switching): one modality for the whole batch per
          step, drawn among those available for every example.

    In eval mode every mode returns the L2-normalised equal-weight mean of the available
    modalities: the composed query of the test path (:func:`compose_query`), so that
    validation measures what inference does (an unnormalised mean of 3 unit vectors has
    norm about 0.58, never seen at test time).

    Args:
        modalities: modalities used in training (a subset of text, image, audio).
        mode: one of ``mixup``, ``random``, ``switch``.
        per_example: mixup weights per example (True) or shared by the batch (False).

    Shape:
        - queries: modality -> ``[batch, ..., dim]``; available: modality -> bool ``[batch]``
          (all True when omitted).
        - output: ``[batch, ..., dim]``.
    """

    def __init__(self, modalities: Sequence[str] = MODALITIES, mode: str = "mixup",
                 per_example: bool = True):
        super().__init__()
        if mode not in MIXUP_MODES:
            raise ValueError(f"Unknown Query-Mixup mode {mode!r}; expected one of {MIXUP_MODES}")
        self.modalities = tuple(check_modality(m) for m in modalities)
        if not self.modalities:
            raise ValueError("QueryMixup needs at least one modality")
        self.mode = mode
        self.per_example = per_example

    def forward(self, queries: Mapping[str, torch.Tensor],
                available: Optional[Mapping[str, torch.Tensor]] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        missing = [m for m in self.modalities if m not in queries]
        if missing:
            raise ValueError(f"QueryMixup was set up for {self.modalities} but got no "
                             f"{missing} query")
        _, stacked = _stack({m: queries[m] for m in self.modalities})  # [B, ..., M, d]
        batch, n_mod = stacked.shape[0], len(self.modalities)
        device = stacked.device
        if available is None:
            avail = torch.ones(batch, n_mod, dtype=torch.bool, device=device)
        else:
            avail = torch.stack([available[m].to(device=device, dtype=torch.bool).reshape(batch)
                                 for m in self.modalities], dim=-1)
        if not avail.any(-1).all():
            raise ValueError("Some examples have no available query modality")
        if not self.training:
            weights = avail.float()
        elif self.mode == "mixup":
            shape = (batch, n_mod) if self.per_example else (1, n_mod)
            weights = torch.rand(shape, generator=generator).to(device).expand(batch, n_mod)
            # Guard against all-zero draws (probability ~0, but keep the division safe).
            weights = (weights + 1e-6) * avail
        elif self.mode == "random":
            scores = torch.rand(batch, n_mod, generator=generator).to(device)
            choice = scores.masked_fill(~avail, -1.0).argmax(-1)
            weights = F.one_hot(choice, n_mod).float()
        else:  # switch
            common = avail.all(0)
            if not common.any():
                raise ValueError("Modality switching needs a modality available in every example")
            scores = torch.rand(n_mod, generator=generator).to(device).masked_fill(~common, -1.0)
            weights = F.one_hot(scores.argmax(), n_mod).float().expand(batch, n_mod)
        weights = weights.to(stacked.dtype)
        weights = weights.reshape(batch, *([1] * (stacked.dim() - 3)), n_mod, 1)
        q = (stacked * weights).sum(-2) / weights.sum(-2)
        return q if self.training else F.normalize(q, dim=-1)
