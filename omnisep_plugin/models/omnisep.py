"""OmniSep: query-conditioned sound separation as an Asteroid model."""
import copy
import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from asteroid.models.base_models import BaseModel
from torch import nn

from ..losses import (MASK_TARGETS, bce_weight, check_mask_target, multisrc_weighted_bce,
                      present_source_neg_snr)
from ..masknn.unet import AudioUNet, default_architecture
from ..query.ops import NEGATIVE_VARIANTS, negative_query
from ..registry import PRETRAINED, register_pretrained  # noqa: F401  (old import path)
from ..utils import load_package
from .spectral import STFT, LogFrequencyWarp

_EPS = 1e-10
_QUERY_ACTIVATIONS = ("sigmoid", "none")
#: buffers of the mask-temperature table (:meth:`OmniSep.set_mask_temperatures`)
TEMPERATURE_BUFFERS = ("temperature_keys", "temperature_values")


def nearest_key(query: torch.Tensor, unit_keys: torch.Tensor) -> torch.Tensor:
    """Index of the key nearest each query by cosine: ``[..., dim]``, L2-normalised keys
    ``[L, dim]`` -> ``[...]`` (the routed model's expert and the mask temperature's label)."""
    return (F.normalize(query.float(), dim=-1) @ unit_keys.float().T).argmax(dim=-1)


def with_plain_versions(conf: dict) -> dict:
    """An Asteroid package dict with plain-string software versions (loadable with
    ``weights_only=True``) and this package's version added."""
    from .. import __version__
    conf["infos"]["software_versions"] = {
        k: str(v) for k, v in conf["infos"]["software_versions"].items()}
    conf["infos"]["software_versions"]["omnisep_plugin_version"] = __version__
    return conf


def resolve_package(conf):
    """A model package: ``conf`` itself (a dict), the file at a local path, or the file of a
    shipped model's name (:data:`~omnisep_plugin.registry.PRETRAINED`); never downloads."""
    if isinstance(conf, str) and not os.path.exists(conf) and conf in PRETRAINED:
        conf = PRETRAINED[conf]()
    if isinstance(conf, (str, os.PathLike)):
        conf = load_package(conf, "OmniSep model file")
    return conf


def check_package(conf, model_name: str) -> None:
    """Refuse a package that is not ``model_name``'s or lacks valid ``model_args`` /
    ``state_dict`` entries (``ValueError`` naming what is wrong)."""
    if not isinstance(conf, dict) or conf.get("model_name") != model_name:
        name = conf.get("model_name") if isinstance(conf, dict) else type(conf).__name__
        article = "an" if model_name[0] in "AEIOU" else "a"
        raise ValueError(f"Not {article} {model_name} package (model_name={name!r})")
    for key in ("model_args", "state_dict"):
        if not isinstance(conf.get(key), dict):
            raise ValueError(f"{model_name} package without a valid {key!r} entry")


def incompatible_package(conf: dict, model_name: str, err: Exception) -> ValueError:
    """The error for a package whose arguments or weights do not fit the model."""
    versions = conf.get("infos", {}).get("software_versions", {})
    return ValueError(f"Incompatible {model_name} package (written by omnisep-plugin "
                      f"{versions.get('omnisep_plugin_version', '?')}): "
                      f"{str(err).splitlines()[0][:300]}")


class OmniSep(BaseModel):
    """OmniSep (Cheng et al., ICLR 2025): separate the source a query describes.

    The mixture's STFT magnitude goes through CLIPSep's audio U-Net, which gives ``k``
    intermediate masks ``M``; a query embedding ``Q`` (from a frozen multimodal encoder)
    is projected to ``q = sigmoid(Linear(Q))`` and the final mask is
    ``sigmoid(sum_j w_j q_j M_j + b)`` (eq. 2). The mask multiplies the mixture magnitude
    and the mixture phase is reused for the inverse STFT.

    Args:
        query_dim: dimension d of the query embeddings (1024 for ImageBind-huge).
        n_masks: number k of intermediate masks (32).
        unet_widths: U-Net channels per level, outermost first (CLIPSep: 64, 128, 256,
            512, 512, 512, 512). ``None`` uses :func:`default_architecture` ``"clipsep7"``.
        n_fft, hop_length, win_length: STFT settings (1024, 256, 1024).
        log_freq_bins: number of log-spaced frequency bins the U-Net sees (256, CLIPSep's
            warp); 0 keeps the linear bins.
        query_activation: ``"sigmoid"`` (CLIPSep / OmniSep) or ``"none"`` on ``Linear(Q)``.
        mask_threshold: the ground-truth mask is ``|S| > mask_threshold * |X|`` (0.5).
        sample_rate: sampling rate of the audio the model expects (16000).

    Separation (not training) may soften or sharpen each query's mask,
    ``sigmoid(z / T)``, with the temperature ``T`` of the query's nearest label in a table
    the package carries (:meth:`set_mask_temperatures`; none: ``T = 1``).

    Shape:
        - mixture: ``[batch, time]`` or ``[batch, 1, time]`` (or ``[time]``).
        - query: ``[batch, dim]`` (one source) or ``[batch, n_src, dim]`` (or ``[dim]``).
        - output: ``[batch, n_src, time]`` (``[n_src, time]`` for a 1-D mixture).

    References:
        Cheng et al., "OmniSep: Unified Omni-Modality Sound Separation with Query-Mixup",
        ICLR 2025. Dong et al., "CLIPSep: Learning Text-queried Sound Separation with Noisy
        Unlabeled Videos", ICLR 2023.
    """

    def __init__(
        self,
        query_dim: int = 1024,
        n_masks: int = 32,
        unet_widths: Optional[Sequence[int]] = None,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        log_freq_bins: int = 256,
        query_activation: str = "sigmoid",
        mask_threshold: float = 0.5,
        sample_rate: float = 16000,
    ):
        super().__init__(sample_rate=sample_rate, in_channels=1)
        if query_dim < 1 or n_masks < 1:
            raise ValueError(f"query_dim and n_masks must be positive, got {query_dim}, {n_masks}")
        if query_activation not in _QUERY_ACTIVATIONS:
            raise ValueError(f"query_activation must be one of {_QUERY_ACTIVATIONS}, "
                             f"got {query_activation!r}")
        if log_freq_bins < 0:
            raise ValueError(f"log_freq_bins must be >= 0 (0 disables the warp), got {log_freq_bins}")
        if unet_widths is None:
            unet_widths = default_architecture("clipsep7")["widths"]
        self.query_dim, self.n_masks = int(query_dim), int(n_masks)
        self.query_activation = query_activation
        self.mask_threshold = float(mask_threshold)
        self.stft = STFT(n_fft, hop_length, win_length)
        self.log_freq_bins = int(log_freq_bins)
        self.warp = LogFrequencyWarp(self.stft.n_freq, log_freq_bins) if log_freq_bins else None
        self.masker = AudioUNet(in_channels=1, out_channels=n_masks, widths=unet_widths)
        self.query_proj = nn.Linear(query_dim, n_masks)
        self.mask_scale = nn.Parameter(torch.ones(n_masks))
        self.mask_bias = nn.Parameter(torch.zeros(1))
        # the mask-temperature table: label embeddings [L, dim] and their temperatures [L]
        self.register_buffer("temperature_keys", torch.zeros(0, self.query_dim))
        self.register_buffer("temperature_values", torch.zeros(0))

    # ------------------------------------------------------------------ steps
    def forward_encoder(self, wav: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Complex STFT and magnitude of the mixture.

        Args:
            wav: ``[batch, time]``.

        Returns:
            spec: complex ``[batch, 513, frames]``; mag: ``[batch, 1, 513, frames]``.
        """
        spec = self.stft(wav)
        return spec, spec.abs().unsqueeze(1)

    def to_mask_domain(self, mag: torch.Tensor) -> torch.Tensor:
        """Linear-frequency ``[B, C, 513, T]`` -> the U-Net's frequency axis ``[B, C, F', T]``."""
        return self.warp.to_log(mag) if self.warp is not None else mag

    def forward_masker(self, mag: torch.Tensor) -> torch.Tensor:
        """U-Net on ``log(|X| + 1e-10)`` in the warped domain.

        Args:
            mag: mixture magnitude ``[batch, 1, 513, frames]``.

        Returns:
            intermediate masks ``[batch, k, F', frames]`` (no activation).
        """
        feats = self.masker_input(mag)
        return self.masker(feats)[..., :self.mask_bins, :mag.shape[-1]]

    @property
    def mask_bins(self) -> int:
        """Frequency bins F' of the masks (the warp's log bins, or the 513 linear bins)."""
        return self.log_freq_bins or self.stft.n_freq

    def masker_input(self, mag: torch.Tensor) -> torch.Tensor:
        """The U-Net's input: ``log(|X| + 1e-10)`` warped, replicate-padded to multiples of
        :attr:`AudioUNet.size_multiple`: ``[batch, 1, 513, T]`` -> ``[batch, 1, F'', T'']``."""
        feats = torch.log(self.to_mask_domain(mag) + _EPS)
        m = self.masker.size_multiple
        pad_f, pad_t = -feats.shape[-2] % m, -feats.shape[-1] % m
        if pad_f or pad_t:
            feats = F.pad(feats, (0, pad_t, 0, pad_f), mode="replicate")
        return feats

    def apply_query(self, masks: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Mask logits of eq. (2): ``z_i = sum_j w_j q_ij M_j + b``, ``q_i = sigmoid(Linear(Q_i))``.

        Args:
            masks: ``[batch, k, F', T]``; query: ``[batch, n_src, dim]``.

        Returns:
            logits ``[batch, n_src, F', T]`` (the mask is their sigmoid).
        """
        q = self.query_proj(query.to(masks.dtype))
        if self.query_activation == "sigmoid":
            q = torch.sigmoid(q)
        return torch.einsum("bnk,bkft->bnft", q * self.mask_scale, masks) + self.mask_bias

    def set_mask_temperatures(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Give each query's mask the temperature of its nearest key at separation,
        ``sigmoid(logits / T)`` (:meth:`temper`); empty tensors remove the table.

        Args:
            keys: ``[L, dim]`` embeddings (e.g. the Query-Set's label texts; cosine
                similarity picks the nearest); values: ``[L]`` temperatures, > 0.
        """
        keys, values = torch.as_tensor(keys).float(), torch.as_tensor(values).float()
        if keys.dim() != 2 or keys.shape[-1] != self.query_dim or values.shape != keys.shape[:1]:
            raise ValueError(f"Mask temperatures need keys [L, {self.query_dim}] and values [L], "
                             f"got {tuple(keys.shape)} and {tuple(values.shape)}")
        if not bool((values > 0).all()):
            raise ValueError("Mask temperatures must be positive")
        device = self.mask_bias.device
        self.temperature_keys = F.normalize(keys, dim=-1).to(device)
        self.temperature_values = values.to(device)

    def clear_mask_temperatures(self) -> None:
        """Remove the mask-temperature table (every mask ``sigmoid(logits)``)."""
        self.set_mask_temperatures(torch.zeros(0, self.query_dim), torch.zeros(0))

    def temper(self, logits: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``logits [batch, n, F', T]`` divided by the temperature of each query's
        (``[batch, n, dim]``) nearest key; as they are without a table."""
        if not len(self.temperature_values):
            return logits
        temp = self.temperature_values[nearest_key(query, self.temperature_keys)]  # [batch, n]
        return logits / temp[..., None, None].to(logits.dtype)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # A package written without a mask-temperature table loads with none; one with a
        # table sizes this model's to it.
        for name in TEMPERATURE_BUFFERS:
            key, own = prefix + name, getattr(self, name)
            if key in state_dict:
                setattr(self, name, own.new_empty(state_dict[key].shape))
            else:
                state_dict[key] = own
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward_decoder(self, mask: torch.Tensor, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Mask the mixture magnitude, keep the mixture phase, inverse STFT.

        Args:
            mask: soft masks ``[batch, n_src, F', T]`` in [0, 1]; spec: complex
                ``[batch, 513, T]``; length: output samples.

        Returns:
            ``[batch, n_src, length]``.
        """
        if self.warp is not None:
            mask = self.warp.to_linear(mask.float())
        masked = torch.view_as_real(spec).unsqueeze(1) * mask.float().unsqueeze(-1)
        return self.stft.inverse(torch.view_as_complex(masked), length)

    # ---------------------------------------------------------------- forward
    def forward(self, wav: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Separate the sources that ``query`` describes (see the class docstring for shapes)."""
        wav, query, was_1d = self._check_inputs(wav, query)
        length = wav.shape[-1]
        min_len = self.stft.n_fft // 2 + 1  # reflect padding needs more samples than this
        if length < min_len:
            wav = F.pad(wav, (0, min_len - length))
        spec, mag = self.forward_encoder(wav)
        logits = self.apply_query(self.forward_masker(mag), query)
        est = self.forward_decoder(torch.sigmoid(self.temper(logits, query)), spec,
                                   wav.shape[-1])[..., :length]
        return est[0] if was_1d else est

    def forward_wav(self, wav: torch.Tensor, query: Optional[torch.Tensor] = None,
                    negative: Optional[torch.Tensor] = None, alpha: float = 0.0,
                    negative_variant: str = "omnisep",
                    sample_rate: Optional[float] = None) -> torch.Tensor:
        """Separation with the inference-time query options.

        Args:
            wav: mixture (shapes as :meth:`forward`), at :attr:`sample_rate`.
            query: positive query embedding(s).
            negative: optional negative query, same shape as ``query`` (eq. 4; L2-normalised
                first, as in the official code).
            alpha: negative-query strength (0 disables it; the paper uses 0.5).
            negative_variant: ``omnisep`` ``(1+a)Q - aQ_N``, ``subtract`` or ``interpolate``.
            sample_rate: the mixture's sampling rate, checked against the model's when given.
        """
        if query is None:
            raise ValueError("OmniSep separates what a query describes: pass query=<embedding>"
                             " (asteroid-infer cannot pass one: use omnisep-infer MODEL --files"
                             " ... --text ...)")
        if sample_rate is not None and float(sample_rate) != float(self.sample_rate):
            raise ValueError(
                f"Mixture sampled at {sample_rate} Hz but the model expects {self.sample_rate} Hz;"
                f" resample it first (e.g. separate(..., resample=True) or torchaudio.functional"
                f".resample)")
        query = self._as_tensor(query, "query")
        if negative is not None:
            query = negative_query(query, self._as_tensor(negative, "negative").to(query),
                                   alpha, negative_variant)
        elif negative_variant not in NEGATIVE_VARIANTS:
            raise ValueError(f"Unknown negative-query variant {negative_variant!r}")
        return self(self._as_tensor(wav, "wav"), query)

    def separate(self, wav, output_dir=None, force_overwrite=False, resample=False, **kwargs):
        """Asteroid's ``separate`` with the query as keyword arguments of :meth:`forward_wav`.

        ``wav`` is a tensor, numpy array or audio file path (then ``<name>_est1.wav`` is
        written); e.g. ``model.separate("mix.wav", query=q, resample=True)``. See
        :mod:`omnisep_plugin.separation`.
        """
        from ..separation import separate
        return separate(self, wav, output_dir=output_dir, force_overwrite=force_overwrite,
                        resample=resample, **kwargs)

    # ------------------------------------------------------------- training
    def compute_loss(self, mix: torch.Tensor, sources: torch.Tensor,
                     query: torch.Tensor, target: str = "binary",
                     wave_weight: float = 0.0) -> torch.Tensor:
        """Weighted BCE of eq. (3) between predicted and ground-truth masks, plus, when
        ``wave_weight > 0``, that weight times the mean negative SNR (dB) of the separated
        signals of the present sources (:func:`~omnisep_plugin.losses.present_source_neg_snr`).

        Args:
            mix: ``[batch, time]``; sources: ``[batch, n_src, time]``; query:
                ``[batch, n_src, dim]`` (query ``i`` describes source ``i``).
            target: ``"binary"`` (eq. 3: ``|S| > mask_threshold * |X|``) or ``"ratio"``
                (``min(|S| / |X|, 1)``; :data:`~omnisep_plugin.losses.MASK_TARGETS`).
            wave_weight: weight of the waveform term (0: the paper's loss alone).

        Returns:
            scalar: sum over the n sources of the per-source weighted mean BCE (+ the
            weighted waveform term).
        """
        check_mask_target(target)
        mix, query, _ = self._check_inputs(mix, query)
        if sources.dim() != 3 or sources.shape[0] != mix.shape[0] or \
                sources.shape[1] != query.shape[1] or sources.shape[-1] != mix.shape[-1]:
            raise ValueError(f"sources must be [batch, n_src, time] = [{mix.shape[0]}, "
                             f"{query.shape[1]}, {mix.shape[-1]}], got {tuple(sources.shape)}")
        batch, n_src, length = sources.shape
        if length <= self.stft.n_fft // 2:
            raise ValueError(f"Training clips need more than {self.stft.n_fft // 2} samples, "
                             f"got {length}")
        spec = self.stft(torch.cat([mix[:, None], sources], 1).reshape(-1, length))
        spec = spec.reshape(batch, 1 + n_src, *spec.shape[-2:])  # [batch, 1 + n_src, 513, T]
        lin = spec.abs()
        logits = self.apply_query(self.forward_masker(lin[:, :1]), query)
        mags = self.to_mask_domain(lin)
        mix_mag, src_mag = mags[:, :1], mags[:, 1:]
        truth = MASK_TARGETS[target](src_mag, mix_mag, self.mask_threshold)
        loss = multisrc_weighted_bce(logits, truth, bce_weight(mix_mag))
        if wave_weight > 0:
            est = self.forward_decoder(torch.sigmoid(logits), spec[:, 0], length)
            loss = loss + wave_weight * present_source_neg_snr(est, sources, mix)
        return loss

    def widened(self, unet_widths: Sequence[int], noise: float = 0.0, seed: int = 0) -> "OmniSep":
        """This model with a wider U-Net that computes the same masks (Net2WiderNet:
        :func:`omnisep_plugin.masknn.widen.widen_unet`), to continue training with more
        capacity instead of starting from scratch; ``noise`` breaks the copies' symmetry."""
        from ..masknn.widen import widen_unet
        device = next(self.parameters()).device
        wide = copy.deepcopy(self)  # everything but the U-Net stays; get_model_args follows it
        wide.masker = widen_unet(self.masker, unet_widths, noise=noise, seed=seed).to(device)
        return wide

    def with_more_masks(self, n_masks: int, noise: float = 0.0, seed: int = 0) -> "OmniSep":
        """This model with ``n_masks`` intermediate masks instead of k, computing the same
        final masks (eq. 2): new mask ``j`` copies mask ``j mod k`` (its U-Net output
        channel and its query-projection row), and each of the copies of a mask takes an
        equal share of its scale ``w``, so that ``sum_j w_j q_j M_j`` is unchanged.
        ``noise`` (relative to the last convolution's weight spread) breaks the copies'
        symmetry, on the copies only. More masks give the late-fusion head more room to
        tell like classes apart, at the cost of a wider last convolution in training (the
        exported graph folds the head into it: inference costs the same)."""
        k, n_masks = self.n_masks, int(n_masks)
        if n_masks < k:
            raise ValueError(f"n_masks must be at least the model's {k}, got {n_masks}")
        old = self.masker.net.up[-1]
        like = dict(device=old.weight.device, dtype=old.weight.dtype)
        src = torch.arange(n_masks, device=like["device"]) % k
        share = torch.bincount(src, minlength=k).to(like["dtype"])[src]
        more = copy.deepcopy(self)
        conv = nn.Conv2d(old.in_channels, n_masks, kernel_size=old.kernel_size,
                         padding=old.padding, bias=old.bias is not None, **like)
        proj = nn.Linear(self.query_dim, n_masks, **like)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            weight = old.weight[src].clone()
            copies = (src != torch.arange(n_masks, device=like["device"])).to(like["dtype"])
            weight += copies[:, None, None, None] * float(noise) * old.weight.std() * torch.randn(
                weight.shape, generator=gen).to(**like)
            conv.weight.copy_(weight)
            if old.bias is not None:
                conv.bias.copy_(old.bias[src])
            proj.weight.copy_(self.query_proj.weight[src])
            proj.bias.copy_(self.query_proj.bias[src])
        more.masker.net.up[-1] = conv.to(memory_format=torch.channels_last)
        more.masker.out_channels = n_masks
        more.query_proj = proj
        more.mask_scale = nn.Parameter(self.mask_scale.detach()[src] / share)
        more.n_masks = n_masks
        return more

    # ------------------------------------------------------------ packaging
    def get_model_args(self) -> dict:
        """Plain-typed constructor arguments (safe for ``torch.load(weights_only=True)``)."""
        return dict(
            query_dim=self.query_dim, n_masks=self.n_masks,
            unet_widths=list(self.masker.widths), n_fft=self.stft.n_fft,
            hop_length=self.stft.hop_length, win_length=self.stft.win_length,
            log_freq_bins=self.log_freq_bins, query_activation=self.query_activation,
            mask_threshold=self.mask_threshold, sample_rate=float(self.sample_rate),
        )

    def serialize(self) -> dict:
        """Asteroid's package dict, with plain-string version infos so that it loads with
        ``weights_only=True`` (Asteroid's own stores a ``TorchVersion`` object)."""
        return with_plain_versions(super().serialize())

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write :meth:`serialize` to ``path`` atomically (no half-written file on a kill)."""
        from ..utils import atomic_write
        with atomic_write(path) as tmp:
            torch.save(self.serialize(), tmp)

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs) -> "OmniSep":
        """Load a model package (dict or local file written by :meth:`save` / ``serialize``).

        ``"default"`` (or another name registered with :func:`register_pretrained`: see
        :data:`omnisep_plugin.pipelines.BUNDLES`) loads the model shipped inside the package.
        Never downloads: a path that does not exist is a ``FileNotFoundError``. A
        :class:`~omnisep_plugin.models.routed.RoutedOmniSep` package (several experts
        behind one model, as the shipped default) loads as that class, which has the same
        interface.
        """
        conf = resolve_package(pretrained_model_conf_or_path)
        if cls is OmniSep and isinstance(conf, dict) and conf.get("model_name") == "RoutedOmniSep":
            from .routed import RoutedOmniSep  # experts behind one model (the shipped default)
            return RoutedOmniSep.from_pretrained(conf, *args, **kwargs)
        check_package(conf, cls.__name__)
        try:
            model = super().from_pretrained(conf, *args, **kwargs)
        except (TypeError, RuntimeError, KeyError) as err:
            raise incompatible_package(conf, cls.__name__, err) from None
        return model.eval()

    # ----------------------------------------------------------- validation
    @staticmethod
    def _as_tensor(x, name: str) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
        return x

    def _check_inputs(self, wav, query):
        wav, query = self._as_tensor(wav, "wav"), self._as_tensor(query, "query")
        was_1d = wav.dim() == 1
        if wav.dim() == 3:
            if wav.shape[1] != 1:
                raise ValueError(f"OmniSep separates mono audio; got {wav.shape[1]} channels "
                                 f"(shape {tuple(wav.shape)}): mix down or separate each channel")
            wav = wav[:, 0]
        elif wav.dim() == 1:
            wav = wav[None]
        elif wav.dim() != 2:
            raise ValueError(f"wav must be [time], [batch, time] or [batch, 1, time], got "
                             f"shape {tuple(wav.shape)}")
        if wav.shape[-1] == 0 or wav.shape[0] == 0:
            raise ValueError(f"Empty waveform (shape {tuple(wav.shape)})")
        if not wav.is_floating_point():
            raise ValueError(f"wav must be floating point, got {wav.dtype}")
        if not torch.isfinite(wav).all():
            raise ValueError("wav contains NaN or Inf samples")
        if query.dim() == 1:
            query = query[None, None]
        elif query.dim() == 2:
            query = query[:, None]
        elif query.dim() != 3:
            raise ValueError(f"query must be [dim], [batch, dim] or [batch, n_src, dim], got "
                             f"shape {tuple(query.shape)}")
        if query.shape[-1] != self.query_dim:
            raise ValueError(f"query has dim {query.shape[-1]}, the model expects "
                             f"{self.query_dim}")
        if query.shape[0] != wav.shape[0]:
            if query.shape[0] == 1:
                query = query.expand(wav.shape[0], -1, -1)
            else:
                raise ValueError(f"Batch sizes differ: {wav.shape[0]} mixtures, "
                                 f"{query.shape[0]} queries")
        if not query.is_floating_point() or not torch.isfinite(query).all():
            raise ValueError("query must be a finite floating-point tensor")
        return wav, query.to(wav.device), was_1d
