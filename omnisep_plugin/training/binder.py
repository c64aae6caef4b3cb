"""Binding the offline Query-Net's audio encoder to its text space, on labelled cuts.

:func:`train_audio_binder` trains an :class:`~omnisep_plugin.query.offline.AudioBinder` so
that each clip lands next to the text embedding of its class label (ImageBind's binding
idea with the text space as the anchor); :func:`binding_accuracy` measures it.
"""
import random
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from ..data.embed import cut_label
from ..query.base import QueryEncoder
from ..query.offline import AudioBinder


def _augment(wav: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Random gain, low/high-pass filtering and a little noise (rendering-independent cues).

    The filters are second-order Butterworth sections run by ``scipy.signal.sosfilt``
    (the responses of torchaudio's ``lowpass_biquad`` / ``highpass_biquad`` at Q = 0.707,
    many times faster on the CPU)."""
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
    cuts = list(cuts)
    labels = sorted({cut_label(c) for c in cuts})
    anchors = text_encoder.embed_text(labels).cpu()
    correct = 0
    with torch.no_grad():
        for c in cuts:
            emb = F.normalize(binder(torch.from_numpy(c.load_audio()[0].astype(np.float32))[None]), dim=-1)
            correct += labels[int((emb @ anchors.T).argmax())] == cut_label(c)
    return correct / max(1, len(cuts))
