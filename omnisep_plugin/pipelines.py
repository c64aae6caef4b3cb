"""Pretrained pipelines (torchaudio-style bundles): models shipped inside the package,
loaded from local files only (no network).

A bundle knows its files and how to build the model and its query encoder; the model class
knows no shipped file: this module registers each bundle's name with
:func:`omnisep_plugin.registry.register_pretrained`, which is how
``OmniSep.from_pretrained("default")`` finds it.

Three bundles, fp16 files under ``omnisep_plugin/pretrained/<name>``, each with its offline
Query-Net (MiniLM text + a bound audio encoder) and Query-Set:

- ``OMNI`` (``--model omni``): the open-domain network of ``recipes/omni`` (137 classes);
- ``INSTRUMENTS`` (``--model instruments``): the specialist of ``recipes/synth_music``, 11
  instruments rendered from recorded General MIDI samples (the default until session 12);
- ``DEFAULT`` (``--model default``): both behind one
  :class:`~omnisep_plugin.models.RoutedOmniSep`, a query answered by the expert of its
  nearest label (the specialist for its 11 instruments), with OMNI's query side; written by
  :func:`export_routed_bundle` (``omnisep route-bundle``).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import PRESENCE, SEPARATE, PresenceConfig
from .registry import register_pretrained

_HERE = Path(__file__).resolve().parent / "pretrained"


@dataclass(frozen=True)
class OmniSepBundle:
    """Files of a shipped model and how to load them.

    Attributes:
        name: the name ``OmniSep.from_pretrained`` accepts.
        folder: where its files are.
        sample_rate: the rate the model expects (Hz).
        presence_similarity: the query check's similarity threshold
            (:data:`omnisep_plugin.config.PRESENCE`) was calibrated on this model; when
            ``False``, ``omnisep separate`` flags absent targets by the energy cue alone.
        presence: the query check's thresholds for this model (``min_energy_db`` chosen
            on its own dev mixtures where it differs from the default's).
        audio_label: ``omnisep separate`` composes an audio example with the text of its
            nearest label by default (``--audio-label``; measured on this model's dev
            mixtures, ``recipes/omni/local/choose_audio_label.py``).
        query_folder: where its query encoder, Query-Set and text seeds are, when they are
            another bundle's (the routed default uses OMNI's); default :attr:`folder`.
        residual_negative: ``omnisep separate`` gives a single query a second pass that
            removes its first pass's residual (``--residual-negative``,
            :mod:`omnisep_plugin.query.residual`; measured on this model's dev mixtures).
            A routed model's stems follow the shipped model of the expert that answers them.
    """

    name: str
    folder: Path
    sample_rate: int = 16000
    query_folder: Optional[Path] = None
    presence_similarity: bool = True
    presence: PresenceConfig = PRESENCE
    audio_label: bool = False
    residual_negative: bool = False

    @property
    def model(self) -> Path:
        return self.folder / "omnisep.pth"

    @property
    def audio_encoder(self) -> Path:
        return (self.query_folder or self.folder) / "audio_encoder.pth"

    @property
    def query_set(self) -> Path:
        return (self.query_folder or self.folder) / "query_set.pt"

    @property
    def audio_prototypes(self) -> Path:
        """Per label, the mean audio embedding of training clips (optional): where shipped,
        ``omnisep separate`` composes a text query with its nearest label's prototype."""
        return self.folder / "audio_prototypes.pt"

    @property
    def text_queries(self) -> Path:
        """Text embeddings of its labels (seeds the encoder's text cache; optional)."""
        return (self.query_folder or self.folder) / "text_queries.pt"

    @property
    def example(self) -> Path:
        return self.folder / "example_mixture.wav"

    def example_sources(self) -> dict:
        """``{label: path}`` of the example's sources, where the bundle ships them
        (``example_source-<label>.wav``, ``_`` for spaces; they sum to the example)."""
        return {p.stem.split("-", 1)[1].replace("_", " "): p
                for p in sorted(self.folder.glob("example_source-*.wav"))}

    def check(self) -> None:
        missing = [p.name for p in (self.model, self.audio_encoder, self.query_set) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"The shipped model {self.name!r} lacks {missing} in "
                                    f"{self.folder}: reinstall omnisep-plugin")

    def checked_model_path(self) -> Path:
        """:attr:`model`, after :meth:`check`."""
        self.check()
        return self.model

    def get_model(self):
        """The :class:`~omnisep_plugin.models.OmniSep` model, in eval mode, on the CPU."""
        from .models import OmniSep
        return OmniSep.from_pretrained(self.checked_model_path())

    def get_encoder(self, device="cpu"):
        """Its query encoder (text and audio queries)."""
        from .query.offline import OfflineEncoder
        self.check()
        return OfflineEncoder(self.audio_encoder, device=device)

    def queries(self, text=(), audio=(), negative_text=None, negative_audio=None,
                alpha: float = SEPARATE.alpha, stem_negatives: bool = True, encoder=None):
        """The queries ``[n_stems, dim]`` that ``omnisep separate --model NAME`` builds from
        the same options, with this bundle's defaults: a text composed with its nearest
        label's audio prototype where the bundle ships them (``omni``), an audio example
        given alone with its nearest label's text where :attr:`audio_label`, and with
        several stems each removing the others. ``text``/``audio``: a string (one stem) or
        one per stem; ``audio`` names files. For ``model.separate(mix, query=...)``: one
        pass, which for a single stem is the CLI's ``--no-residual-negative`` (:meth:`separate`
        adds the second pass).

        Example (``omni``: 8.0 dB SDRi on held-out recordings against 6.2 for the bare text
        embedding, docs/results.md section 4)::

            stems = OMNI.get_model().separate(mix, query=OMNI.queries(["dog barking", "woman speaking"])[None])
        """
        import torch

        built = self._specs_and_queries(text, audio, negative_text, negative_audio, alpha,
                                        stem_negatives, encoder)[1]
        return torch.stack([b.query for b in built])

    def _specs_and_queries(self, text, audio, negative_text, negative_audio, alpha,
                           stem_negatives, encoder):
        import torch

        from .query import QuerySet
        from .query.spec import QuerySpec, build_queries

        texts = [text] if isinstance(text, str) else list(text)
        audios = [str(audio)] if isinstance(audio, (str, Path)) else [str(a) for a in audio]
        n = max(len(texts), len(audios))
        if not n or (texts and audios and len(texts) != len(audios)):
            raise ValueError("Give a text or an audio example per stem (as many of each)")
        texts, audios = texts or [None] * n, audios or [None] * n
        has_protos = self.audio_prototypes.is_file()
        specs = [QuerySpec(text=t, audio=a, negative_text=negative_text,
                           negative_audio=None if negative_audio is None else str(negative_audio),
                           alpha=alpha,
                           prototypes=has_protos and (t is not None or negative_text is not None),
                           audio_label=self.audio_label and (
                               a is not None or negative_audio is not None))
                 for t, a in zip(texts, audios)]
        protos = QuerySet.load(self.audio_prototypes) if has_protos else None
        built = build_queries(encoder or self.get_encoder(), specs, QuerySet.load(self.query_set),
                              protos, stem_negatives=stem_negatives)
        return specs, built

    def separate(self, wav, text=(), audio=(), negative_text=None, negative_audio=None,
                 alpha: float = SEPARATE.alpha, stem_negatives: bool = True,
                 residual_negative: Optional[bool] = None, model=None, encoder=None):
        """What ``omnisep separate --model NAME`` writes from the same options, for a mixture
        ``[time]`` at :attr:`sample_rate`: estimates ``[n_stems, time]``. The queries of
        :meth:`queries`, and where this bundle takes it (``residual_negative`` ``None``) or
        where asked, the residual negative's second pass for a stem that removes nothing
        else (:func:`omnisep_plugin.query.residual.separate_with_residual_negative`).
        ``model`` / ``encoder``: this bundle's, when already loaded.

        Example (``omni``: the example's dog barking, +7.5 dB SDRi against +5.0 dB for one
        pass of :meth:`queries`)::

            dog = OMNI.separate(mix, text="dog barking")[0]
        """
        import torch

        from .query.residual import separate_with_residual_negative

        encoder = encoder or self.get_encoder()
        model = model or self.get_model()
        specs, built = self._specs_and_queries(text, audio, negative_text, negative_audio,
                                               alpha, stem_negatives, encoder)
        queries = torch.stack([b.query for b in built])
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() != 1:
            raise ValueError(f"Expected a mixture [time], got {tuple(wav.shape)}")
        experts = (model.route_names(queries) if hasattr(model, "route_names")
                   else [None] * len(queries))
        use = residual_negative_stems(residual_negative, specs, [b.record for b in built],
                                      experts, self, encoder, stem_negatives)
        return separate_with_residual_negative(model, encoder, wav, queries,
                                               wanted=torch.tensor(use))


INSTRUMENTS = OmniSepBundle("instruments", _HERE / "instruments")
object.__setattr__(INSTRUMENTS, "__doc__", """The instrument specialist (the default until
session 12): ``clipsep7_small`` OmniSep, 384-d offline queries (MiniLM text, bound audio), trained by
``recipes/synth_music/conf/default.yaml`` on 11 instruments of FluidR3_GM; 16 kHz.""")
# min_energy_db: chosen on the omni recipe's dev mixtures (validation recordings) for text +
# prototype queries, fewest false alarms + misses: `omnisep energy-threshold` in stage 6 of
# recipes/omni (docs/results.md section 4).
# residual_negative: +0.65 dB SDRi on its dev mixtures (text + prototype queries); for
# INSTRUMENTS it changes nothing on synth_music's valid mixtures (-0.05 dB for text), so
# the specialist and the default's stems it answers keep one pass (docs/results.md section 8).
OMNI = OmniSepBundle("omni", _HERE / "omni", presence_similarity=False,
                     presence=PresenceConfig(min_energy_db=-9.1), audio_label=True,
                     residual_negative=True)
object.__setattr__(OMNI, "__doc__", """The open-domain model: ``clipsep7_small`` OmniSep trained by
``recipes/omni`` on 137 classes (speech, General MIDI instruments of two soundfonts, everyday
sounds of Debian data packages), same query space as INSTRUMENTS; 16 kHz; text queries are
composed with their label's audio prototype (``audio_prototypes.pt``), audio examples with
their nearest label's text (``audio_label``), and a single query takes a second pass that
removes its first pass's residual (``residual_negative``). Alone it does not match INSTRUMENTS on that
model's instrument benchmark (docs/results.md section 4), so the default routes those 11
instruments to INSTRUMENTS. The query check flags absent targets by the energy cue alone, at
its own threshold (-9.1 dB): INSTRUMENTS' similarity threshold is not calibrated on it.""")
# The default: both networks behind one model (RoutedOmniSep), a query answered by the
# expert of its nearest label: INSTRUMENTS for its 11 instruments, OMNI for everything else;
# OMNI's query encoder, Query-Set, prototypes and query-check threshold (`omnisep
# route-bundle`, recipes/omni stage 7; docs/results.md section 6).
DEFAULT = OmniSepBundle("default", _HERE / "default", presence_similarity=False,
                        presence=PresenceConfig(min_energy_db=-9.1), audio_label=True,
                        query_folder=_HERE / "omni")
object.__setattr__(DEFAULT, "__doc__", """The embedded default: a RoutedOmniSep of OMNI (137
classes: speech, instruments, everyday sounds) and INSTRUMENTS (its 11 instruments answered
by the specialist), OMNI's query space and query defaults; 16 kHz.""")
BUNDLES = {DEFAULT.name: DEFAULT, OMNI.name: OMNI, INSTRUMENTS.name: INSTRUMENTS}
for _bundle in BUNDLES.values():
    register_pretrained(_bundle.name, _bundle.checked_model_path)


def residual_negative_stems(choice, specs, records, experts, bundle, encoder,
                            stem_negatives=True) -> list:
    """Per stem, whether it takes the residual negative's second pass
    (:mod:`omnisep_plugin.query.residual`): a stem whose query removes nothing else (no
    negative of its own, no other stem removed from it) and is not a bare text embedding (a
    text composed with its prototype, an audio example...: a bare text's second pass gains
    SDR but loses SI-SDR, 8.31 -> 7.92 dB SI-SDRi on recipes/omni's dev mixtures), where
    ``choice`` says so or, left ``None``, where the shipped model that answers it (a routed
    model's expert by name in ``experts``, else ``bundle``) was measured with it.
    ``records``: the stems' build records (:class:`~omnisep_plugin.query.spec.StemQuery`).
    ValueError where it is asked for and ``encoder`` embeds no audio."""
    alone = [not spec.negatives() and (len(specs) == 1 or not stem_negatives)
             and not (set(spec.positives()) == {"text"}
                      and not (record.get("prototype") or {}).get("used"))
             for spec, record in zip(specs, records)]
    if choice is None:
        shipped = [BUNDLES.get(name) if name is not None else bundle for name in experts]
        wanted = [bool(b is not None and b.residual_negative) for b in shipped]
    else:
        wanted = [bool(choice)] * len(specs)
    use = [a and w for a, w in zip(alone, wanted)]
    if any(use) and not encoder.supports("audio"):
        if choice:
            raise ValueError("--residual-negative embeds the first pass's residual: it needs an "
                             "encoder that embeds audio (--offline or --imagebind)")
        return [False] * len(specs)
    return use


def label_texts(labels) -> list:
    """The texts a bundle seeds its text cache with: each label, and with spaces for ``_``."""
    return list(dict.fromkeys(t for lab in labels for t in (lab, lab.replace("_", " "))))


def write_text_seeds(folder) -> Path:
    """Embed :func:`label_texts` of the bundle's Query-Set into ``folder/text_queries.pt``."""
    from .query import QuerySet
    from .query.offline import OfflineEncoder, TextEmbeddingCache

    folder = Path(folder)
    encoder = OfflineEncoder(text_cache=False)
    cache = TextEmbeddingCache(None)
    cache.embed(label_texts(QuerySet.load(folder / "query_set.pt").labels), encoder.embed_text)
    cache.save(folder / "text_queries.pt")
    return folder / "text_queries.pt"


def export_bundle(model_path, audio_encoder_path, query_set_path, example_wav, folder,
                  text_seeds: bool = True, example_sources: Optional[dict] = None,
                  audio_prototypes_path=None) -> dict:
    """Write a shippable bundle: the model and the audio encoder as fp16 packages (loaded
    back as fp32), the Query-Set, its labels' text embeddings (``text_seeds``: needs the
    MiniLM package; a machine without it leaves them out, they are optional), and an
    example mixture (16-bit WAV), with its sources when given (``{label: [time] array}`` at
    the example's rate, written as ``example_source-<label>.wav``), and the labels' audio
    prototypes when given (a Query-Set file of the same labels: the recipe's audio query
    bank). Returns file sizes."""
    import shutil

    import soundfile as sf
    import torch

    from .utils import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for src, dst in ((model_path, "omnisep.pth"), (audio_encoder_path, "audio_encoder.pth")):
        pkg = torch.load(src, map_location="cpu", weights_only=True)
        pkg["state_dict"] = {k: v.half() if v.is_floating_point() else v
                             for k, v in pkg["state_dict"].items()}
        with atomic_write(folder / dst) as tmp:
            torch.save(pkg, tmp)
    shutil.copyfile(query_set_path, folder / "query_set.pt")
    if audio_prototypes_path is not None:
        from .query import QuerySet
        labels = QuerySet.load(query_set_path).labels
        missing = sorted(set(labels) - set(QuerySet.load(audio_prototypes_path).labels))
        if missing:
            raise ValueError(f"The audio prototypes lack {len(missing)} of the Query-Set's "
                             f"labels, e.g. {missing[:3]}")
        shutil.copyfile(audio_prototypes_path, folder / "audio_prototypes.pt")
    wav, sr = sf.read(str(example_wav), dtype="float32")
    with atomic_write(folder / "example_mixture.wav") as tmp:
        sf.write(tmp, wav, sr, subtype="PCM_16", format="WAV")
    for label, source in (example_sources or {}).items():
        with atomic_write(folder / f"example_source-{label.replace(' ', '_')}.wav") as tmp:
            sf.write(tmp, source, sr, subtype="PCM_16", format="WAV")
    if text_seeds:
        write_text_seeds(folder)
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def export_routed_bundle(folder, base: OmniSepBundle, specialists=(),
                         example: Optional[OmniSepBundle] = None) -> dict:
    """Write a bundle whose model is a :class:`~omnisep_plugin.models.RoutedOmniSep`: the
    ``specialists`` answer the labels of their own Query-Sets (``_`` read as a space), the
    ``base`` every other label of its Query-Set, which is the routing table. Its
    ``omnisep.pth`` names the shipped networks instead of repeating their weights (the
    bundle that loads it takes ``base``'s query encoder, Query-Set and text seeds:
    :attr:`OmniSepBundle.query_folder`); it ships ``base``'s audio prototypes of the labels
    ``base`` answers (a text for a specialist's label stays plain, as that specialist was
    trained and measured) and the example (and its sources) of ``example`` (default
    ``base``). Returns file sizes."""
    import shutil

    import torch

    from .models.routed import load_single, referencing_package, routed_from_experts
    from .query import QuerySet
    from .utils import atomic_write

    folder = Path(folder)
    if folder.resolve() in {b.folder.resolve() for b in (base, *specialists)}:
        raise ValueError(f"{folder} is one of the experts' bundles: write the routed one elsewhere")
    for bundle in (base, *specialists):
        bundle.check()
    labels = QuerySet.load(base.query_set)
    route = {lab: base.name for lab in labels.labels}
    for spec in specialists:
        known = {lab.replace("_", " ") for lab in QuerySet.load(spec.query_set).labels}
        missing = sorted(known - set(route))
        if missing:
            raise ValueError(f"{spec.name}'s labels {missing[:3]} are not in {base.name}'s "
                             f"Query-Set, which is the routing table")
        route.update({lab: spec.name for lab in known})
    names = [b.name for b in (base, *specialists)]
    model = routed_from_experts({n: load_single(n, "a routed bundle") for n in names},
                                route, labels.embeddings, labels.labels)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "omnisep.pth") as tmp:
        torch.save(referencing_package(model, names), tmp)
    for old in folder.glob("example_source-*.wav"):
        old.unlink()
    if base.audio_prototypes.is_file():  # only for base's labels: a specialist's text stays plain
        protos = QuerySet.load(base.audio_prototypes)
        keep = [i for i, lab in enumerate(protos.labels) if route.get(lab, base.name) == base.name]
        QuerySet([protos.labels[i] for i in keep], protos.embeddings[keep]).save(
            folder / "audio_prototypes.pt")
    example = example or base
    for path in (example.example, *example.example_sources().values()):
        shutil.copyfile(path, folder / path.name)
    return {p.name: p.stat().st_size for p in folder.iterdir()}
