"""Every default of the package, once (dataclasses); everything else reads them from here.

- :data:`AUDIO`: the model's sampling rate and the 4-s crop (65535 samples at 16 kHz, 256
  STFT frames at hop 256, a multiple of the U-Net's 2^7).
- :data:`SEPARATE`: inference: window and overlap (chosen by
  ``benchmarks/separate_windows.py``, figures in docs/benchmarks.md), backend,
  negative-query strength and variant, the composed query's weights (the official code's
  2, 2, 1).
- :func:`train_defaults`: the training configuration's sections (the paper's values;
  ``recipes/*/conf/train.yaml`` restate them with comments and ``omnisep train`` starts
  from these).

Example:
    >>> train_defaults()["data"]["n_samples"] == AUDIO.crop_samples
    True
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple, Union


@dataclass(frozen=True)
class AudioConfig:
    """The audio the model sees, and how training / test mixtures are made of it."""
    sample_rate: int = 16000
    crop_samples: int = 65535
    gain_range: Tuple[float, float] = (0.5, 1.5)


@dataclass(frozen=True)
class SeparateConfig:
    """Inference defaults (``omnisep separate``, ``separate-test``, ``model.separate``)."""
    window: int = 131071  # 512 STFT frames at hop 256 (4 x 2^7): 8.2 s, no U-Net padding
    overlap: float = 0.125  # 1.0-s cross-fades; 1.14x the frames of one pass
    backend: str = "auto"
    onnx_min_seconds: float = 60.0
    alpha: float = 0.5
    negative_variant: str = "omnisep"
    compose_weights: Tuple[Tuple[str, float], ...] = (("text", 2.0), ("image", 2.0), ("audio", 1.0))
    query_aug_temperature: float = 0.0
    # Audio prototypes (``omnisep separate --prototypes``): a text query is composed with the
    # audio prototype of its nearest label only at this cosine or above (a text far from
    # every training label keeps its own embedding alone).
    prototype_min_similarity: float = 0.5
    # Audio labels (``omnisep separate --audio-label``): an audio example is composed with the
    # text of its nearest label only at this cosine or above (an example far from every
    # training label keeps its own embedding alone; 0.3 costs 0.07 dB against no threshold
    # on the dev mixtures of recipes/omni, recipes/omni/local/choose_audio_label.py).
    audio_label_min_similarity: float = 0.3
    # A text query whose nearest label of the model's Query-Set is below this cosine is far
    # from everything the model was trained on: ``omnisep separate`` says so (MiniLM puts
    # "dog barking" at 0.21 from the default model's nearest instrument, "a violin playing"
    # at 0.88 from "violin"; the same value as prototype_min_similarity, set apart).
    vocabulary_min_similarity: float = 0.5
    # Residual negatives (``omnisep separate --residual-negative``, :mod:`omnisep_plugin.query.residual`):
    # a single query's second pass removes the embedding of its first pass's residual with
    # this alpha (eq. 4; chosen on recipes/omni's dev mixtures,
    # recipes/omni/local/choose_residual_negative.py), unless the residual is this far below
    # the mixture (the estimate is all of it).
    residual_alpha: float = 0.5
    residual_min_energy_db: float = -40.0

    @property
    def compose_weights_dict(self) -> Dict[str, float]:
        return dict(self.compose_weights)


#: What runs the mask network at inference (:mod:`omnisep_plugin.separation.backends`).
BACKENDS = ("eager", "torchscript", "onnxruntime")


@dataclass(frozen=True)
class PresenceConfig:
    """When ``omnisep separate`` warns "target likely absent" (:mod:`omnisep_plugin.query.presence`).

    Chosen with ``omnisep eval-presence --model instruments`` (the instrument specialist) on its dev pairs (seeds 8,000,000+;
    rates on the test pairs in docs/results.md): below ``min_similarity`` (cosine of the
    query and the estimate's audio embedding; only with an encoder that embeds audio) or
    below ``min_energy_db`` (estimate-to-mixture energy), the query is flagged."""
    min_similarity: float = 0.25
    min_energy_db: float = -30.0
    max_seconds: float = 60.0


AUDIO = AudioConfig()
SEPARATE = SeparateConfig()
PRESENCE = PresenceConfig()


@dataclass
class QueryConf:
    modalities: List[str] = field(default_factory=lambda: ["text", "image", "audio"])
    mixup_mode: str = "mixup"
    per_example: bool = True


@dataclass
class DataConf:
    batch_size: int = 128
    n_src: int = 2
    n_samples: int = AUDIO.crop_samples
    gain_range: List[float] = field(default_factory=lambda: list(AUDIO.gain_range))
    divide_by_n: bool = False
    num_workers: int = 2
    seed: int = 0
    min_src: Optional[int] = None           # fewer real sources than n_src: absent targets
    max_src: Optional[int] = None           # at most this many real sources (None: n_src)
    balance: Optional[str] = None           # "label": class-balanced first sources
    augment: Optional[dict] = None          # MixtureAugment settings (None: plain gains)
    class_audio_query: float = 0.0          # chance of a class audio query (mean of clips)
    class_audio_clips: int = 5              # ... of 1 to this many clips of the label
    similar_partners: float = 0.0           # chance of a partner of a like-named class
    similar_temperature: float = 0.1        # ... drawn with weights exp(cosine / this)
    mix_in: Optional[List[dict]] = None     # other corpora: [{cuts, weight, <their own settings>}]


@dataclass
class OptimConf:
    lr: float = 1e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 5000
    decay_steps: Union[int, List[int]] = 100000   # a list: x decay_factor at each step
    decay_factor: float = 0.1
    mask_target: str = "binary"             # eq. 3; "ratio": min(|S| / |X|, 1) (losses.py)
    wave_loss_weight: float = 0.0           # + this x the present sources' negative SNR (dB)


@dataclass
class TrainingConf:
    max_steps: int = 200000                 # optimiser steps
    max_minutes: Optional[float] = None     # total training time, counted across resumes
    decay_at_minutes: Optional[float] = None  # lr x optim.decay_factor once, after this much
                                            # training time (a run bounded by max_minutes)
    grad_clip: float = 1.0
    precision: str = "auto"                 # auto: bf16-mixed where the hardware has bf16
    val_every: int = 5000
    ckpt_every: int = 5000
    seed: int = 0
    keep_freed_memory: bool = True          # glibc keeps freed pages (omnisep_plugin.allocator)
    # Scale (Lightning Trainer arguments): data.batch_size is per device and micro-batch, so
    # one optimiser step sees batch_size x devices x num_nodes x accumulate_grad_batches.
    accelerator: str = "auto"               # auto, cpu, gpu
    devices: Union[int, str, List[int]] = "auto"
    num_nodes: int = 1
    strategy: str = "auto"                  # ddp for several devices or nodes
    accumulate_grad_batches: int = 1


@dataclass
class EvalConf:
    alpha: float = SEPARATE.alpha
    negative_variant: str = SEPARATE.negative_variant
    compose_weights: Dict[str, float] = field(default_factory=lambda: SEPARATE.compose_weights_dict)


def train_defaults() -> Dict[str, dict]:
    """A fresh copy of the training configuration's defaults, section -> values."""
    return {"model": {}, "query": asdict(QueryConf()), "data": asdict(DataConf()),
            "optim": asdict(OptimConf()), "training": asdict(TrainingConf()),
            "eval": asdict(EvalConf())}
