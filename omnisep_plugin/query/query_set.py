"""Query-Aug (eq. 5): map a free-text query embedding onto the training labels' embeddings.

Two forms: the nearest label (``temperature=0``, the paper's argmax and the official code),
or the similarity-weighted mean of the label embeddings, ``sum_m softmax_m(cos(Q, Q_m) / T)
Q_m``, which tends to the nearest label as ``T -> 0``.
"""
import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..utils import atomic_write, load_package


class QuerySet:
    """The Query-Set of OmniSep: the embeddings of the M training class labels.

    ``augment(Q)`` replaces each query by ``Q_m*`` with ``m* = argmax_m cos(Q, Q_m)``;
    ``augment(Q, temperature=T)`` with ``T > 0`` by ``sum_m softmax_m(cos(Q, Q_m) / T) Q_m``.

    Args:
        labels: the M class labels.
        embeddings: their embeddings ``[M, dim]``.

    Example:
        >>> qs = QuerySet(["dog", "cat"], torch.tensor([[1., 0.], [0., 1.]]))
        >>> qs.nearest(torch.tensor([[0.2, 0.9]]))[1]
        ['cat']
    """

    def __init__(self, labels: Sequence[str], embeddings: torch.Tensor):
        labels = [str(lab) for lab in labels]
        if embeddings.dim() != 2 or embeddings.shape[0] != len(labels) or not labels:
            raise ValueError(f"QuerySet needs M >= 1 labels and [M, dim] embeddings, got "
                             f"{len(labels)} labels and shape {tuple(embeddings.shape)}")
        if len(set(labels)) != len(labels):
            raise ValueError("QuerySet labels must be unique")
        if not torch.isfinite(embeddings).all():
            raise ValueError("QuerySet embeddings contain NaN or Inf")
        self.labels: List[str] = labels
        self.embeddings = embeddings.detach().float().cpu()

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    def __len__(self) -> int:
        return len(self.labels)

    def lookup(self, label: str) -> Optional[torch.Tensor]:
        """The embedding ``[dim]`` of ``label`` (``_`` and spaces alike), or ``None``.

        Example:
            >>> QuerySet(["acoustic guitar"], torch.ones(1, 2)).lookup("acoustic_guitar").tolist()
            [1.0, 1.0]
        """
        for name in (label, label.replace("_", " "), label.replace(" ", "_")):
            if name in self.labels:
                return self.embeddings[self.labels.index(name)]
        return None

    def nearest(self, query: torch.Tensor) -> Tuple[torch.Tensor, List[str]]:
        """Indices ``[batch]`` and labels of the label embeddings nearest by cosine to ``query``."""
        idx = self.similarities(query).argmax(-1)
        return idx, [self.labels[i] for i in idx.tolist()]

    def similarities(self, query: torch.Tensor) -> torch.Tensor:
        """Cosine similarities ``[batch, M]`` of queries ``[..., dim]`` to the labels."""
        query = query.reshape(-1, query.shape[-1]) if query.dim() != 1 else query[None]
        if query.shape[-1] != self.dim:
            raise ValueError(f"Query has dim {query.shape[-1]}, the QuerySet has dim {self.dim}")
        return F.normalize(query.float().cpu(), dim=-1) @ F.normalize(self.embeddings, dim=-1).T

    def augment(self, query: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        """Replace each query ``[..., dim]`` by its nearest label embedding (``temperature``
        0) or by the softmax(cos / ``temperature``)-weighted mean of the label embeddings
        (same shape).

        Example:
            >>> qs = QuerySet(["dog", "cat"], torch.tensor([[1., 0.], [0., 1.]]))
            >>> qs.augment(torch.tensor([0.2, 0.9])).tolist()
            [0.0, 1.0]
            >>> [round(v, 2) for v in qs.augment(torch.tensor([0.2, 0.9]), temperature=1.0).tolist()]
            [0.32, 0.68]
        """
        temperature = float(temperature)
        if not temperature >= 0 or temperature == float("inf"):
            raise ValueError(f"Query-Aug temperature must be finite and >= 0, got {temperature}")
        if temperature == 0:
            idx, _ = self.nearest(query)
            out = self.embeddings[idx]
        else:
            weights = torch.softmax(self.similarities(query).double() / temperature, dim=-1)
            out = (weights @ self.embeddings.double()).float()
        return out.to(device=query.device, dtype=query.dtype).reshape(query.shape)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write a plain-typed file (labels + tensor), loadable with ``weights_only=True``."""
        with atomic_write(path) as tmp:
            torch.save({"labels": self.labels, "embeddings": self.embeddings}, tmp)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "QuerySet":
        return load_package(path, "Query-Set file", lambda data: cls(data["labels"], data["embeddings"]))
