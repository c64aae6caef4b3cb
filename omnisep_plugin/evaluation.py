"""Evaluation runs: the fixed test mixtures with every query kind (recipe stage 3), and
freshly rendered instrument pairs (:func:`fresh_pair_gains`, ``omnisep eval-pairs``).

For each fixed mixture of :func:`~omnisep_plugin.data.mixtures.make_test_mixtures` and each of its
sources, the target is queried as:

- ``text``: the embedding of the class label (the Query-Set entry);
- ``image``: the target clip's own image embedding (mean of 4 frames);
- ``audio``: the class's audio query bank entry (mean of S training clips);
- ``composed``: ``normalize(w_t text + w_i image + w_a audio)`` (default weights 2, 2, 1 as
  in the official code);
- ``<kind>+neg``: each of the above with the other source's query of the same kind as the
  negative query (eq. 4, ``alpha`` 0.5);
- ``free_text`` / ``free_text+aug``: the class's free-text description, without and with
  Query-Aug (eq. 5).

Kinds whose inputs are missing (no image embedding, no bank file) are left out. Written as
``<out>/est/<kind>/<mix>_<i>.wav`` with ``<out>/refs/<mix>_<i>.wav`` and
``<out>/mix/<mix>_<i>.wav``: exactly what ``omnisep score`` reads.
"""
import itertools
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf
import torch
from lhotse import CutSet
from tqdm.auto import tqdm

from .data.mixtures import load_test_mixtures, render_mixture
from .query.ops import compose_query, negative_query
from .query.query_set import QuerySet
from .utils import atomic_write

DEFAULT_COMPOSE_WEIGHTS = {"text": 2.0, "image": 2.0, "audio": 1.0}


def _lookup(bank: Optional[QuerySet], label: str) -> Optional[torch.Tensor]:
    if bank is None or label not in bank.labels:
        return None
    return bank.embeddings[bank.labels.index(label)]


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
    ft = _lookup(free_text, label)
    if ft is not None:
        q["free_text"] = ft
        if query_set is not None:
            q["free_text+aug"] = query_set.augment(ft[None])[0]
    return q


def separate_test_mixtures(model, cuts: CutSet, mixtures_path, out_dir,
                           query_set: Optional[QuerySet] = None,
                           audio_bank: Optional[QuerySet] = None,
                           free_text: Optional[QuerySet] = None, alpha: float = 0.5,
                           negative_variant: str = "omnisep",
                           compose_weights: Optional[dict] = None,
                           progress: bool = True) -> Dict[str, int]:
    """Separate every fixed mixture with every query kind; returns estimates per kind."""
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
            with torch.no_grad():
                est = model(mix[None].to(next(model.parameters()).device),
                            torch.stack([todo[k] for k in kinds])[None])[0].cpu()
            for kind, wav in zip(kinds, est):
                _write(out_dir / "est" / kind / name, wav, sr)
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def _write(path: Path, wav: torch.Tensor, sr: int) -> None:
    with atomic_write(path) as tmp:
        sf.write(tmp, wav.numpy(), sr, format="WAV", subtype="FLOAT")


def plot_separation(out_dir, mixture_id: str, png_path) -> None:
    """PNG of mixture / reference / estimate spectrograms per query kind for one target
    ``<mix>_<i>`` of a :func:`separate_test_mixtures` folder (the paper's qualitative figure)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    name = f"{mixture_id}.wav"
    kinds = sorted(p.name for p in (out_dir / "est").iterdir() if (p / name).is_file())
    if not kinds:
        raise FileNotFoundError(f"No estimates named {name} under {out_dir / 'est'}")
    panels = [("mixture", out_dir / "mix" / name), ("reference", out_dir / "refs" / name)]
    panels += [(kind, out_dir / "est" / kind / name) for kind in kinds]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (title, path) in zip(axes.flat, panels):
        wav, sr = sf.read(str(path), dtype="float32")
        ax.specgram(wav, NFFT=512, Fs=sr, noverlap=384, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_write(png_path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def fresh_pair_gains(model, encoder, pairs: Optional[Sequence[Tuple[str, str]]] = None,
                     seconds: float = 4.0, seed: int = 9_000_000,
                     progress: bool = False) -> List[dict]:
    """Text-queried separation of freshly rendered 2-instrument mixtures (``synth_music``).

    Each pair's two clips are rendered with FluidSynth from melodies the recipe never uses
    (seeds from ``seed``, far above its splits' seeds), scaled to the same RMS (a 0 dB
    mixture, so "SDRi" means the same for both instruments), summed and separated with each
    label's text query.

    Args:
        model: an :class:`~omnisep_plugin.models.OmniSep` in eval mode.
        encoder: a query encoder with ``embed_text`` (the one the model was trained with).
        pairs: instrument pairs; default: every pair of the corpus's instruments.

    Returns:
        One row per target: ``pair``, ``label``, ``sdr``, ``sdri``, ``si_sdr``, ``si_sdri``,
        and ``selected`` (the estimate is nearer its own instrument than the other one).
    """
    from .data.recipes import synth
    from .scoring import score_pair

    pairs = list(pairs or itertools.combinations(sorted(synth.SYNTH_INSTRUMENTS), 2))
    unknown = sorted({label for pair in pairs for label in pair} - set(synth.SYNTH_INSTRUMENTS))
    if unknown:
        raise ValueError(f"Unknown instrument(s) {unknown}; known: {sorted(synth.SYNTH_INSTRUMENTS)}")
    rows = []
    for k, pair in enumerate(tqdm(pairs, desc="fresh pairs", disable=not progress)):
        sources = [synth.render_clip("synth_music", label, seed + 2 * k + i, seconds)
                   for i, label in enumerate(pair)]
        sources = [0.1 * s / np.sqrt(np.mean(s ** 2)) for s in sources]
        mix = sum(sources)
        with torch.no_grad():
            est = model(torch.from_numpy(mix)[None].float(),
                        encoder.embed_text(list(pair))[None])[0].numpy()
        for i, label in enumerate(pair):
            own = score_pair(sources[i], est[i], mix)
            other = score_pair(sources[1 - i], est[i], None)
            rows.append({"pair": "+".join(pair), "label": label, **own,
                         "selected": own["si_sdr"] > other["si_sdr"]})
    return rows
