"""Asteroid-compatible ``separate`` for query-conditioned models.

Same front door as ``asteroid.separate`` (tensor, array or file path; ``output_dir``,
``force_overwrite``, ``resample``; files written as ``<name>_est<i>.wav``) with two
differences: the query travels as keyword arguments to ``forward_wav``, and the estimates
are not rescaled to the mixture's energy (Asteroid's ``torch_separate`` does, under a
FIXME; a target-extraction estimate is meant to be quieter than its mixture).
"""
import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .utils import atomic_write


@torch.no_grad()
def torch_separate(model, wav: torch.Tensor, **kwargs) -> torch.Tensor:
    """Run ``model.forward_wav`` on the model's device; returns estimates on ``wav``'s device."""
    device = next(model.parameters()).device
    return model.forward_wav(wav.to(device), **kwargs).to(wav.device)


def numpy_separate(model, wav: np.ndarray, **kwargs) -> np.ndarray:
    return torch_separate(model, torch.from_numpy(np.ascontiguousarray(wav)), **kwargs).numpy()


def read_audio(path) -> tuple:
    """Read an audio file as float32 ``[channels, time]`` and its rate; ValueError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No audio file at {path}")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"Cannot read audio file {path}: {err}") from None
    if wav.shape[0] == 0:
        raise ValueError(f"Audio file {path} is empty")
    return wav.T, sr


def file_separate(model, filename, output_dir=None, force_overwrite=False, resample=False,
                  **kwargs) -> None:
    """Separate an audio file and write ``<name>_est<i>.wav`` (one per query source).

    Each channel of a multichannel file is separated on its own; the estimates keep the
    file's channels and sampling rate (with ``resample=True`` other rates are resampled to
    the model's rate and back). Files are written atomically.
    """
    base = os.path.splitext(os.fspath(filename))[0]
    if output_dir is not None:
        base = os.path.join(output_dir, os.path.basename(base))
    template = base + "_est{}.wav"
    if os.path.isfile(template.format(1)) and not force_overwrite:
        warnings.warn(f"File {template.format(1)} already exists, pass `force_overwrite=True` "
                      "to overwrite it", UserWarning)
        return
    wav, sr = read_audio(filename)
    wav = torch.from_numpy(wav)
    model_sr = int(model.sample_rate)
    if sr != model_sr:
        if not resample:
            raise ValueError(f"{filename} is sampled at {sr} Hz, the model at {model_sr} Hz; "
                             f"pass resample=True to resample automatically")
        import torchaudio.functional as AF
        wav = AF.resample(wav, sr, model_sr)
    est = torch_separate(model, wav, **kwargs)  # [channels, n_src, time]
    if sr != model_sr:
        import torchaudio.functional as AF
        est = AF.resample(est, model_sr, sr)
    for i in range(est.shape[1]):
        with atomic_write(template.format(i + 1)) as tmp:
            sf.write(tmp, est[:, i].T.numpy(), sr, format="WAV", subtype="FLOAT")


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
