"""``omnisep separate``: keep what a query describes in each recording.

All or nothing: every output name is checked before any work (an output never replaces an
input, even with ``--force``; an existing ``.wav``, ``.json`` or ``.png`` needs
``--force``); outputs are written under temporary names and renamed together only when
every input has been separated, so a bad second input, a full disk or a SIGTERM leaves no
output of the run (and no temporary file).
"""
from pathlib import Path

import click

from ...config import BACKENDS, PRESENCE, SEPARATE
from .cli_base import CONTEXT, cli, load_encoder, resolve_device, user_errors


def _parse_weights(weights, text, image, audio):
    if weights is None:
        return {}
    try:
        values = [float(w) for w in weights.split(",")]
    except ValueError:
        raise ValueError(f"--weights takes three numbers t,i,a, got {weights!r}") from None
    if len(values) != 3:
        raise ValueError(f"--weights takes three numbers t,i,a, got {weights!r}")
    given = {"text": text, "image": image, "audio": audio}
    return {m: w for (m, w) in zip(("text", "image", "audio"), values) if given[m] is not None}


def _stems(text, image, audio):
    """``(text, image, audio)`` per stem: the i-th value of every repeated query option."""
    given = {m: v for m, v in (("text", text), ("image", image), ("audio", audio)) if v}
    n = max((len(v) for v in given.values()), default=1)
    uneven = {m: len(v) for m, v in given.items() if len(v) != n}
    if uneven:
        counts = ", ".join(f"--{m} {len(v)}x" for m, v in given.items())
        raise ValueError(f"Each stem takes one value of every query option given ({counts}): "
                         "repeat them the same number of times")
    return [tuple(given[m][i] if m in given else None for m in ("text", "image", "audio"))
            for i in range(n)]


def _elsewhere(text: str, encoder, model_path: str):
    """Where a text far from a model's labels is known: the default (whose labels are the
    open-domain network's), when it is not the model in use and one of its labels is near
    the text (same query space)."""
    from ...pipelines import DEFAULT, OMNI
    from ...query import QuerySet
    from ...query.spec import nearest_label

    if model_path in (OMNI.name, DEFAULT.name) or not OMNI.query_set.is_file():
        return None
    labels = QuerySet.load(OMNI.query_set)
    if labels.dim != encoder.dim:
        return None
    near = nearest_label(encoder.embed_text([text])[0], labels)
    if near["similarity"] < SEPARATE.vocabulary_min_similarity:
        return None
    return f"--model default knows {near['label']!r} (cosine {near['similarity']:.2f})"


def _check_groups(experts, bundle, default, device) -> list:
    """``[(encoder, config), stem indices]`` of the query check: ``default`` for every stem,
    except the stems a shipped routed model gives to an expert that is itself shipped (the
    default's ``instruments``), checked with that model's encoder and thresholds. Each group
    is one check of the mixture."""
    from ...pipelines import BUNDLES

    groups = {}
    for i, name in enumerate(experts):
        expert = BUNDLES.get(name) if bundle is not None and name is not None else None
        groups.setdefault(None if expert is None or expert is bundle else name, []).append(i)
    return [(default if name is None else
             ((BUNDLES[name].get_encoder(device) if BUNDLES[name].presence_similarity else None),
              BUNDLES[name].presence), stems)
            for name, stems in groups.items()]


@cli.command(context_settings=CONTEXT)
@click.argument("mixtures", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", required=True,
              help="OmniSep package (omnisep.pth from training), or a shipped model: 'default' "
                   "(open-domain, its 11 best-known instruments answered by the specialist), 'omni' "
                   "(the open-domain network alone) or 'instruments' (the specialist alone).")
@click.option("--imagebind", "imagebind_ckpt", type=click.Path(),
              help="Local ImageBind checkpoint: the query encoder.")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Bound audio encoder file: the offline query encoder (MiniLM text + audio).")
@click.option("--text", multiple=True, help="What to keep, in words (repeat: one stem each).")
@click.option("--image", type=click.Path(), multiple=True,
              help="An image of the source to keep (repeat: one stem each).")
@click.option("--audio", type=click.Path(), multiple=True,
              help="An audio example of the source to keep (repeat: one stem each).")
@click.option("--weights", help="Composition weights t,i,a of the given positive queries.")
@click.option("--negative-text", help="What to remove, in words.")
@click.option("--negative-image", type=click.Path())
@click.option("--negative-audio", type=click.Path())
@click.option("--alpha", type=float, default=SEPARATE.alpha, help="Negative-query strength (eq. 4).")
@click.option("--stem-negatives/--no-stem-negatives", default=True,
              help="With several stems, each stem's query removes the other stems' queries "
                   "(eq. 4 with --alpha; +1.1 to +1.2 dB SDRi on the test tables). Default: on.")
@click.option("--query-aug", is_flag=True, help="Map the text onto the Query-Set's labels (eq. 5).")
@click.option("--query-aug-temperature", type=float, default=SEPARATE.query_aug_temperature,
              help="0: the nearest label; > 0: labels weighted by softmax(cos / T).")
@click.option("--query-set", type=click.Path(), help="Label embeddings for --query-aug.")
@click.option("--prototypes/--no-prototypes", default=None,
              help="Compose a text query with the audio prototype of its nearest label (the mean "
                   "audio embedding of that label's training clips). Default: on with a text "
                   "query where there are prototypes (--audio-prototypes, or a shipped model "
                   "that ships them: 'omni').")
@click.option("--audio-prototypes", type=click.Path(),
              help="The labels' audio prototypes (a Query-Set file); giving it turns --prototypes on.")
@click.option("--audio-label/--no-audio-label", default=None,
              help="Compose an audio example given alone (no text or image) with the text of its "
                   "nearest Query-Set label (+0.5 dB SDRi for the label's 5-clip query, +1.0 dB for "
                   "one clip on the omni test set). Default: on for a shipped model measured with "
                   "it ('omni') when its Query-Set is in use.")
@click.option("--residual-negative/--no-residual-negative", default=None,
              help="A single query (no negative of its own; not a bare text: a text composed "
                   "with its prototype, an audio example...) takes a second pass that removes "
                   "what its first pass left in the residual (eq. 4 with the residual's audio "
                   f"embedding, alpha {SEPARATE.residual_alpha:g}): +0.5 to +0.6 dB SDRi for omni's "
                   "text queries on its held-out test sets, for one more U-Net pass. Default: "
                   "on for a "
                   "shipped model measured with it ('omni', and the stems 'default' gives to it).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--remove", is_flag=True,
              help="Write everything but the query (<name>_residual.wav) instead of it.")
@click.option("--backend", default=SEPARATE.backend, type=click.Choice(("auto",) + BACKENDS),
              help="What runs the U-Net (onnxruntime: CPU only; see omnisep export). auto: "
              f"onnxruntime on the CPU for >= {SEPARATE.onnx_min_seconds:g} s of audio, else eager.")
@click.option("--mono", is_flag=True, help="Average the channels first (default: per channel).")
@click.option("--plot", is_flag=True, help="Also write a spectrogram PNG per input.")
@click.option("--window", default=SEPARATE.window, type=click.IntRange(1024, 1 << 22),
              help="Window length in samples at the model's rate.")
@click.option("--batch-windows", default=0, type=click.IntRange(0, 1024),
              help="Windows per forward pass (0: 8 on GPU, 1 on CPU).")
@click.option("--overlap", default=SEPARATE.overlap, type=click.FloatRange(0, 0.5, min_open=True),
              help="Cross-faded share of each window (0, 0.5].")
@click.option("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: GPU if present).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (never an input).")
@user_errors
def separate(mixtures, model_path, imagebind_ckpt, offline_ckpt, text, image, audio, weights,
             negative_text, negative_image, negative_audio, alpha, stem_negatives, query_aug,
             query_aug_temperature, query_set, prototypes, audio_prototypes, audio_label,
             residual_negative, out_dir, remove,
             backend, mono, plot, window, batch_windows, overlap, device, force):
    """Keep what the query describes in each MIXTURE; write OUT/<name>_est1.wav + .json.

    A repeated query option (--text cello --text clarinet) gives one stem per query,
    <name>_est1.wav, <name>_est2.wav..., from one U-Net pass; with several modalities,
    stem i composes the i-th value of each, and each stem removes the others
    (--no-stem-negatives: not). --remove writes <name>_residual.wav: the
    mixture minus the estimate (the complementary mask). Any sample rate (resampled to the model's and back), any channel count (each channel
    separated, or --mono), any length (overlapping windows, bounded memory). All or
    nothing: if any input fails, no output of this run is written. The sidecar holds a
    presence check of the query; "target likely absent" is printed when it fails.
    """
    import torch
    from tqdm.auto import tqdm

    from ...audio_io import check_input_file
    from ...models import OmniSep
    from ...pipelines import BUNDLES, residual_negative_stems
    from ...query import QuerySet
    from ...query.presence import absent_warning, file_presence
    from ...query.residual import file_residual_queries, same_experts
    from ...query.spec import QuerySpec, build_queries, vocabulary_warning
    from ...separation.backends import resolve_backend, separator_for
    from ...separation.files import (plan_outputs, plot_file_spectrograms, separate_file,
                                     write_sidecar)
    from ...utils import StagedWrites

    bundle = BUNDLES.get(model_path)
    if bundle is not None and not (imagebind_ckpt or offline_ckpt):
        offline_ckpt = bundle.audio_encoder
        query_set = query_set or bundle.query_set
        if audio_prototypes is None and bundle.audio_prototypes.is_file():
            audio_prototypes = bundle.audio_prototypes
    if prototypes is None:  # on wherever there are prototypes and a text to compose them with
        prototypes = bool(audio_prototypes and (text or negative_text))
    if audio_label is None:  # on for a shipped model measured with it, given an audio example
        audio_label = bool(bundle is not None and bundle.audio_label and query_set
                           and (audio or negative_audio))
    specs = [QuerySpec(text=t, image=i, audio=a, weights=_parse_weights(weights, t, i, a),
                       negative_text=negative_text, negative_image=negative_image,
                       negative_audio=negative_audio, alpha=alpha, query_aug=query_aug,
                       query_aug_temperature=query_aug_temperature, prototypes=prototypes,
                       audio_label=audio_label)
             for t, i, a in _stems(text, image, audio)]
    for spec in specs:
        spec.validate()
    if remove and len(specs) > 1:
        raise ValueError("--remove takes one query (it writes one residual per input)")
    stems = ["residual"] if remove else [f"est{i + 1}" for i in range(len(specs))]
    paths = [Path(m) for m in mixtures]
    infos = [check_input_file(p) for p in paths]
    out = Path(out_dir)
    protected = [Path(p) for p in (*[f for s in specs for f in s.files().values()], query_set,
                                   audio_prototypes, imagebind_ckpt, offline_ckpt, model_path) if p]
    outputs = plan_outputs(paths, out, ("wav", "json", "png") if plot else ("wav", "json"),
                           force=force, protected=protected, stems=stems)
    dev = resolve_device(device)
    model = OmniSep.from_pretrained(model_path).to(dev)
    encoder = load_encoder(imagebind_ckpt, offline_ckpt, dev)
    # the similarity cue only where its threshold was calibrated for the model
    presence_encoder = None if bundle is not None and not bundle.presence_similarity else encoder
    presence_config = bundle.presence if bundle is not None else PRESENCE
    if encoder.dim != model.query_dim:
        raise ValueError(f"The encoder gives {encoder.dim}-d queries, the model expects "
                         f"{model.query_dim}")
    qs = QuerySet.load(query_set) if query_set else None
    protos = QuerySet.load(audio_prototypes) if audio_prototypes and prototypes else None
    built = build_queries(encoder, specs, qs, protos, stem_negatives=stem_negatives)
    for spec, stem in zip(specs, built):
        warning = stem.record.get("nearest_label") and vocabulary_warning(
            spec.text, stem.record["nearest_label"])
        if warning:  # the shipped model that knows the text, looked up only now
            elsewhere = _elsewhere(spec.text, encoder, model_path)
            click.echo(f"Warning: {warning}" + (f"; {elsewhere}" if elsewhere else ""), err=True)
    queries = torch.stack([b.query for b in built])  # [n_stems, dim]
    # a routed model (the default) names the expert that answers each stem; a shipped one's
    # stems are checked as each expert's own shipped model checks them
    experts = model.route_names(queries) if hasattr(model, "route_names") else [None] * len(built)
    check_groups = _check_groups(experts, bundle, (presence_encoder, presence_config), dev)
    two_pass = residual_negative_stems(residual_negative, specs, [b.record for b in built],
                                       experts, bundle, encoder, stem_negatives)
    backend = resolve_backend(backend, dev, sum(i.frames / i.samplerate for i in infos))
    separator = separator_for(model, backend)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    warnings = []
    try:
        passes = 2 if any(two_pass) else 1
        with StagedWrites() as staged, tqdm(total=passes * sum(i.frames for i in infos),
                                            unit="sample", unit_scale=True,
                                            desc="separating") as bar:
            for path, info, planned in zip(paths, infos, outputs):
                wav_tmps = [Path(staged.path(p["wav"])) for p in planned]
                run = dict(mono=mono, window=window, batch_windows=batch_windows or None,
                           overlap=overlap, progress=bar.update, atomic=False, residual=remove)
                facts = separate_file(separator, path, queries, wav_tmps, **run)
                second = [False] * len(built)
                if passes == 2:  # the residual negative: a second pass where it applies
                    refined, changed = file_residual_queries(
                        path, wav_tmps, queries, encoder, outputs_are_residuals=remove,
                        wanted=torch.tensor(two_pass))
                    second = (changed & same_experts(model, queries, refined)).tolist()
                    again = [i for i, s in enumerate(second) if s]
                    if again:  # only those stems' files are separated and written again
                        facts["seconds"] += separate_file(
                            separator, path, refined[again].cpu(),
                            [wav_tmps[i] for i in again], **run)["seconds"]
                    else:
                        bar.update(info.frames)
                # The presence check reads the estimates; a residual is not one.
                checks = [None] * len(built)
                for checker, group in ([] if remove else check_groups):
                    found = file_presence(path, [wav_tmps[i] for i in group],
                                          torch.stack([built[i].positive for i in group]), *checker)
                    for i, record in zip(group, found):
                        checks[i] = record
                for p, wav_tmp, (_, _, record), presence, expert, twice in zip(
                        planned, wav_tmps, built, checks, experts, second):
                    name = path.name if len(built) == 1 else f"{path.name} ({Path(p['wav']).name})"
                    warnings.append(presence and absent_warning(name, presence))
                    write_sidecar(staged.path(p["json"]),
                                  {**facts, "output": str(p["wav"]), **record, "presence": presence,
                                   "model": str(model_path), "expert": expert,
                                   "residual_negative": SEPARATE.residual_alpha if twice else None,
                                   "device": str(dev), "mono": mono,
                                   "backend": backend, "stems": len(built)}, atomic=False)
                    if plot:
                        plot_file_spectrograms(path, wav_tmp, staged.path(p["png"]),
                                               atomic=False)
            staged.commit()
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    for warning in filter(None, warnings):
        click.echo(warning, err=True)
    click.echo(f"wrote {len(paths) * len(stems)} estimate(s) to {out}")
