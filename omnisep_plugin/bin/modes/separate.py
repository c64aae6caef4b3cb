"""``omnisep separate``: keep what a query describes in each recording.

All or nothing: every output name is checked before any work (an output never replaces an
input, even with ``--force``; an existing ``.wav``, ``.json`` or ``.png`` needs
``--force``); outputs are written under temporary names and renamed together only when
every input has been separated, so a bad second input, a full disk or a SIGTERM leaves no
output of the run (and no temporary file).
"""
from pathlib import Path

import click

from ...config import SEPARATE
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


@cli.command(context_settings=CONTEXT)
@click.argument("mixtures", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", required=True,
              help="OmniSep package (omnisep.pth from training), or 'default' (shipped).")
@click.option("--imagebind", "imagebind_ckpt", type=click.Path(),
              help="Local ImageBind checkpoint: the query encoder.")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Bound audio encoder file: the offline query encoder (MiniLM text + audio).")
@click.option("--text", help="What to keep, in words.")
@click.option("--image", type=click.Path(), help="An image of the source to keep.")
@click.option("--audio", type=click.Path(), help="An audio example of the source to keep.")
@click.option("--weights", help="Composition weights t,i,a of the given positive queries.")
@click.option("--negative-text", help="What to remove, in words.")
@click.option("--negative-image", type=click.Path())
@click.option("--negative-audio", type=click.Path())
@click.option("--alpha", type=float, default=SEPARATE.alpha, help="Negative-query strength (eq. 4).")
@click.option("--query-aug", is_flag=True, help="Map the text onto the Query-Set's labels (eq. 5).")
@click.option("--query-aug-temperature", type=float, default=SEPARATE.query_aug_temperature,
              help="0: the nearest label; > 0: labels weighted by softmax(cos / T).")
@click.option("--query-set", type=click.Path(), help="Label embeddings for --query-aug.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
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
             negative_text, negative_image, negative_audio, alpha, query_aug,
             query_aug_temperature, query_set, out_dir, mono, plot, window, batch_windows,
             overlap, device, force):
    """Keep what the query describes in each MIXTURE; write OUT/<name>_est1.wav + .json.

    Any sample rate (resampled to the model's and back), any channel count (each channel
    separated, or --mono), any length (overlapping windows, bounded memory). All or
    nothing: if any input fails, no output of this run is written. The sidecar holds a
    presence check of the query; "target likely absent" is printed when it fails.
    """
    from tqdm.auto import tqdm

    from ...audio_io import check_input_file
    from ...models import OmniSep
    from ...query import QuerySet
    from ...query.presence import absent_warning, file_presence
    from ...query.spec import QuerySpec, build_query
    from ...separation.files import (plan_outputs, plot_file_spectrograms, separate_file,
                                     write_sidecar)
    from ...utils import StagedWrites

    spec = QuerySpec(text=text, image=image, audio=audio,
                     weights=_parse_weights(weights, text, image, audio),
                     negative_text=negative_text, negative_image=negative_image,
                     negative_audio=negative_audio, alpha=alpha, query_aug=query_aug,
                     query_aug_temperature=query_aug_temperature)
    spec.validate()
    paths = [Path(m) for m in mixtures]
    infos = [check_input_file(p) for p in paths]
    out = Path(out_dir)
    protected = [Path(p) for p in (*spec.files().values(), query_set, imagebind_ckpt,
                                   offline_ckpt, model_path) if p]
    outputs = plan_outputs(paths, out, ("wav", "json", "png") if plot else ("wav", "json"),
                           force=force, protected=protected)
    dev = resolve_device(device)
    model = OmniSep.from_pretrained(model_path).to(dev)
    if model_path == "default" and not (imagebind_ckpt or offline_ckpt):
        from ...pipelines import DEFAULT
        offline_ckpt = DEFAULT.audio_encoder
        query_set = query_set or DEFAULT.query_set
    encoder = load_encoder(imagebind_ckpt, offline_ckpt, dev)
    if encoder.dim != model.query_dim:
        raise ValueError(f"The encoder gives {encoder.dim}-d queries, the model expects "
                         f"{model.query_dim}")
    qs = QuerySet.load(query_set) if query_set else None
    query, record = build_query(encoder, spec, qs)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    warnings = []
    try:
        with StagedWrites() as staged, tqdm(total=sum(i.frames for i in infos), unit="sample",
                                            unit_scale=True, desc="separating") as bar:
            for path, planned in zip(paths, outputs):
                wav_tmp = staged.path(planned["wav"])
                facts = separate_file(model, path, query, Path(wav_tmp), mono=mono,
                                      window=window, batch_windows=batch_windows or None,
                                      overlap=overlap, progress=bar.update, atomic=False)
                facts["output"] = str(planned["wav"])
                facts["presence"] = file_presence(path, wav_tmp, query, encoder)
                warnings.append(absent_warning(path.name, facts["presence"]))
                write_sidecar(staged.path(planned["json"]),
                              {**facts, **record, "model": str(model_path), "device": str(dev),
                               "mono": mono}, atomic=False)
                if plot:
                    plot_file_spectrograms(path, wav_tmp, staged.path(planned["png"]),
                                           atomic=False)
            staged.commit()
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    for warning in filter(None, warnings):
        click.echo(warning, err=True)
    click.echo(f"wrote {len(paths)} estimate(s) to {out}")
