"""Separation: the front door :func:`separate`, files of any size, overlap-add.

Which file to open:

- here: :func:`separate`, Asteroid's front door for query-conditioned models (tensor, array
  or file path; ``output_dir``, ``force_overwrite``, ``resample``; files written as
  ``<name>_est<i>.wav``) with two differences: the query travels as keyword arguments to
  ``forward_wav``, and the estimates are not rescaled to the mixture's energy (Asteroid's
  ``torch_separate`` does, under a FIXME; a target-extraction estimate is meant to be
  quieter than its mixture);
- :mod:`.files`: recordings in, estimate files out (``omnisep separate``), output checks;
- :mod:`.overlap_add`: windows, cross-fades and batching of arbitrarily long streams.

Reading and resampling audio live in :mod:`omnisep_plugin.audio_io`; the query a user
describes is built by :mod:`omnisep_plugin.query.spec`.
"""
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..audio_io import check_input_file, read_audio
from ..config import SEPARATE
from .files import (output_paths, plan_outputs, plot_file_spectrograms, separate_file,
                    unique_stems, write_sidecar)
from .overlap_add import crossfade_window, separate_array, separate_stream

__all__ = ["separate", "file_separate", "numpy_separate", "torch_separate", "stack_queries",
           "separate_file",
           "separate_array", "separate_stream", "crossfade_window", "plan_outputs",
           "output_paths", "unique_stems", "write_sidecar", "plot_file_spectrograms",
           "read_audio", "check_input_file"]


def stack_queries(queries) -> torch.Tensor:
    """A list of queries (each ``[dim]`` or ``[batch, dim]``, tensors or arrays) ->
    ``[batch, n, dim]`` (batch 1 for ``[dim]`` queries): one estimate per query."""
    if not len(queries):
        raise ValueError("Empty list of queries")
    q = torch.stack([torch.as_tensor(x) for x in queries], dim=-2)
    return q[None] if q.dim() == 2 else q


@torch.no_grad()
def torch_separate(model, wav: torch.Tensor, residual: bool = False, **kwargs) -> torch.Tensor:
    """Run ``model.forward_wav`` on the model's device; returns estimates on ``wav``'s device.

    ``query`` may be a list (one estimate per query, one U-Net pass; a ``negative`` then
    applies to each); ``residual`` returns everything but the query instead (mixture minus
    estimate: the complementary mask), so that estimate + residual = mixture.
    """
    if isinstance(kwargs.get("query"), (list, tuple)):
        kwargs["query"] = stack_queries(kwargs["query"])
        negative = kwargs.get("negative")
        if negative is not None:
            negative = torch.as_tensor(negative)
            if negative.dim() == kwargs["query"].dim() - 1 or negative.dim() == 1:
                negative = negative.unsqueeze(-2).expand(kwargs["query"].shape)
            kwargs["negative"] = negative
    device = next(model.parameters()).device
    est = model.forward_wav(wav.to(device), **kwargs).to(wav.device)
    if residual:
        return (wav if wav.dim() == 3 else wav.unsqueeze(-2)) - est
    return est


def numpy_separate(model, wav: np.ndarray, **kwargs) -> np.ndarray:
    return torch_separate(model, torch.from_numpy(np.ascontiguousarray(wav)), **kwargs).numpy()


def file_separate(model, filename, output_dir=None, force_overwrite=False, resample=False,
                  query=None, negative=None, alpha: float = 0.0,
                  negative_variant=SEPARATE.negative_variant,
                  window: int = SEPARATE.window, residual: bool = False) -> None:
    """Separate an audio file and write ``<name>_est1.wav`` (Asteroid's naming).

    Streams the file in overlapping windows (bounded memory, any length); each channel of a
    multichannel file is separated on its own; the estimate keeps the file's channels and
    sampling rate (with ``resample=True`` other rates are resampled to the model's rate and
    back; without it they are refused, as in Asteroid). A list of queries writes
    ``<name>_est1.wav``, ``<name>_est2.wav``... from one pass; ``residual=True`` writes
    ``<name>_residual.wav`` (everything but the query) instead. Written atomically.
    """
    from ..query.ops import negative_query

    base = os.path.splitext(os.fspath(filename))[0]
    if output_dir is not None:
        base = os.path.join(output_dir, os.path.basename(base))
    if query is None:
        raise ValueError("No query: pass query=<embedding [dim]> (or a list of them)")
    q = stack_queries(query)[0] if isinstance(query, (list, tuple)) else \
        torch.as_tensor(query).float().reshape(1, -1)
    if residual and len(q) > 1:
        raise ValueError("residual=True takes one query")
    outs = [Path(f"{base}_residual.wav")] if residual else \
        [Path(f"{base}_est{i + 1}.wav") for i in range(len(q))]
    existing = [o for o in outs if o.is_file()]
    if existing and not force_overwrite:
        warnings.warn(f"File {existing[0]} already exists, pass `force_overwrite=True` to "
                      "overwrite it", UserWarning)
        return
    info = check_input_file(Path(filename))
    for out in outs:
        if os.path.lexists(out) and os.path.samefile(out, filename):
            raise ValueError(f"Refusing to write {out}: it is the input")
    if info.samplerate != int(model.sample_rate) and not resample:
        raise ValueError(f"{filename} is sampled at {info.samplerate} Hz, the model at "
                         f"{int(model.sample_rate)} Hz; pass resample=True to resample automatically")
    if negative is not None:
        neg = torch.as_tensor(negative).float().reshape(1, -1).expand_as(q)
        q = negative_query(q.float(), neg, alpha, negative_variant)
    separate_file(model, Path(filename), q, outs, window=window, residual=residual)


def separate(model, wav, output_dir=None, force_overwrite=False, resample=False, **kwargs):
    """Dispatch on the input type like ``asteroid.separate.separate``."""
    if isinstance(wav, (str, os.PathLike)):
        return file_separate(model, wav, output_dir=output_dir, force_overwrite=force_overwrite,
                             resample=resample, **kwargs)
    if isinstance(wav, np.ndarray):
        return numpy_separate(model, wav, **kwargs)
    if isinstance(wav, torch.Tensor):
        return torch_separate(model, wav, **kwargs)
    raise ValueError(f"Only support filenames, numpy arrays and torch tensors, got {type(wav)}")
