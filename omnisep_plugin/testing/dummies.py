"""Tiny models and synthetic signals for fast CPU tests (no network, seconds)."""
import math
import os
from typing import Union

import torch

from ..models import OmniSep

#: ``OmniSep`` arguments of a test-size model (3-level U-Net, 4 masks, 8-d queries).
TINY_OMNISEP = dict(query_dim=8, n_masks=4, unet_widths=[4, 8, 8], log_freq_bins=32,
                    n_fft=256, hop_length=64, win_length=256, sample_rate=16000)

#: ``ImageBindModel`` arguments of a test-size ImageBind (1 block per modality, 16-d output).
TINY_IMAGEBIND = dict(
    out_embed_dim=16,
    **{f"{m}_{k}": v for m in ("vision", "text", "audio", "depth", "thermal", "imu")
       for k, v in (("embed_dim", 32), ("num_blocks", 1), ("num_heads", 2))},
)


def tiny_omnisep(**overrides) -> OmniSep:
    """A randomly initialised test-size OmniSep (``TINY_OMNISEP`` updated with ``overrides``)."""
    return OmniSep(**{**TINY_OMNISEP, **overrides})


def save_tiny_imagebind_checkpoint(path: Union[str, os.PathLike], seed: int = 0) -> dict:
    """Build ImageBind's real ``ImageBindModel`` at test size with random weights and save it
    as ``{"model_kwargs", "state_dict"}`` (what :class:`ImageBindEncoder` loads). Returns the
    state dict."""
    from ..query.imagebind import import_imagebind

    _, imagebind_model = import_imagebind()
    torch.manual_seed(seed)
    state = imagebind_model.ImageBindModel(**TINY_IMAGEBIND).state_dict()
    torch.save({"model_kwargs": TINY_IMAGEBIND, "state_dict": state}, path)
    return state


def harmonic_tone(freq: float, seconds: float, sample_rate: int = 16000,
                  n_harmonics: int = 4, phase: float = 0.0) -> torch.Tensor:
    """A harmonic tone ``[time]`` with 1/h amplitudes, peak about 0.5."""
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    wav = sum(torch.sin(2 * math.pi * freq * h * t + phase * h) / h
              for h in range(1, n_harmonics + 1))
    return 0.5 * wav / wav.abs().max()


def two_source_batch(batch: int = 2, seconds: float = 1.0, sample_rate: int = 16000,
                     seed: int = 0):
    """Two spectrally distinct sources (a low harmonic tone, a high band of noise) per example.

    Returns:
        mix ``[batch, time]``, sources ``[batch, 2, time]``.
    """
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * sample_rate)
    low = torch.stack([harmonic_tone(150 + 100 * float(torch.rand(1, generator=g)), seconds,
                                     sample_rate) for _ in range(batch)])
    noise = torch.randn(batch, n, generator=g)
    spec = torch.fft.rfft(noise)
    freqs = torch.fft.rfftfreq(n, 1 / sample_rate)
    spec[:, (freqs < 3000) | (freqs > 6000)] = 0
    high = torch.fft.irfft(spec, n)
    high = 0.3 * high / high.abs().amax(-1, keepdim=True)
    sources = torch.stack([low, high], dim=1)
    return sources.sum(1), sources


def dummy_embedded_cuts(folder: Union[str, os.PathLike], n_classes: int = 4, per_class: int = 2,
                        seconds: float = 1.0, dim: int = 8, seed: int = 0):
    """An eager CutSet of harmonic tones, ``per_class`` cuts of each of ``n_classes`` classes
    (``class0``, ...), with random unit text and audio query arrays attached as
    :func:`~omnisep_plugin.data.embed.embed_cuts` does (``text_emb`` / ``audio_emb``)."""
    from pathlib import Path

    import numpy as np
    import soundfile as sf
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
    from lhotse.features.io import NumpyFilesWriter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    text = {c: rng.standard_normal(dim) for c in range(n_classes)}
    cuts = []
    with NumpyFilesWriter(folder / "arrays") as writer:
        for c in range(n_classes):
            for i in range(per_class):
                cut_id = f"class{c}-{i}"
                path = folder / f"{cut_id}.wav"
                sf.write(path, harmonic_tone(110 * 2 ** (c * 5 / 12) * (1 + 0.01 * i), seconds).numpy(), 16000)
                rec = Recording.from_file(path, recording_id=cut_id)
                sup = SupervisionSegment(cut_id, cut_id, 0.0, rec.duration, custom={"label": f"class{c}"})
                cut = MonoCut(cut_id, 0.0, rec.duration, 0, recording=rec, supervisions=[sup])
                for kind, vec in (("text", text[c]), ("audio", text[c] + 0.3 * rng.standard_normal(dim))):
                    vec = (vec / np.linalg.norm(vec)).astype(np.float32)
                    cut = cut.with_custom(f"{kind}_emb", writer.store_array(f"{cut_id}.{kind}", vec))
                cuts.append(cut)
    return CutSet.from_cuts(cuts).to_eager()
