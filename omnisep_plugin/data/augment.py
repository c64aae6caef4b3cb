"""Augmentation for mixtures of real recordings: levels, EQ, speed, rooms, band limits, backgrounds.

Real recordings differ from a clean corpus in level, colour, room and bandwidth, and never
come without a background. :class:`MixtureAugment` draws, for each source of a training
mixture, a speed change (off by default: a resampling that moves pitch and spectral
envelope together, as another sample set of the same instrument would), a random equaliser (peaking bands and a shelf: Audio-EQ-Cookbook biquads run by
``scipy.signal.sosfilt``),
a simulated room (one of a bank of 256 seeded synthetic impulse responses from Lhotse's
``FastRandomRIRGenerator``, T60 up to ``max_t60``), a sample-rate round trip through a lower rate (telephone / old-recording
bandwidth), and a level relative to the first source (``level_db``, default -5 to +5 dB on
the active RMS); then it adds a background (coloured noise or a music bed) under the sum.

Each transform is applied to a *source*, so the separation target is the source as heard in
the mixture (its room and colour included): ``mixture == sources.sum(0) + background``.
All draws come from the ``random.Random`` passed in, so a batch is a function of its seed.
"""
import functools
import json
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

SAMPLE_RATE = 16000


@dataclass
class MixtureAugment:
    """Random per-source and per-mixture transforms (see the module docstring).

    Args:
        level_db: each source's active RMS is set to ``ref_db + U(level_db)`` (the first
            source's offset is 0 when ``relative_to_first``).
        eq_prob / eq_gain_db / eq_bands: chance of a random equaliser, its band gains and
            the number of peaking bands (plus a random low or high shelf).
        speed_prob / speed_range: chance of a speed change and its factor's range (1.1: 10 %
            faster and higher); the source keeps its length (cut, or padded with silence).
        reverb_prob / max_t60: chance of a simulated room and its longest T60 (s).
        bandlimit_prob / bandlimit_rates: chance of a round trip through one of these rates.
        noise_prob / noise_snr_db: chance of a coloured-noise background and its SNR against
            the sum of the sources; music_prob / music_snr_db / backgrounds: the same for a
            crop of one of the ``backgrounds`` files (a list of paths, or a JSON file with
            ``{"files": [...]}``).
        peak: the mixture (and with it every source) is scaled down to this peak if louder.
    """
    level_db: Tuple[float, float] = (-5.0, 5.0)
    ref_db: float = -23.0
    relative_to_first: bool = True
    eq_prob: float = 0.5
    eq_gain_db: Tuple[float, float] = (-9.0, 9.0)
    eq_bands: Tuple[int, int] = (1, 3)
    speed_prob: float = 0.0
    speed_range: Tuple[float, float] = (0.9, 1.1)
    reverb_prob: float = 0.3
    max_t60: float = 0.8
    bandlimit_prob: float = 0.15
    bandlimit_rates: Tuple[int, ...] = (8000, 10000, 12000)   # small ratios to 16 kHz: cheap kernels
    noise_prob: float = 0.5
    noise_snr_db: Tuple[float, float] = (15.0, 40.0)
    music_prob: float = 0.15
    music_snr_db: Tuple[float, float] = (10.0, 25.0)
    backgrounds: List[str] = field(default_factory=list)
    peak: float = 0.99
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self):
        if isinstance(self.backgrounds, (str, Path)):
            data = json.loads(Path(self.backgrounds).read_text())
            self.backgrounds = list(data["files"] if isinstance(data, dict) else data)
        missing = [p for p in self.backgrounds if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"Background files not found: {missing[:3]}")
        for name in ("level_db", "eq_gain_db", "noise_snr_db", "music_snr_db", "speed_range"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: low {lo} above high {hi}")
        if not 0.5 <= self.speed_range[0] <= self.speed_range[1] <= 2.0:
            raise ValueError(f"speed_range must lie within [0.5, 2.0], got {self.speed_range}")
        for name in ("eq_prob", "speed_prob", "reverb_prob", "bandlimit_prob", "noise_prob", "music_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, conf: Optional[dict]) -> Optional["MixtureAugment"]:
        """``None`` for ``None``/``{}`` (no augmentation); unknown keys are refused."""
        if not conf:
            return None
        known = {f.name for f in fields(cls)}
        unknown = set(conf) - known
        if unknown:
            raise ValueError(f"Unknown augmentation settings {sorted(unknown)}; known: {sorted(known)}")
        conf = {k: tuple(v) if isinstance(v, list) and k != "backgrounds" else v for k, v in conf.items()}
        return cls(**conf)

    # ------------------------------------------------------------------ per source
    def source(self, wav: np.ndarray, rng: random.Random) -> np.ndarray:
        """Speed, EQ, room and band limit, each with its probability; same length out."""
        if self.speed_prob and rng.random() < self.speed_prob:
            wav = change_speed(wav, rng.uniform(*self.speed_range), self.sample_rate)
        if rng.random() < self.eq_prob:
            wav = random_eq(wav, rng, self.eq_gain_db, self.eq_bands, self.sample_rate)
        if rng.random() < self.reverb_prob:
            wav = random_room(wav, rng, self.max_t60, self.sample_rate)
        if rng.random() < self.bandlimit_prob:
            wav = band_limit(wav, rng.choice(self.bandlimit_rates), self.sample_rate)
        return wav.astype(np.float32)

    # ------------------------------------------------------------------ whole mixture
    def mix(self, sources: np.ndarray, rng: random.Random) -> Tuple[np.ndarray, np.ndarray]:
        """``(mixture [T], sources [n, T])`` from clean ``sources [n, T]`` (rows of zeros stay
        zeros: absent slots). Levels, transforms, background, peak limit."""
        out = np.zeros_like(sources, dtype=np.float32)
        for i, wav in enumerate(sources):
            if not np.any(wav):
                continue
            wav = self.source(wav, rng)
            offset = 0.0 if (i == 0 and self.relative_to_first) else rng.uniform(*self.level_db)
            out[i] = set_level(wav, self.ref_db + offset)
        total = out.sum(0)
        background = np.zeros_like(total)
        if rng.random() < self.noise_prob:
            background += scaled_to_snr(coloured_noise(len(total), rng), total,
                                        rng.uniform(*self.noise_snr_db))
        if self.backgrounds and rng.random() < self.music_prob:
            background += scaled_to_snr(read_crop(rng.choice(self.backgrounds), len(total), rng,
                                                  self.sample_rate),
                                        total, rng.uniform(*self.music_snr_db))
        mixture = total + background
        top = float(np.abs(mixture).max())
        if top > self.peak:
            mixture, out = mixture * (self.peak / top), out * (self.peak / top)
        return mixture.astype(np.float32), out


# ---------------------------------------------------------------------- transforms

def active_rms(wav: np.ndarray, frame: int = 400) -> float:
    """RMS of the frames within 40 dB of the loudest one (0 for silence)."""
    n = max(1, len(wav) // frame)
    energy = (np.resize(wav[:n * frame], n * frame).reshape(n, -1) ** 2).mean(1)
    if energy.max() <= 0:
        return 0.0
    return float(np.sqrt(energy[energy > energy.max() * 1e-4].mean()))


def set_level(wav: np.ndarray, db: float) -> np.ndarray:
    """``wav`` scaled so that its active RMS is ``db`` dB re full scale.

    Example:
        >>> x = np.full(16000, 0.5, np.float32)
        >>> round(float(20 * np.log10(active_rms(set_level(x, -20.0)))), 3)
        -20.0
    """
    rms = active_rms(wav)
    return wav if rms == 0 else (wav * (10 ** (db / 20) / rms)).astype(np.float32)


def scaled_to_snr(noise: np.ndarray, signal: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled so that ``signal`` is ``snr_db`` above it (plain RMS)."""
    ps, pn = float(np.mean(signal ** 2)), float(np.mean(noise ** 2))
    if ps == 0 or pn == 0:
        return np.zeros_like(signal)
    return (noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))).astype(np.float32)


def coloured_noise(n: int, rng: random.Random) -> np.ndarray:
    """White, pink, brown or blue-ish noise (a random spectral slope), unit RMS."""
    gen = np.random.default_rng(rng.getrandbits(63))
    spec = np.fft.rfft(gen.standard_normal(n))
    slope = rng.choice([0.0, -0.5, -1.0, 0.5])   # power ~ f^(2*slope): white, pink, brown, blue
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spec * f ** slope, n)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)


def _rbj_biquad(kind: str, freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One second-order section ``[b0, b1, b2, 1, a1, a2]`` of the Audio EQ Cookbook
    (R. Bristow-Johnson): ``peak``, ``lowshelf`` or ``highshelf`` (shelf slope 1 when q=0.707)."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * freq / sample_rate
    cw, alpha = np.cos(w), np.sin(w) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    else:
        sa = 2 * np.sqrt(a) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [a * ((a + 1) - sign * (a - 1) * cw + sa), sign * 2 * a * ((a - 1) - sign * (a + 1) * cw),
             a * ((a + 1) - sign * (a - 1) * cw - sa)]
        den = [(a + 1) + sign * (a - 1) * cw + sa, -sign * 2 * ((a - 1) + sign * (a + 1) * cw),
               (a + 1) + sign * (a - 1) * cw - sa]
    return np.array(b + den) / den[0]


def random_eq(wav: np.ndarray, rng: random.Random, gain_db=(-9.0, 9.0), bands=(1, 3),
              sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Random peaking bands (log-uniform 100 Hz-6 kHz, Q 0.5-3) and a low or high shelf,
    as one cascade of biquads (``scipy.signal.sosfilt``)."""
    from scipy.signal import sosfilt

    sections = [_rbj_biquad("peak", float(np.exp(rng.uniform(np.log(100), np.log(6000)))),
                            rng.uniform(*gain_db), rng.uniform(0.5, 3.0), sample_rate)
                for _ in range(rng.randint(*bands))]
    if rng.random() < 0.5:
        sections.append(_rbj_biquad("lowshelf", rng.uniform(80, 300), rng.uniform(*gain_db), 0.707, sample_rate))
    else:
        sections.append(_rbj_biquad("highshelf", rng.uniform(2500, 6000), rng.uniform(*gain_db), 0.707,
                                    sample_rate))
    y = sosfilt(np.stack(sections), wav).astype(np.float32)
    return y if np.all(np.isfinite(y)) else wav


#: Rooms are drawn from a bank of this many seeded impulse responses (each made once per process).
N_ROOMS = 256


@functools.lru_cache(maxsize=N_ROOMS)
def room_impulse_response(seed: int, max_t60: float = 0.8, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The synthetic room impulse response number ``seed`` (Lhotse's ``FastRandomRIRGenerator``:
    T60 up to ``max_t60``), the same in every process; cached, since one costs ~0.1 s."""
    from lhotse.augmentation.utils import FastRandomRIRGenerator
    import torch

    with torch.random.fork_rng(devices=[]):  # the generator also draws from torch's global RNG
        torch.manual_seed(seed)
        return FastRandomRIRGenerator(sr=sample_rate, max_T60=max_t60, room_seed=seed,
                                      source_seed=seed + 1)(nsource=1)[0]


def random_room(wav: np.ndarray, rng: random.Random, max_t60: float = 0.8,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``wav`` in a simulated room (one of :data:`N_ROOMS` seeded impulse responses), same
    length and active level as the dry input."""
    from scipy.signal import fftconvolve

    rir = room_impulse_response(rng.randrange(N_ROOMS), max_t60, sample_rate)
    wet = fftconvolve(wav, rir)[:len(wav)]
    rms = active_rms(wav)
    return set_level(wet, 20 * np.log10(rms)) if rms > 0 else wav


def change_speed(wav: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``wav`` played ``factor`` times faster (pitch and spectral envelope up by ``factor``),
    at the same length: cut, or padded with silence at the end. The factor is rounded to
    1/100 so that the resampling kernel stays small (torchaudio's polyphase resampler).

    Example:
        >>> t = np.arange(16000) / 16000
        >>> y = change_speed(np.sin(2 * np.pi * 440 * t).astype(np.float32), 1.1)
        >>> peak_hz = np.argmax(np.abs(np.fft.rfft(y[:14000]))) * 16000 / 14000
        >>> bool(abs(peak_hz - 1.1 * 440) < 2)   # within one bin of 484 Hz
        True
    """
    import torch
    import torchaudio.functional as AF

    step = sample_rate // 100
    orig = int(round(factor * 100)) * step
    if orig == sample_rate:
        return wav
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    y = AF.resample(x, orig, sample_rate).numpy()
    out = np.zeros_like(wav)
    out[:min(len(wav), len(y))] = y[:len(wav)]
    return out


def band_limit(wav: np.ndarray, rate: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A round trip through ``rate`` (everything above ``rate / 2`` is lost)."""
    import torch
    import torchaudio.functional as AF

    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    y = AF.resample(AF.resample(x, sample_rate, rate), rate, sample_rate)
    out = np.zeros_like(wav)
    out[:min(len(wav), len(y))] = y.numpy()[:len(wav)]
    return out


def read_crop(path: str, n: int, rng: random.Random, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``n`` samples at ``sample_rate`` from a random place in a sound file (mono)."""
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    info = sf.info(path)
    need = int(np.ceil(n * info.samplerate / sample_rate)) + 16
    start = rng.randint(0, max(0, info.frames - need))
    wav, sr = sf.read(path, start=start, frames=need, dtype="float32", always_2d=True)
    wav = wav.mean(1)
    if sr != sample_rate:
        wav = AF.resample(torch.from_numpy(wav), sr, sample_rate).numpy()
    out = np.zeros(n, np.float32)
    out[:min(n, len(wav))] = wav[:n]
    return out


def relative_levels_db(sources: Sequence[np.ndarray]) -> List[float]:
    """Active-RMS level of each non-silent source relative to the first, in dB."""
    ref = active_rms(sources[0])
    return [20 * np.log10(active_rms(s) / ref) for s in sources if np.any(s)]
