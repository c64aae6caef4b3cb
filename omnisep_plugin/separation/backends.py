"""Inference backends: one separator run by PyTorch eager, TorchScript or ONNX Runtime.

What is exported is the mask network, the part that costs: the U-Net and the query head of
eq. (2) (:class:`MaskNet`, the head folded into the last convolution), ``(features
[batch, 1, F'', T''], query [n, dim]) -> logits [batch, n, F'', T'']`` with dynamic batch,
query count and frame count (``T''`` a multiple of
the U-Net's :attr:`~omnisep_plugin.masknn.unet.AudioUNet.size_multiple`). The STFT, the
log-frequency warp and the inverse STFT stay in PyTorch, outside the graph:
:meth:`OmniSep.masker_input` makes the features, and the mask (the logits' sigmoid, cropped
to ``[..., :F', :T]``) goes through :meth:`OmniSep.forward_decoder`.

:class:`BackendSeparator` is a drop-in for the model in :mod:`.overlap_add` and
:mod:`.files` (``module(wav [batch, time], query [batch, n, dim]) -> [batch, n, time]``).

Example:
    >>> from omnisep_plugin.testing.dummies import tiny_omnisep
    >>> model = tiny_omnisep().eval()
    >>> fast = BackendSeparator(model, "onnxruntime")
    >>> wav, q = torch.randn(1, 16000), torch.randn(1, 1, 8)
    >>> bool((fast(wav, q) - model(wav, q)).abs().max() < 1e-4)
    True
"""
import io
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BACKENDS, SEPARATE
from .routing import run_routed

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
_INPUTS, _OUTPUTS = ["features", "query"], ["logits"]


class MaskNet(nn.Module):
    """The exported graph: the logits of eq. (2), ``apply_query(masker(features), query)``,
    with the query head folded into the U-Net's last convolution.

    The head is linear in the k masks, ``z = sum_j a_j M_j + b`` with ``a = q * w``, and the
    masks are the last convolution's outputs, so ``z`` is that convolution with the weights
    ``sum_j a_j W_j`` and the bias ``a . b_conv + b``: one output channel per query instead of
    k (32), which is most of the shipped model's arithmetic. Equal to the unfolded head
    within float rounding (tested).

    Shape:
        features ``[batch, 1, F'', T'']``, query ``[n, dim]`` (the same for every row) ->
        ``[batch, n, F'', T'']``.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        model, unet = self.model, self.model.masker
        top = unet.net  # the outermost level: down, inner levels, up = ReLU, Upsample, Conv
        h = top.down(unet.input_norm(features))
        if top.inner is not None:
            h = top.inner(h)
        h = top.up[:-1](h)
        conv = top.up[-1]
        q = model.query_proj(query)
        if model.query_activation == "sigmoid":
            q = torch.sigmoid(q)
        a = q * model.mask_scale  # [n, k]
        weight = torch.einsum("nk,kchw->nchw", a, conv.weight)
        return F.conv2d(h, weight, a @ conv.bias + model.mask_bias, padding=conv.padding)


def _example_inputs(model):
    m = model.masker.size_multiple
    bins = -(-model.mask_bins // m) * m
    return torch.zeros(1, 1, bins, 2 * m), torch.zeros(1, model.query_dim)


def _trace(model) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.freeze(torch.jit.trace(MaskNet(model).eval(), _example_inputs(model)))


def _onnx_bytes(model) -> bytes:
    buf = io.BytesIO()
    dynamic = {"features": {0: "batch", 3: "frames"}, "query": {0: "n_src"},
               "logits": {0: "batch", 1: "n_src", 3: "frames"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(MaskNet(model).eval(), _example_inputs(model), buf, input_names=_INPUTS,
                          output_names=_OUTPUTS, dynamic_axes=dynamic, opset_version=17,
                          dynamo=False)
    return buf.getvalue()


def export(model, path: Union[str, os.PathLike], fmt: str) -> Path:
    """Write the mask network of ``model`` as ``fmt`` (``torchscript``: a frozen
    ``torch.jit`` module; ``onnx``: an ONNX opset-17 graph). Written atomically."""
    from ..utils import atomic_write

    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; known: {sorted(FORMATS)}")
    path = Path(path)
    with atomic_write(path) as tmp:
        if fmt == "onnx":
            Path(tmp).write_bytes(_onnx_bytes(model))
        else:
            torch.jit.save(_trace(model), tmp)
    return path


class _OrtNet:
    """An ONNX Runtime session with the :class:`MaskNet` signature (CPU)."""

    def __init__(self, graph: Union[bytes, str], threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # Idle threads sleep instead of spinning: on a shared CPU spinning threads steal
        # the cores the busy ones need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def __call__(self, features: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        out = self.session.run(_OUTPUTS, {"features": features.float().numpy(),
                                          "query": query.float().numpy()})[0]
        return torch.from_numpy(out)


def resolve_backend(name: str, device, seconds: float) -> str:
    """``auto``: ONNX Runtime on the CPU for at least ``SEPARATE.onnx_min_seconds`` of audio
    (where it repays its export, a second or two), else eager; other names as they are."""
    if name != "auto":
        return name
    long = seconds >= SEPARATE.onnx_min_seconds
    return "onnxruntime" if torch.device(device).type == "cpu" and long else "eager"


def as_separator(model) -> nn.Module:
    """An OmniSep (a model with :meth:`OmniSep.masker_input`) wrapped in the ``eager``
    :class:`BackendSeparator` (the folded head), a
    :class:`~omnisep_plugin.models.RoutedOmniSep` in a :class:`RoutedSeparator`; anything
    else (a backend, a wrapper module) as it is."""
    if hasattr(model, "masker_input") or hasattr(model, "route"):
        return separator_for(model, "eager")
    return model


def separator_for(model, backend: str = "eager") -> nn.Module:
    """``model``'s separation run by ``backend``: a :class:`BackendSeparator`, or a
    :class:`RoutedSeparator` for a model with experts."""
    return RoutedSeparator(model, backend) if hasattr(model, "route") else BackendSeparator(model, backend)


class RoutedSeparator(nn.Module):
    """A :class:`~omnisep_plugin.models.RoutedOmniSep`'s separation with each expert's mask
    network run by ``backend`` (:class:`BackendSeparator`); the routing is the model's.
    ``wav [batch, time]``, ``query [batch, n, dim]`` -> ``[batch, n, time]``."""

    def __init__(self, model, backend: str = "eager"):
        super().__init__()
        self.model, self.backend = model, backend
        self.experts = nn.ModuleList(BackendSeparator(e, backend) for e in model.experts)

    @property
    def sample_rate(self) -> float:
        return self.model.sample_rate

    def forward(self, wav: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return run_routed(self.model.route(query), list(self.experts), wav, query)


class BackendSeparator(nn.Module):
    """``model``'s separation with its mask network run by ``backend``.

    Args:
        model: an :class:`~omnisep_plugin.models.OmniSep` (put in eval mode by the
            ``torchscript`` and ``onnxruntime`` backends, which export it).
        backend: ``eager`` (:class:`MaskNet` in PyTorch), ``torchscript`` or ``onnxruntime``
            (CPU only).
        graph: a file written by :func:`export` in the backend's format; ``None`` exports
            the model in memory (a second or two).
    """

    def __init__(self, model, backend: str = "eager",
                 graph: Optional[Union[str, os.PathLike]] = None):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"Unknown backend {backend!r}; known: {list(BACKENDS)}")
        self.model, self.backend = model, backend
        device = next(model.parameters()).device
        if backend == "onnxruntime":
            if device.type != "cpu":
                raise ValueError("The onnxruntime backend runs on the CPU; use --device cpu or "
                                 "another backend")
            self.net = _OrtNet(str(graph) if graph else _onnx_bytes(model),
                               torch.get_num_threads())
        elif backend == "torchscript":
            self.net = torch.jit.load(str(graph), map_location=device) if graph else _trace(model)
        else:
            self.net = MaskNet(model)

    @property
    def sample_rate(self) -> float:
        return self.model.sample_rate

    def forward(self, wav: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``wav [batch, time]``, ``query [batch, n, dim]`` -> ``[batch, n, time]``.

        With ``onnxruntime`` the PyTorch part (STFT, warp, inverse STFT: small operations
        that gain nothing from a second thread and lose much when a core is busy) runs on
        one thread and ONNX Runtime's session on the process's threads.
        """
        if self.backend != "onnxruntime":
            return self._separate(wav, query)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._separate(wav, query)
        finally:
            torch.set_num_threads(threads)

    def _separate(self, wav: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        length, model = wav.shape[-1], self.model
        min_len = model.stft.n_fft // 2 + 1  # as OmniSep.forward: reflect padding
        if length < min_len:
            wav = F.pad(wav, (0, min_len - length))
        spec, mag = model.forward_encoder(wav)
        features = model.masker_input(mag)
        if query.stride(0) == 0 or bool((query == query[:1]).all()):
            logits = self.net(features, query[0])
        else:  # different queries per row: one row at a time
            logits = torch.cat([self.net(f[None], q) for f, q in zip(features, query)])
        logits = logits[..., :model.mask_bins, :mag.shape[-1]]
        mask = torch.sigmoid(model.temper(logits, query))
        return model.forward_decoder(mask, spec, wav.shape[-1])[..., :length]
