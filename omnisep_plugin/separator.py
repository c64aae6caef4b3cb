"""The user-facing separator behind ``omnisep separate``: queries in, files out.

:func:`build_query` turns what the user says (text, image files, audio examples, weights,
negatives, Query-Aug) into one query vector; :func:`separate_file` streams a recording of
any length, rate and channel count through the model and writes the estimate atomically.
"""
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf
import torch

from .query.base import QueryEncoder
from .query.ops import compose_query, negative_query
from .query.query_set import QuerySet
from .separate import read_audio
from .streaming import read_blocks, resample_stream, separate_stream
from .utils import atomic_write

MAX_ALPHA = 10.0


@dataclass
class QuerySpec:
    """What to keep (``text``/``image``/``audio``, composed with ``weights``) and what to
    remove (``negative_*``, eq. 4 with ``alpha``); ``query_aug`` maps the text onto the
    nearest training label (eq. 5)."""
    text: Optional[str] = None
    image: Optional[str] = None
    audio: Optional[str] = None
    weights: Dict[str, float] = field(default_factory=dict)
    negative_text: Optional[str] = None
    negative_image: Optional[str] = None
    negative_audio: Optional[str] = None
    alpha: float = 0.5
    query_aug: bool = False

    def positives(self) -> Dict[str, str]:
        return {k: v for k, v in (("text", self.text), ("image", self.image),
                                  ("audio", self.audio)) if v is not None}

    def negatives(self) -> Dict[str, str]:
        return {k: v for k, v in (("text", self.negative_text), ("image", self.negative_image),
                                  ("audio", self.negative_audio)) if v is not None}

    def validate(self) -> None:
        """ValueError for a query that cannot be built, before any work is done."""
        if not self.positives():
            raise ValueError("No query: give at least one of --text, --image, --audio")
        if self.negatives() and not self.positives():
            raise ValueError("A negative query needs a positive query")
        for name, value in (("text", self.text), ("negative text", self.negative_text)):
            if value is not None and not value.strip():
                raise ValueError(f"The {name} query is empty")
        for name, path in (("image", self.image), ("audio", self.audio),
                           ("negative image", self.negative_image),
                           ("negative audio", self.negative_audio)):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"The {name} query file does not exist: {path}")
        if not 0.0 <= self.alpha <= MAX_ALPHA or math.isnan(self.alpha):
            raise ValueError(f"alpha must be in [0, {MAX_ALPHA:g}], got {self.alpha}")
        unknown = set(self.weights) - set(self.positives())
        if unknown:
            raise ValueError(f"Weights given for modalities without a query: {sorted(unknown)}")
        if self.query_aug and self.text is None:
            raise ValueError("Query-Aug applies to a text query: give --text")


def _embed(encoder: QueryEncoder, modality: str, value: str) -> torch.Tensor:
    if modality == "text":
        return encoder.embed_text([value])[0]
    if modality == "image":
        return encoder.embed_image([value])[0]
    wav, sr = read_audio(value)
    wav = torch.from_numpy(wav.mean(0, keepdims=True))
    if sr != encoder.sample_rate:
        import torchaudio.functional as AF
        wav = AF.resample(wav, sr, encoder.sample_rate)
    if not wav.abs().max() > 0:
        raise ValueError(f"The audio query {value} is silent")
    return encoder.embed_audio(wav)[0]


def build_query(encoder: QueryEncoder, spec: QuerySpec,
                query_set: Optional[QuerySet] = None) -> tuple:
    """The query vector ``[dim]`` for ``spec`` and a JSON-ready record of how it was built."""
    spec.validate()
    for modality in set(spec.positives()) | set(spec.negatives()):
        if not encoder.supports(modality):
            raise ValueError(f"The query encoder has no {modality} encoder; it embeds "
                             f"{list(encoder.modalities)}")
    record = {"query": asdict(spec)}
    positives = {m: _embed(encoder, m, v) for m, v in spec.positives().items()}
    if spec.query_aug:
        if query_set is None:
            raise ValueError("Query-Aug needs a Query-Set (--query-set PATH)")
        _, labels = query_set.nearest(positives["text"][None])
        positives["text"] = query_set.augment(positives["text"][None])[0]
        record["query_aug_label"] = labels[0]
    q = compose_query(positives, spec.weights or None)
    negatives = {m: _embed(encoder, m, v) for m, v in spec.negatives().items()}
    if negatives:
        q = negative_query(q, compose_query(negatives), spec.alpha)
    return q, record


def check_input_file(path: Path) -> sf._SoundFileInfo:
    """soundfile info of a mixture, or ValueError/FileNotFoundError saying what is wrong."""
    if not path.is_file():
        raise FileNotFoundError(f"No audio file at {path}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"Cannot read audio file {path}: {err}") from None
    if info.frames == 0:
        raise ValueError(f"Audio file {path} is empty")
    return info


@torch.no_grad()
def separate_file(model, path: Path, query: torch.Tensor, out_path: Path, mono: bool = False,
                  window: int = 65536, batch_windows: Optional[int] = None,
                  overlap: float = 0.25, progress=None) -> dict:
    """Stream ``path`` through ``model`` and write the estimate to ``out_path`` atomically.

    Other sample rates are resampled to the model's and back; channels are separated one by
    one (or averaged first with ``mono``); the estimate has the input's rate, length and
    channel count (1 with ``mono``), as 32-bit float WAV. ``progress`` is called with the
    number of input samples consumed. ``batch_windows`` defaults to 8 on a GPU and 1 on
    the CPU (where a bigger batch buys no speed and costs memory). Returns facts for the
    sidecar.
    """
    if batch_windows is None:
        batch_windows = 8 if next(model.parameters()).is_cuda else 1
    info = check_input_file(path)
    sr, model_sr, frames = info.samplerate, int(model.sample_rate), info.frames
    total = math.ceil(frames * model_sr / sr)
    peak = [0.0]
    start = time.perf_counter()

    def watched(blocks):
        for b in blocks:
            peak[0] = max(peak[0], float(np.abs(b).max()))
            if progress is not None:
                progress(b.shape[-1])
            yield b

    with sf.SoundFile(str(path)) as f, atomic_write(out_path) as tmp:
        channels = 1 if mono else f.channels
        blocks = resample_stream(watched(read_blocks(f, mono=mono)), sr, model_sr, frames)
        est = separate_stream(blocks, total, model, query, window, batch_windows, overlap)
        est = resample_stream(est, model_sr, sr, total)
        written = 0
        with sf.SoundFile(tmp, "w", samplerate=sr, channels=channels, format="WAV",
                          subtype="FLOAT") as out:
            for block in est:
                block = block[:, :frames - written]
                out.write(block.T)
                written += block.shape[-1]
            if written < frames:
                out.write(np.zeros((frames - written, channels), np.float32))
    if peak[0] == 0.0:
        logging.warning("%s is all zeros: the estimate is silent too", path)
    return {"input": str(path), "output": str(out_path), "sample_rate": sr,
            "channels": channels, "duration_s": frames / sr, "silent_input": peak[0] == 0.0,
            "seconds": time.perf_counter() - start, "window": window, "overlap": overlap}


def write_sidecar(path: Path, record: dict) -> None:
    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1))


def plot_file_spectrograms(mix_path: Path, est_path: Path, png_path: Path,
                           max_seconds: float = 30.0) -> None:
    """PNG of mixture / estimate spectrograms (first channel, first ``max_seconds``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for ax, (title, path) in zip(axes, (("mixture", mix_path), ("estimate", est_path))):
        with sf.SoundFile(str(path)) as f:
            wav = f.read(int(max_seconds * f.samplerate), dtype="float32", always_2d=True)[:, 0]
            sr = f.samplerate
        ax.specgram(wav, NFFT=1024, Fs=sr, noverlap=768, cmap="magma")
        ax.set_title(f"{title}: {Path(path).name}", fontsize=9)
        ax.set_ylabel("Hz")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_write(png_path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def output_paths(mix: Path, out_dir: Path) -> Dict[str, Path]:
    stem = out_dir / f"{mix.stem}_est1"
    return {"wav": stem.with_suffix(".wav"), "json": stem.with_suffix(".json"),
            "png": stem.with_suffix(".png")}


def unique_stems(paths: List[Path]) -> None:
    seen = {}
    for p in paths:
        if p.stem in seen:
            raise ValueError(f"Two inputs share the name {p.stem!r} ({seen[p.stem]}, {p}): "
                             "their outputs would collide")
        seen[p.stem] = p
