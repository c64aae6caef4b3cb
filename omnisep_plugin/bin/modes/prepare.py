"""``omnisep prepare <corpus>`` (Lhotse manifests) and ``omnisep render`` (offline corpora)."""
import click

from .cli_base import CONTEXT, cli, prepare, user_errors


def _report(manifests):
    for split, parts in manifests.items():
        cuts = parts["cuts"]
        hours = sum(c.duration for c in cuts) / 3600
        click.echo(f"{split}: {len(cuts)} cuts, {hours:.2f} h")


def prepare_command(func=None, *, source=click.Path(exists=True, file_okay=False), frames=False):
    """``omnisep prepare <name> CORPUS_DIR OUTPUT_DIR`` with the user-error rule; ``frames``
    adds ``--no-frames`` (keep clips without video frames)."""
    if func is None:
        return lambda f: prepare_command(f, source=source, frames=frames)
    if frames:
        func = click.option("--no-frames", is_flag=True,
                            help="Keep clips without video frames (audio and text queries only).")(func)
    func = user_errors(func)
    func = click.argument("output_dir", type=click.Path())(func)
    func = click.argument("corpus_dir", type=source)(func)
    return prepare.command(context_settings=CONTEXT)(func)


@prepare_command(frames=True)
def music(corpus_dir, output_dir, no_frames):
    """MUSIC solo videos -> music_{recordings,supervisions,cuts}_{split}.jsonl.gz."""
    from ...data.recipes import prepare_music
    _report(prepare_music(corpus_dir, output_dir, require_frames=not no_frames))


@prepare_command(frames=True)
@click.option("--clean-list", "clean_lists", multiple=True, metavar="SPLIT=FILE",
              help="A fixed clean test list (clip ids, one per line) as its own split.")
@click.option("--keep-instruments", is_flag=True, help="Keep the musical-instrument classes.")
@click.option("--descriptions", type=click.Path(exists=True, dir_okay=False),
              help="CSV label,description of free-text class descriptions.")
@click.option("--valid-fraction", default=0.05, type=click.FloatRange(0, 1, max_open=True),
              help="Share of train clips held out as valid.")
def vggsound(corpus_dir, output_dir, clean_lists, keep_instruments, descriptions, valid_fraction,
             no_frames):
    """VGGSound -> vggsound_{recordings,supervisions,cuts}_{split}.jsonl.gz."""
    from ...data.recipes import prepare_vggsound
    lists = {}
    for item in clean_lists:
        if "=" not in item:
            raise click.BadParameter(f"expected SPLIT=FILE, got {item!r}", param_hint="--clean-list")
        split, path = item.split("=", 1)
        lists[split] = path
    _report(prepare_vggsound(corpus_dir, output_dir, clean_lists=lists,
                             drop_instruments=not keep_instruments,
                             description_table=descriptions, valid_fraction=valid_fraction,
                             require_frames=not no_frames))


@prepare_command
def synth(corpus_dir, output_dir):
    """A rendered synth_music / synth_sfx corpus -> <corpus>_{recordings,...}_{split}.jsonl.gz."""
    from ...data.recipes.synth import prepare_synth
    _report(prepare_synth(corpus_dir, output_dir))


@prepare_command(source=click.Path(exists=True))
@click.option("--name", default="custom", help="Corpus name: <name>_cuts_<split>.jsonl.gz.")
def custom(corpus_dir, output_dir, name):
    """Your own sounds: CORPUS_DIR/<label>/*.wav (a folder per label) or a CSV with a
    header path,label[,text] -> <name>_{recordings,supervisions,cuts}_{split}.jsonl.gz
    (10 % test, 10 % valid per label)."""
    from ...data.recipes.custom import prepare_custom
    _report(prepare_custom(corpus_dir, output_dir, name=name))


@cli.command(context_settings=CONTEXT)
@click.argument("corpus", type=click.Choice(["synth_music", "synth_sfx"]))
@click.argument("corpus_dir", type=click.Path(file_okay=False))
@click.option("--train", "n_train", default=150, type=click.IntRange(0), help="Clips per class in train.")
@click.option("--valid", "n_valid", default=10, type=click.IntRange(0), help="Clips per class in valid.")
@click.option("--test", "n_test", default=20, type=click.IntRange(0), help="Clips per class in test.")
@click.option("--seconds", default=6.0, type=click.FloatRange(0, min_open=True), help="Clip length.")
@click.option("--labels", help="Comma list of classes (default: all of the corpus).")
@click.option("-j", "--num-jobs", default=2, type=click.IntRange(1))
@user_errors(extra=(RuntimeError,))  # RuntimeError: FluidSynth or its sound font missing
def render(corpus, corpus_dir, n_train, n_valid, n_test, seconds, labels, num_jobs):
    """Render an offline corpus with FluidSynth from recorded GM samples (resumable)."""
    from ...data.recipes.synth import render_corpus
    stats = render_corpus(corpus_dir, corpus, labels.split(",") if labels else None,
                          {"train": n_train, "valid": n_valid, "test": n_test}, seconds,
                          num_jobs)
    click.echo(f"rendered {stats['rendered_s']:.0f} s of audio in {stats['wall_s']:.1f} s "
               f"({stats['x_real_time']:.0f}x real time)")
