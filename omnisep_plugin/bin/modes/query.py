"""Query-Net commands: ``omnisep embed`` (cache the queries of every cut), ``bind-audio``
(the offline audio encoder) and ``export-shar`` (embedded cuts as Lhotse Shar shards)."""
from pathlib import Path

import click

from .cli_base import CONTEXT, cli, load_encoder, resolve_device, user_errors


@cli.command(context_settings=CONTEXT)
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_dir", type=click.Path())
@click.option("--imagebind", "imagebind_ckpt", type=click.Path(),
              help="Local ImageBind checkpoint (imagebind_huge.pth).")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Bound audio encoder file: use the offline Query-Net (MiniLM text + audio).")
@click.option("--batch-size", default=16, type=click.IntRange(1))
@click.option("--bank-size", default=5, type=click.IntRange(1),
              help="Training clips averaged per class for the audio query bank (S).")
@click.option("--seed", default=0)
@click.option("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto.")
@user_errors
def embed(cuts_path, output_dir, imagebind_ckpt, offline_ckpt, batch_size, bank_size, seed, device):
    """Embed the text/image/audio queries of every cut once (resumable).

    Writes OUTPUT_DIR/<name>_embedded.jsonl.gz, the arrays under OUTPUT_DIR/arrays, and the
    audio query bank and Query-Set beside them.
    """
    from ...data import load_cuts

    from ...data.embed import embed_cuts, write_query_banks
    from ...utils import atomic_write

    encoder = load_encoder(imagebind_ckpt, offline_ckpt, resolve_device(device))
    output_dir = Path(output_dir)
    cuts = load_cuts(cuts_path)
    name = Path(cuts_path).name.split(".")[0]
    embedded = embed_cuts(cuts, encoder, output_dir / "arrays", batch_size=batch_size)
    out = output_dir / f"{name}_embedded.jsonl.gz"
    with atomic_write(out) as tmp:
        embedded.to_file(tmp)
    paths = write_query_banks(embedded, encoder, output_dir, name, bank_size, seed)
    click.echo(f"wrote {out}" + "".join(f", {p}" for p in paths.values()))


@cli.command("bind-audio", context_settings=CONTEXT)
@click.argument("train_cuts", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--valid-cuts", type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", default=600, type=click.IntRange(1))
@click.option("--batch-size", default=32, type=click.IntRange(1))
@click.option("--seed", default=0)
@user_errors
def bind_audio(train_cuts, output, valid_cuts, steps, batch_size, seed):
    """Train an audio encoder into MiniLM's text space (the offline Query-Net's audio side)."""
    from ...data import load_cuts

    from ...query.offline import OfflineEncoder
    from ...training.binder import binding_accuracy, train_audio_binder
    text = OfflineEncoder()
    binder = train_audio_binder(load_cuts(train_cuts), text, steps=steps,
                                batch_size=batch_size, seed=seed)
    binder.save(output)
    msg = f"wrote {output}"
    if valid_cuts:
        acc = binding_accuracy(binder, load_cuts(valid_cuts), text)
        msg += f"; valid clips nearest to their own label's text: {100 * acc:.1f} %"
    click.echo(msg)


@cli.command("export-shar", context_settings=CONTEXT)
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_dir", type=click.Path())
@click.option("--shard-size", default=1000, type=click.IntRange(1), help="Cuts per shard.")
@user_errors
def export_shar_cmd(cuts_path, output_dir, shard_size):
    """Write embedded cuts as Lhotse Shar shards for streaming multi-node training.

    Read back with ``CutSet.from_shar(in_dir=OUTPUT_DIR)``.
    """
    from ...data import load_cuts

    from ...data.mixtures import export_shar
    shards = export_shar(load_cuts(cuts_path), output_dir, shard_size)
    click.echo(f"wrote {len(shards['cuts'])} shards to {output_dir}")
