"""What a user asks for, as one query vector: :class:`QuerySpec` and :func:`build_query`.

A spec names what to keep (text, image file, audio example, composed with weights), what
to remove (negative text / image / audio, eq. 4 with ``alpha``) and whether a text query is
mapped onto the Query-Set (Query-Aug, eq. 5: nearest label, or the similarity-weighted
form with ``query_aug_temperature`` > 0), whether a text query is composed with the
audio prototype of its nearest label (``prototypes``: :func:`prototype_for`) and whether an
audio example is composed with the text of its nearest label (``audio_label``:
:func:`audio_with_label`).
:func:`build_query` (one stem) and :func:`build_queries` (several; each removes the
others) embed it with a :class:`~omnisep_plugin.query.base.QueryEncoder` and
applies :func:`compose_query` and :func:`negative_query`: the one place the CLI's query is
built.
"""
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from ..audio_io import read_audio, resample
from ..config import SEPARATE
from .base import QueryEncoder
from .ops import compose_query, negative_query
from .query_set import QuerySet

MAX_ALPHA = 10.0
#: An audio query is read up to this length (memory stays bounded for any file).
MAX_AUDIO_QUERY_SECONDS = 60.0


@dataclass
class QuerySpec:
    """What to keep (``text``/``image``/``audio``, composed with ``weights``) and what to
    remove (``negative_*``, eq. 4 with ``alpha``); ``query_aug`` maps the text onto the
    Query-Set (eq. 5; nearest label, or softmax-weighted with ``query_aug_temperature``);
    ``prototypes`` composes a text with its nearest label's audio prototype, ``audio_label``
    an audio example with its nearest label's text."""
    text: Optional[str] = None
    image: Optional[str] = None
    audio: Optional[str] = None
    weights: Dict[str, float] = field(default_factory=dict)
    negative_text: Optional[str] = None
    negative_image: Optional[str] = None
    negative_audio: Optional[str] = None
    alpha: float = SEPARATE.alpha
    query_aug: bool = False
    query_aug_temperature: float = 0.0
    prototypes: bool = False
    audio_label: bool = False

    def positives(self) -> Dict[str, str]:
        return {k: v for k, v in (("text", self.text), ("image", self.image),
                                  ("audio", self.audio)) if v is not None}

    def negatives(self) -> Dict[str, str]:
        return {k: v for k, v in (("text", self.negative_text), ("image", self.negative_image),
                                  ("audio", self.negative_audio)) if v is not None}

    def files(self) -> Dict[str, str]:
        """The query files the spec reads (name -> path)."""
        return {name: path for name, path in (
            ("image", self.image), ("audio", self.audio), ("negative image", self.negative_image),
            ("negative audio", self.negative_audio)) if path is not None}

    def validate(self) -> None:
        """ValueError for a query that cannot be built, before any work is done."""
        if not self.positives():
            raise ValueError("No query: give at least one of --text, --image, --audio")
        if self.negatives() and not self.positives():
            raise ValueError("A negative query needs a positive query")
        for name, value in (("text", self.text), ("negative text", self.negative_text)):
            if value is not None and not value.strip():
                raise ValueError(f"The {name} query is empty")
        for name, path in self.files().items():
            if not Path(path).is_file():
                raise ValueError(f"The {name} query file does not exist: {path}")
        if not 0.0 <= self.alpha <= MAX_ALPHA or math.isnan(self.alpha):
            raise ValueError(f"alpha must be in [0, {MAX_ALPHA:g}], got {self.alpha}")
        unknown = set(self.weights) - set(self.positives())
        if unknown:
            raise ValueError(f"Weights given for modalities without a query: {sorted(unknown)}")
        if self.query_aug and self.text is None:
            raise ValueError("Query-Aug applies to a text query: give --text")
        if self.prototypes and self.text is None and self.negative_text is None:
            raise ValueError("Audio prototypes apply to a text query: give --text")
        if self.audio_label and self.audio is None and self.negative_audio is None:
            raise ValueError("Audio labels apply to an audio query: give --audio")
        if not self.query_aug_temperature >= 0 or math.isinf(self.query_aug_temperature):
            raise ValueError(f"The Query-Aug temperature must be finite and >= 0, got "
                             f"{self.query_aug_temperature}")


def embed_audio_file(encoder: QueryEncoder, path) -> torch.Tensor:
    """The ``[dim]`` embedding of an audio example file (its first
    ``MAX_AUDIO_QUERY_SECONDS``, mixed to mono, resampled to the encoder's rate); ValueError
    naming the file when it is silent or too short."""
    wav, sr = read_audio(path, max_seconds=MAX_AUDIO_QUERY_SECONDS)
    wav = torch.from_numpy(wav.mean(0, keepdims=True))
    wav = resample(wav, sr, encoder.sample_rate)
    if not wav.abs().max() > 0:
        raise ValueError(f"The audio query {path} is silent")
    try:
        return encoder.embed_audio(wav)[0]
    except ValueError as err:
        raise ValueError(f"The audio query {path}: {err}") from None


def _embed(encoder: QueryEncoder, modality: str, value: str) -> torch.Tensor:
    if modality == "text":
        return encoder.embed_text([value])[0]
    if modality == "image":
        return encoder.embed_image([value])[0]
    return embed_audio_file(encoder, value)


def _nearest(query: torch.Tensor, query_set: QuerySet) -> tuple:
    """The ``query_set`` label nearest a query ``[dim]`` and its cosine."""
    sims = query_set.similarities(query)[0]
    best = int(sims.argmax())
    return query_set.labels[best], float(sims[best])


def prototype_for(text: torch.Tensor, query_set: QuerySet, prototypes: QuerySet,
                  min_similarity: float = SEPARATE.prototype_min_similarity) -> tuple:
    """The audio prototype ``[dim]`` of the Query-Set label nearest a text embedding
    ``[dim]`` (its training clips' mean audio embedding), that label and the cosine; the
    prototype is ``None`` below ``min_similarity`` or when ``prototypes`` lacks the label.

    Example:
        >>> qs = QuerySet(["dog", "cat"], torch.tensor([[1., 0.], [0., 1.]]))
        >>> bank = QuerySet(["dog", "cat"], torch.tensor([[0.6, 0.8], [0.8, 0.6]]))
        >>> proto, label, sim = prototype_for(torch.tensor([0.9, 0.1]), qs, bank)
        >>> proto.tolist(), label
        ([0.6000000238418579, 0.800000011920929], 'dog')
        >>> prototype_for(torch.tensor([0.6, 0.5]), qs, bank, min_similarity=0.9)[0] is None
        True
    """
    label, sim = _nearest(text, query_set)
    proto = prototypes.lookup(label)
    if sim < min_similarity or proto is None:
        return None, label, sim
    return proto.to(device=text.device, dtype=text.dtype), label, sim


def text_with_prototype(text: torch.Tensor, query_set: QuerySet, prototypes: QuerySet) -> torch.Tensor:
    """A text embedding ``[dim]`` composed at equal weight with its :func:`prototype_for`
    (the text alone where there is none): the query ``--prototypes`` gives a text."""
    proto = prototype_for(text, query_set, prototypes)[0]
    return text if proto is None else compose_query({"text": text, "audio": proto})


def nearest_label(query: torch.Tensor, query_set: QuerySet) -> dict:
    """``{"label", "similarity"}``: the ``query_set`` label nearest a query ``[dim]``."""
    label, sim = _nearest(query, query_set)
    return {"label": label, "similarity": round(sim, 4)}


def vocabulary_warning(text: str, nearest: dict,
                       min_similarity: float = SEPARATE.vocabulary_min_similarity) -> Optional[str]:
    """The warning for a text query far from every label the model was trained on
    (``nearest``: :func:`nearest_label`; ``None`` when it is near one).

    Example:
        >>> vocabulary_warning("dog barking", {"label": "trumpet", "similarity": 0.21})
        "'dog barking' is far from every label the model was trained on (nearest: 'trumpet', cosine 0.21 < 0.5): it may not be separated"
        >>> vocabulary_warning("violin playing", {"label": "violin", "similarity": 0.88}) is None
        True
    """
    if nearest["similarity"] >= min_similarity:
        return None
    return (f"{text!r} is far from every label the model was trained on (nearest: "
            f"{nearest['label']!r}, cosine {nearest['similarity']:.2f} < {min_similarity:g}): "
            "it may not be separated")


def label_text_for(audio: torch.Tensor, query_set: QuerySet,
                   min_similarity: float = SEPARATE.audio_label_min_similarity) -> tuple:
    """The text embedding ``[dim]`` of the ``query_set`` label nearest an audio embedding
    ``[dim]``, that label and the cosine; the text is ``None`` below ``min_similarity``. The
    bound audio encoder lands a clip next to the text of its label, so the nearest label is
    found as Query-Aug finds a text's (eq. 5)."""
    label, sim = _nearest(audio, query_set)
    text = query_set.lookup(label) if sim >= min_similarity else None
    return (None if text is None else text.to(device=audio.device, dtype=audio.dtype)), label, sim


def audio_with_label(audio: torch.Tensor, query_set: QuerySet,
                     min_similarity: float = SEPARATE.audio_label_min_similarity) -> torch.Tensor:
    """An audio embedding ``[dim]`` composed at equal weight with its :func:`label_text_for`
    (the audio alone where there is none): the query ``--audio-label`` gives an audio
    example given alone.

    Example:
        >>> qs = QuerySet(["dog", "cat"], torch.tensor([[1., 0.], [0., 1.]]))
        >>> [round(v, 4) for v in audio_with_label(torch.tensor([0.8, 0.6]), qs).tolist()]
        [0.9487, 0.3162]
        >>> [round(v, 4) for v in audio_with_label(torch.tensor([0.8, 0.6]), qs, min_similarity=0.9).tolist()]
        [0.8, 0.6]
    """
    text = label_text_for(audio, query_set, min_similarity)[0]
    return audio if text is None else compose_query({"text": text, "audio": audio})


def _with_label(queries: Dict[str, torch.Tensor], query_set, record: dict,
                key: str) -> Dict[str, torch.Tensor]:
    """``queries`` with the nearest label's text beside an audio example given alone (no
    text, no image: what was measured); what was chosen goes to ``record[key]``."""
    if set(queries) != {"audio"}:
        return queries
    text, label, sim = label_text_for(queries["audio"], query_set)
    record[key] = {"label": label, "similarity": round(sim, 4), "used": text is not None}
    return queries if text is None else {**queries, "text": text}


def _with_prototype(queries: Dict[str, torch.Tensor], query_set, prototypes, record: dict,
                    key: str) -> Dict[str, torch.Tensor]:
    """``queries`` with the text's audio prototype as its audio part (unless an audio
    example was given); what was chosen goes to ``record[key]``."""
    if "text" not in queries or "audio" in queries:
        return queries
    proto, label, sim = prototype_for(queries["text"], query_set, prototypes)
    record[key] = {"label": label, "similarity": round(sim, 4), "used": proto is not None}
    return queries if proto is None else {**queries, "audio": proto}


def _check_banks(encoder: QueryEncoder, spec: QuerySpec, query_set, prototypes) -> None:
    spec.validate()
    for modality in set(spec.positives()) | set(spec.negatives()):
        if not encoder.supports(modality):
            raise ValueError(f"The query encoder has no {modality} encoder; it embeds "
                             f"{list(encoder.modalities)}")
    if spec.query_aug and query_set is None:
        raise ValueError("Query-Aug needs a Query-Set (--query-set PATH)")
    if spec.audio_label and query_set is None:
        raise ValueError("Audio labels need a Query-Set (--query-set PATH)")
    if spec.prototypes and (query_set is None or prototypes is None):
        raise ValueError("Audio prototypes need a Query-Set (--query-set PATH) and a bank of "
                         "prototypes (--audio-prototypes PATH)")
    for name, bank in (("Query-Set", query_set), ("bank of audio prototypes", prototypes)):
        if bank is not None and bank.dim != encoder.dim:
            raise ValueError(f"The {name} holds {bank.dim}-d embeddings, the encoder gives "
                             f"{encoder.dim}-d queries")


def _positive_and_negative(encoder: QueryEncoder, spec: QuerySpec, query_set, prototypes,
                           record: dict) -> tuple:
    """The composed positive query ``[dim]`` (unit norm) of ``spec`` and its composed
    negative query ``[dim]`` (``None`` without ``negative_*``)."""
    _check_banks(encoder, spec, query_set, prototypes)
    positives = {m: _embed(encoder, m, v) for m, v in spec.positives().items()}
    if query_set is not None and "text" in positives:
        record["nearest_label"] = nearest_label(positives["text"], query_set)
    if spec.prototypes:  # from the user's own text, before Query-Aug replaces it
        positives = _with_prototype(positives, query_set, prototypes, record, "prototype")
    weights = dict(spec.weights)
    if spec.audio_label:
        positives = _with_label(positives, query_set, record, "audio_label")
        if "text" in positives and "audio" in weights:  # the label weighs what the audio does
            weights["text"] = weights["audio"]
    if spec.query_aug:
        _, labels = query_set.nearest(positives["text"][None])
        positives["text"] = query_set.augment(positives["text"][None],
                                              temperature=spec.query_aug_temperature)[0]
        record["query_aug_label"] = labels[0]
    positive = compose_query(positives, weights or None)
    negatives = {m: _embed(encoder, m, v) for m, v in spec.negatives().items()}
    if spec.prototypes:
        negatives = _with_prototype(negatives, query_set, prototypes, record, "negative_prototype")
    if spec.audio_label:
        negatives = _with_label(negatives, query_set, record, "negative_audio_label")
    return positive, (compose_query(negatives) if negatives else None)


def build_query(encoder: QueryEncoder, spec: QuerySpec,
                query_set: Optional[QuerySet] = None,
                prototypes: Optional[QuerySet] = None) -> tuple:
    """The query vector ``[dim]`` for ``spec`` and a JSON-ready record of how it was built.

    With ``spec.prototypes``, a text query (positive and negative alike) is composed, with
    equal weight, with the audio prototype of its nearest ``query_set`` label from
    ``prototypes`` (:func:`prototype_for`; the record's ``prototype`` and
    ``negative_prototype`` say which label and cosine). With ``spec.audio_label``, an audio
    example given alone (positive and negative alike; no text or image beside it) is
    composed, at the audio's weight, with the text of its nearest ``query_set`` label
    (:func:`label_text_for`; the record's ``audio_label`` and ``negative_audio_label``).
    With a Query-Set, the record's ``nearest_label`` names the label nearest a text query."""
    query, _, record = build_queries(encoder, [spec], query_set, prototypes)[0]
    return query, record


class StemQuery(NamedTuple):
    """One stem's query ``[dim]`` (negatives applied), its positive query ``[dim]`` (what to
    keep, before any negative: what the query check compares the estimate with) and the
    JSON-ready record of how they were built."""
    query: torch.Tensor
    positive: torch.Tensor
    record: dict


def build_queries(encoder: QueryEncoder, specs: Sequence[QuerySpec],
                  query_set: Optional[QuerySet] = None,
                  prototypes: Optional[QuerySet] = None,
                  stem_negatives: bool = True) -> List[StemQuery]:
    """One :class:`StemQuery` per stem of a multi-stem separation.

    With ``stem_negatives`` and two or more stems, each stem's negative query (eq. 4, with
    its spec's ``alpha``) is the mean of the *other* stems' positive queries and of its own
    ``negative_*`` if it has one (each of these weighs the same): asking for a dog and a
    woman removes the woman from the dog's stem and the dog from the woman's. This is the
    ``+neg`` column of the test tables (the other source's query as the negative: +1.1 dB
    SDRi for ``--model omni`` and +1.2 dB for ``default``, docs/results.md). With one stem
    the query is :func:`build_query`'s.
    """
    built = []
    for spec in specs:
        record = {"query": asdict(spec)}
        built.append((*_positive_and_negative(encoder, spec, query_set, prototypes, record),
                      record))
    out = []
    for i, (spec, (positive, negative, record)) in enumerate(zip(specs, built)):
        negatives = [] if negative is None else [F.normalize(negative, dim=-1)]
        others = [j for j in range(len(built)) if j != i] if stem_negatives else []
        negatives += [built[j][0] for j in others]
        if others:
            record["stem_negatives"] = [j + 1 for j in others]  # the est<j> files removed
        q = (positive if not negatives
             else negative_query(positive, torch.stack(negatives).mean(0), spec.alpha))
        out.append(StemQuery(q, positive, record))
    return out
