"""RoutedOmniSep: several OmniSep experts behind one model, each query answered by one.

The shipped default is two networks that share one query space (MiniLM text, a bound audio
encoder): an instrument specialist and the open-domain model. A query goes to the expert
of its nearest *routing label* (cosine similarity to the labels' text embeddings), so
"violin" is answered by the specialist and "dog barking" by the open-domain model, and a
mixture's stems may be split between them. The routing is a function of the query vector
alone, so the model keeps :class:`OmniSep`'s interface: ``forward(wav, query)``,
``forward_wav``, ``separate``, ``serialize`` / ``from_pretrained``.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from asteroid.models.base_models import BaseModel
from torch import nn

from ..separation.routing import run_routed
from .omnisep import (OmniSep, check_package, incompatible_package, nearest_key, resolve_package,
                      with_plain_versions)


class RoutedOmniSep(BaseModel):
    """OmniSep experts behind one model; a query is answered by the expert of its nearest
    routing label.

    Args:
        experts: :class:`OmniSep` models, their ``get_model_args()`` dicts, or names of
            shipped single-network models (``"omni"``: loaded with their weights, which a
            package that names them does not repeat), with one sample rate and one query
            dimension.
        route_labels: the routing labels.
        route_experts: per routing label, the index of the expert that answers it.
        expert_names: a name per expert (recorded in outputs; default ``expert0``...).
        route_embeddings: ``[n_labels, dim]`` text embeddings of the labels (``None``: zeros,
            to be filled by ``load_state_dict``).

    Shape: as :class:`OmniSep` (mixture ``[batch, time]``, query ``[batch, n_src, dim]`` ->
    ``[batch, n_src, time]``).
    """

    def __init__(self, experts: Sequence[Union[OmniSep, dict, str]],
                 route_labels: Sequence[str],
                 route_experts: Sequence[int], expert_names: Optional[Sequence[str]] = None,
                 route_embeddings: Optional[torch.Tensor] = None, sample_rate: Optional[float] = None):
        if not experts:
            raise ValueError("RoutedOmniSep needs at least one expert")
        refs = [e if isinstance(e, str) else None for e in experts]
        experts = [_expert(e) for e in experts]
        rates = {float(e.sample_rate) for e in experts}
        dims = {e.query_dim for e in experts}
        if len(rates) != 1 or len(dims) != 1:
            raise ValueError(f"The experts must share one sample rate and one query dimension, "
                             f"got {sorted(rates)} Hz and {sorted(dims)}-d")
        if sample_rate is not None and float(sample_rate) not in rates:
            raise ValueError(f"sample_rate {sample_rate} differs from the experts' {rates.pop()}")
        super().__init__(sample_rate=experts[0].sample_rate, in_channels=1)
        route_labels, route_experts = list(route_labels), [int(i) for i in route_experts]
        if not route_labels or len(route_labels) != len(route_experts):
            raise ValueError(f"Give one expert index per routing label, got {len(route_labels)} "
                             f"labels and {len(route_experts)} indices")
        if not all(0 <= i < len(experts) for i in route_experts):
            raise ValueError(f"Expert indices must be in [0, {len(experts)}), got "
                             f"{sorted(set(route_experts))}")
        names = list(expert_names) if expert_names is not None else [
            f"expert{i}" for i in range(len(experts))]
        if len(names) != len(experts):
            raise ValueError(f"{len(names)} expert names for {len(experts)} experts")
        self.query_dim = dims.pop()
        if route_embeddings is None:
            route_embeddings = torch.zeros(len(route_labels), self.query_dim)
        if tuple(route_embeddings.shape) != (len(route_labels), self.query_dim):
            raise ValueError(f"route_embeddings must be [{len(route_labels)}, {self.query_dim}], "
                             f"got {tuple(route_embeddings.shape)}")
        self.experts = nn.ModuleList(experts)
        self.route_labels, self.expert_names = route_labels, names
        self.expert_refs = refs  # the shipped names the experts were loaded from (or None)
        self.register_buffer("route_embeddings", F.normalize(route_embeddings.float(), dim=-1))
        self.register_buffer("route_experts", torch.tensor(route_experts, dtype=torch.long))

    # ---------------------------------------------------------------- routing
    def route(self, query: torch.Tensor) -> torch.Tensor:
        """Expert index of each query: that of its nearest routing label (cosine).
        ``[..., dim]`` -> ``[...]``."""
        return self.route_experts[nearest_key(query, self.route_embeddings)]

    def route_names(self, query: torch.Tensor) -> List[str]:
        """The name of the expert that answers each query of ``[n, dim]``."""
        return [self.expert_names[i] for i in self.route(query).tolist()]

    # ---------------------------------------------------------------- forward
    _as_tensor = staticmethod(OmniSep._as_tensor)
    _check_inputs = OmniSep._check_inputs
    forward_wav = OmniSep.forward_wav
    separate = OmniSep.separate

    def forward(self, wav: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Separate the sources that ``query`` describes, each by its expert."""
        wav, query, was_1d = self._check_inputs(wav, query)
        est = run_routed(self.route(query), list(self.experts), wav, query)
        return est[0] if was_1d else est

    # ------------------------------------------------------------- packaging
    def get_model_args(self) -> dict:
        """Plain-typed constructor arguments (the experts' own, the routing table)."""
        return dict(experts=[e.get_model_args() for e in self.experts],
                    route_labels=list(self.route_labels),
                    route_experts=self.route_experts.tolist(),
                    expert_names=list(self.expert_names), sample_rate=float(self.sample_rate))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``; the weights of experts loaded by name (a package
        that names shipped networks, :func:`referencing_package`) may be left out."""
        named = [f"experts.{i}." for i, ref in enumerate(self.expert_refs or ()) if ref]
        if named:
            own = {k: v for k, v in self.state_dict().items() if k.startswith(tuple(named))}
            state_dict = {**own, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def serialize(self) -> dict:
        """Asteroid's package dict (the experts' weights under ``experts.<i>.``)."""
        return with_plain_versions(BaseModel.serialize(self))

    save = OmniSep.save

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs) -> "RoutedOmniSep":
        """Load a package written by :meth:`save` (a path, a package dict, or a shipped
        model's name); never downloads."""
        conf = resolve_package(pretrained_model_conf_or_path)
        check_package(conf, cls.__name__)
        try:
            model = cls(*args, **{**conf["model_args"], **kwargs})
            model.load_state_dict(conf["state_dict"])
        except (TypeError, RuntimeError, KeyError, ValueError) as err:
            raise incompatible_package(conf, cls.__name__, err) from None
        return model.eval()


def _expert(expert) -> OmniSep:
    if isinstance(expert, OmniSep):
        return expert
    if isinstance(expert, str):  # a shipped network, by name: never a routed model
        return load_single(expert, "a routed model's expert")
    return OmniSep(**expert)


def referencing_package(model: RoutedOmniSep, names: Sequence[str]) -> dict:
    """``model.serialize()`` with each expert given by the name of the shipped model it is
    (``names``, one per expert) and only the routing tables as weights: a package that
    loads those networks from the installed package instead of repeating them."""
    pkg = model.serialize()
    pkg["model_args"]["experts"] = list(names)
    pkg["state_dict"] = {k: v for k, v in pkg["state_dict"].items() if k.startswith("route_")}
    return pkg


def routed_from_experts(experts: dict, labels: dict, text_embeddings: torch.Tensor,
                        label_order: Sequence[str]) -> RoutedOmniSep:
    """A :class:`RoutedOmniSep` from ``{name: OmniSep}`` and ``{label: expert name}``.

    Args:
        experts: the experts by name, in the order they are stored.
        labels: the expert that answers each routing label.
        text_embeddings: ``[n_labels, dim]``, the labels' text embeddings in ``label_order``.
        label_order: the labels, as ``text_embeddings`` rows.
    """
    names = list(experts)
    unknown = sorted(set(labels.values()) - set(names))
    if unknown:
        raise ValueError(f"Routing to unknown experts {unknown}; known: {names}")
    missing = sorted(set(label_order) - set(labels))
    if missing:
        raise ValueError(f"No expert for {len(missing)} labels, e.g. {missing[:3]}")
    return RoutedOmniSep([experts[n] for n in names], list(label_order),
                         [names.index(labels[lab]) for lab in label_order], names,
                         route_embeddings=text_embeddings).eval()


def load_single(path_or_name, what: str) -> OmniSep:
    """``OmniSep.from_pretrained(path_or_name)``, refused with a clear error where the package
    is a :class:`RoutedOmniSep` (``what`` names the command that needs one network)."""
    model = OmniSep.from_pretrained(path_or_name)
    if isinstance(model, RoutedOmniSep):
        raise ValueError(f"{path_or_name} is a routed model (experts {model.expert_names}); "
                         f"{what} takes one OmniSep network: name one expert's shipped model "
                         f"(--model omni, --model instruments) or a trained omnisep.pth")
    return model
