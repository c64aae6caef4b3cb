"""The fixed test mixtures separated with every query kind (recipe stage 3,
``omnisep separate-test``).

For each fixed mixture of :func:`~omnisep_plugin.data.mixtures.make_test_mixtures` and each of its
sources, the target is queried as:

- ``text``: the embedding of the class label (the Query-Set entry);
- ``image``: the target clip's own image embedding (mean of 4 frames);
- ``audio``: the class's audio query bank entry (mean of S training clips);
- ``composed``: ``normalize(w_t text + w_i image + w_a audio)`` (default weights 2, 2, 1 as
  in the official code);
- ``audio+label``: the audio query composed with the text of its nearest Query-Set label
  (``omnisep separate --audio-label``; the label is found from the audio, not given);
- ``<kind>+neg``: each of the above with the other source's query of the same kind as the
  negative query (eq. 4, ``alpha`` 0.5);
- ``free_text`` / ``free_text+aug``: the class's free-text description, without and with
  Query-Aug (eq. 5); ``free_text+proto``: the description composed with the audio
  prototype of its nearest label (``omnisep separate --prototypes``; needs the bank);
- ``<kind>+resid`` (with an ``encoder`` that embeds audio; for ``text``, ``composed``,
  ``audio+label`` and ``free_text+proto``): the kind's second pass, removing the audio
  embedding of its first pass's residual (``omnisep separate --residual-negative``,
  :mod:`omnisep_plugin.query.residual`).

Kinds whose inputs are missing (no image embedding, no bank file) are left out. Written as
``<out>/est/<kind>/<mix>_<i>.wav`` with ``<out>/refs/<mix>_<i>.wav`` and
``<out>/mix/<mix>_<i>.wav``: exactly what ``omnisep score`` reads.
"""
from pathlib import Path
from typing import Dict, Optional

import soundfile as sf
import torch
from lhotse import CutSet
from tqdm.auto import tqdm

from ..config import SEPARATE
from ..data.mixtures import load_test_mixtures, render_mixture
from ..query.ops import compose_query, negative_query
from ..query.query_set import QuerySet
from ..query.residual import residual_queries
from ..query.spec import audio_with_label, text_with_prototype
from ..utils import atomic_write

DEFAULT_COMPOSE_WEIGHTS = SEPARATE.compose_weights_dict
#: The single-query kinds that also get a ``+resid`` second pass (what ``omnisep separate``
#: builds from a text, an audio example or a description).
RESIDUAL_KINDS = ("text", "composed", "audio+label", "free_text+proto")


def _lookup(bank: Optional[QuerySet], label: str) -> Optional[torch.Tensor]:
    return None if bank is None else bank.lookup(label)


def source_queries(cut, label: str, query_set, audio_bank, free_text, compose_weights) -> Dict[str, torch.Tensor]:
    """The query of every available kind for one target source, each ``[dim]``."""
    q = {}
    for kind, emb in (("text", _lookup(query_set, label)), ("audio", _lookup(audio_bank, label))):
        if emb is not None:
            q[kind] = emb
    if cut.has_custom("image_emb"):
        q["image"] = torch.from_numpy(cut.load_image_emb()).float()
    parts = {k: v for k, v in q.items() if k in compose_weights}
    if len(parts) > 1:
        q["composed"] = compose_query(parts, {k: compose_weights[k] for k in parts})
    if "audio" in q and query_set is not None:
        q["audio+label"] = audio_with_label(q["audio"], query_set)
    ft = _lookup(free_text, label)
    if ft is not None:
        q["free_text"] = ft
        if query_set is not None:
            q["free_text+aug"] = query_set.augment(ft[None])[0]
        if query_set is not None and audio_bank is not None:
            q["free_text+proto"] = text_with_prototype(ft, query_set, audio_bank)
    return q


def separate_test_mixtures(model, cuts: CutSet, mixtures_path, out_dir,
                           query_set: Optional[QuerySet] = None,
                           audio_bank: Optional[QuerySet] = None,
                           free_text: Optional[QuerySet] = None, alpha: float = SEPARATE.alpha,
                           negative_variant: str = SEPARATE.negative_variant,
                           compose_weights: Optional[dict] = None,
                           progress: bool = True, encoder=None) -> Dict[str, int]:
    """Separate every fixed mixture with every query kind; returns estimates per kind.
    ``encoder`` (embeds audio, at the model's rate): also the ``+resid`` kinds."""
    out_dir = Path(out_dir)
    compose_weights = compose_weights or DEFAULT_COMPOSE_WEIGHTS
    n_samples, entries = load_test_mixtures(mixtures_path)
    sr = int(model.sample_rate)
    counts: Dict[str, int] = {}
    model.eval()
    for entry in tqdm(entries, desc="separating test mixtures", disable=not progress):
        mix, sources = render_mixture(entry, cuts, n_samples)
        per_source = [source_queries(cuts[s["cut_id"]], s["label"], query_set, audio_bank,
                                     free_text, compose_weights) for s in entry["sources"]]
        for i, queries in enumerate(per_source):
            name = f"{entry['id']}_{i}.wav"
            _write(out_dir / "refs" / name, sources[i], sr)
            _write(out_dir / "mix" / name, mix, sr)
            others = [per_source[j] for j in range(len(per_source)) if j != i]
            todo = dict(queries)
            for kind, q in queries.items():
                if kind.startswith("free_text"):
                    continue
                negs = [o[kind] for o in others if kind in o]
                if negs:
                    todo[f"{kind}+neg"] = negative_query(q, torch.stack(negs).mean(0), alpha,
                                                         negative_variant)
            kinds = sorted(todo)
            device = next(model.parameters()).device
            with torch.no_grad():
                est = model(mix[None].to(device), torch.stack([todo[k] for k in kinds])[None])[0].cpu()
            again = [k for k in RESIDUAL_KINDS if k in todo] if encoder is not None else []
            if again:
                rows = [kinds.index(k) for k in again]
                second, _ = residual_queries(encoder, mix, est[rows],
                                             torch.stack([todo[k] for k in again]))
                with torch.no_grad():
                    more = model(mix[None].to(device), second[None].to(device))[0].cpu()
                kinds, est = kinds + [f"{k}+resid" for k in again], torch.cat([est, more])
            for kind, wav in zip(kinds, est):
                _write(out_dir / "est" / kind / name, wav, sr)
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def _write(path: Path, wav: torch.Tensor, sr: int) -> None:
    with atomic_write(path) as tmp:
        sf.write(tmp, wav.numpy(), sr, format="WAV", subtype="FLOAT")
