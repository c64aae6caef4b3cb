"""Routed separation: each stem separated by the runner (expert) its route names; the
routing of :class:`~omnisep_plugin.models.RoutedOmniSep` and of
:class:`~omnisep_plugin.separation.backends.RoutedSeparator`."""
from typing import Callable, Sequence

import torch

Runner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def run_routed(routes: torch.Tensor, runners: Sequence[Runner], wav: torch.Tensor,
               query: torch.Tensor) -> torch.Tensor:
    """Each stem separated by the runner its route names.

    Args:
        routes: expert index per stem ``[batch, n_src]``.
        runners: per expert, ``(wav [b, time], query [b, n_src, dim]) -> [b, n_src, time]``;
            one is called only on the mixtures that have a stem routed to it.
        wav: ``[batch, time]``; query: ``[batch, n_src, dim]``.

    Returns:
        ``[batch, n_src, time]``.
    """
    out = None
    for index, run in enumerate(runners):
        chosen = routes == index
        rows = chosen.any(dim=1)
        if not bool(rows.any()):
            continue
        est = run(wav[rows], query[rows])
        if out is None:
            out = est.new_zeros(wav.shape[0], query.shape[1], est.shape[-1])
        out[rows] = torch.where(chosen[rows].unsqueeze(-1), est, out[rows])
    return out
