"""The Query-Net side of OmniSep: encoders, Query-Mixup, composition, negatives, Query-Aug."""
from .base import QueryEncoder
from .imagebind import IMAGEBIND_HUGE, ImageBindEncoder
from .ops import (MODALITIES, QueryMixup, check_modality, compose_query, negative_query,
                  remove_each_other)
from .query_set import QuerySet
from .residual import residual_negative, residual_queries, separate_with_residual_negative

__all__ = [
    "IMAGEBIND_HUGE", "ImageBindEncoder", "MODALITIES", "QueryEncoder", "QueryMixup",
    "QuerySet", "check_modality", "compose_query", "negative_query", "remove_each_other",
    "residual_negative", "residual_queries", "separate_with_residual_negative",
]
