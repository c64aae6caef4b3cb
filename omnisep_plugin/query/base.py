"""The Query-Net interface: frozen encoders that map queries of any modality to one space."""
from typing import Iterable, List, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ImageInput = Union[torch.Tensor, Sequence[str]]


class QueryEncoder(nn.Module):
    """Base class of the frozen query encoders (ImageBind, MiniLM+bound audio, test encoders).

    Subclasses set :attr:`dim`, :attr:`modalities` and :attr:`sample_rate`, and implement
    the ``_embed_<modality>`` methods they support; the public ``embed_*`` methods check
    inputs, run without gradients in eval mode and return unit-norm ``[batch, dim]`` float
    tensors on the encoder's :attr:`device`.
    """

    dim: int = 0
    modalities: tuple = ()
    sample_rate: int = 16000
    #: Shortest audio query (samples at :attr:`sample_rate`): one 1024-point STFT frame.
    min_audio_samples: int = 1024

    def freeze(self) -> "QueryEncoder":
        """Eval mode and ``requires_grad=False`` on every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "QueryEncoder":
        # Frozen encoders stay in eval mode (dropout, batch norm) whatever their parent does.
        return super().train(False)

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def supports(self, modality: str) -> bool:
        return modality in self.modalities

    def _require(self, modality: str):
        if modality not in self.modalities:
            raise ValueError(f"{type(self).__name__} has no {modality} encoder; "
                             f"it embeds {list(self.modalities)}")

    @torch.no_grad()
    def embed_text(self, texts: Iterable[str]) -> torch.Tensor:
        """Embed text queries: list of ``batch`` strings -> ``[batch, dim]``."""
        self._require("text")
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise ValueError("embed_text got no text")
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"Text queries must be non-empty strings, got {t!r}")
        return F.normalize(self._embed_text(texts).float(), dim=-1)

    @torch.no_grad()
    def embed_image(self, images: ImageInput) -> torch.Tensor:
        """Embed images: float RGB ``[batch, 3, H, W]`` in [0, 1], or image file paths."""
        self._require("image")
        if isinstance(images, str):
            images = [images]
        if isinstance(images, torch.Tensor):
            if images.dim() != 4 or images.shape[1] != 3 or images.shape[0] == 0:
                raise ValueError(f"Image tensors must be [batch, 3, H, W], got "
                                 f"{tuple(images.shape)}")
            if not torch.isfinite(images).all():
                raise ValueError("Image tensor contains NaN or Inf")
        elif not list(images):
            raise ValueError("embed_image got no image")
        return F.normalize(self._embed_image(images).float(), dim=-1)

    @torch.no_grad()
    def embed_audio(self, wav: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        """Embed audio examples: ``[batch, time]`` (or ``[time]``) at :attr:`sample_rate`."""
        self._require("audio")
        if isinstance(wav, np.ndarray):
            wav = torch.from_numpy(wav)
        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2 or wav.shape[-1] == 0 or wav.shape[0] == 0:
            raise ValueError(f"Audio queries must be non-empty [batch, time], got {tuple(wav.shape)}")
        if not torch.isfinite(wav).all():
            raise ValueError("Audio query contains NaN or Inf samples")
        if wav.shape[-1] < self.min_audio_samples:
            raise ValueError(f"Audio query of {wav.shape[-1]} samples is shorter than one "
                             f"analysis frame ({self.min_audio_samples} samples, "
                             f"{1000 * self.min_audio_samples / self.sample_rate:.0f} ms at "
                             f"{self.sample_rate} Hz)")
        return F.normalize(self._embed_audio(wav.float()).float(), dim=-1)

    def embed(self, modality: str, inputs) -> torch.Tensor:
        """Dispatch to ``embed_<modality>``."""
        from .ops import check_modality
        return getattr(self, f"embed_{check_modality(modality)}")(inputs)

    # Subclasses implement the ones they support.
    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        raise NotImplementedError

    def _embed_image(self, images: ImageInput) -> torch.Tensor:
        raise NotImplementedError

    def _embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
