"""``omnisep`` command line: corpus preparation, query embedding, scoring.

Examples::

    omnisep prepare music CORPUS_DIR data/manifests
    omnisep prepare vggsound CORPUS_DIR data/manifests --clean-list test_clean=clean.txt
    omnisep embed data/manifests/music_cuts_train.jsonl.gz data/embedded \\
        --imagebind /path/to/imagebind_huge.pth --bank-size 1
    omnisep export-shar data/embedded/music_cuts_train_embedded.jsonl.gz data/shar
    omnisep score results/ --references refs/ --estimates est/ --mixtures mix/
"""
import logging
from pathlib import Path

import click

CONTEXT = dict(show_default=True, help_option_names=["-h", "--help"])


class BadInput(click.ClickException):
    """A user error: one line on stderr, exit code 2, nothing written."""
    exit_code = 2


@click.group(context_settings=CONTEXT)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose):
    """OmniSep: omni-modal query-based sound separation."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")


@cli.group(context_settings=CONTEXT)
def prepare():
    """Prepare corpus manifests (Lhotse)."""


@prepare.command(context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path())
def music(corpus_dir, output_dir):
    """MUSIC solo videos -> music_{recordings,supervisions,cuts}_{split}.jsonl.gz."""
    from ..data.recipes import prepare_music
    _report(prepare_music(corpus_dir, output_dir))


@prepare.command(context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path())
@click.option("--clean-list", "clean_lists", multiple=True, metavar="SPLIT=FILE",
              help="A fixed clean test list (clip ids, one per line) as its own split.")
@click.option("--keep-instruments", is_flag=True, help="Keep the musical-instrument classes.")
@click.option("--descriptions", type=click.Path(exists=True, dir_okay=False),
              help="CSV label,description of free-text class descriptions.")
@click.option("--valid-fraction", default=0.05, help="Share of train clips held out as valid.")
def vggsound(corpus_dir, output_dir, clean_lists, keep_instruments, descriptions, valid_fraction):
    """VGGSound -> vggsound_{recordings,supervisions,cuts}_{split}.jsonl.gz."""
    from ..data.recipes import prepare_vggsound
    lists = {}
    for item in clean_lists:
        if "=" not in item:
            raise click.BadParameter(f"expected SPLIT=FILE, got {item!r}", param_hint="--clean-list")
        split, path = item.split("=", 1)
        lists[split] = path
    _report(prepare_vggsound(corpus_dir, output_dir, clean_lists=lists,
                             drop_instruments=not keep_instruments,
                             description_table=descriptions, valid_fraction=valid_fraction))


@prepare.command(context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path())
def synth(corpus_dir, output_dir):
    """A rendered synth_music / synth_sfx corpus -> <corpus>_{recordings,...}_{split}.jsonl.gz."""
    from ..data.recipes.synth import prepare_synth
    try:
        _report(prepare_synth(corpus_dir, output_dir))
    except FileNotFoundError as err:
        raise BadInput(str(err))


@prepare.command("omni", context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path())
def omni_manifests(corpus_dir, output_dir):
    """A built omni corpus -> omni_{recordings,supervisions,cuts}_{split}.jsonl.gz."""
    from ..data.recipes.omni import prepare_omni
    try:
        _report(prepare_omni(corpus_dir, output_dir))
    except (FileNotFoundError, ValueError) as err:
        raise BadInput(str(err))


def _split_counts(text: str) -> dict:
    try:
        return {k: int(v) for k, v in (item.split("=") for item in text.split(",") if item)}
    except ValueError:
        raise BadInput(f"Expected SPLIT=N,SPLIT=N..., got {text!r}")


@cli.command("build-omni", context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(file_okay=False))
@click.option("--cache-dir", default="~/.cache/omnisep/omni", show_default=True,
              help="Where the Debian packages are downloaded and unpacked (reused).")
@click.option("--instrument-clips", default="train=12,valid=1,test=2", help="Clips per instrument "
              "and soundfont in each split (the held-out soundfont: --loso-clips).")
@click.option("--loso-clips", default=3, help="test_loso clips per instrument (held-out soundfont).")
@click.option("--heldout-soundfont", default="sf_gmbank", help="Soundfont kept out of training "
              "(fluidr3_gm, timgm6mb, sf_gmbank).")
@click.option("--speech-clips", default="train=40,valid=2,test=6", help="Clips per voice and split.")
@click.option("--max-train-clips", default=40, help="Training clips per everyday class at most.")
@click.option("--seconds", default=6.0, help="Clip length.")
@click.option("--sounds", type=click.Path(exists=True, dir_okay=False),
              help="The curated file table (default: the package's omni_tables/sounds.tsv).")
@click.option("-j", "--num-jobs", default=2)
def build_omni(corpus_dir, cache_dir, instrument_clips, loso_clips, heldout_soundfont,
               speech_clips, max_train_clips, seconds, sounds, num_jobs):
    """Fetch the Debian packages and build the open-domain corpus (resumable)."""
    from ..data.recipes import omni
    plan = omni.CorpusPlan(seconds=seconds, instrument_clips=_split_counts(instrument_clips),
                           loso_clips=loso_clips, heldout_soundfont=heldout_soundfont,
                           speech_clips=_split_counts(speech_clips),
                           max_train_clips_per_class=max_train_clips)
    try:
        stats = omni.build_omni_corpus(corpus_dir, Path(cache_dir).expanduser(), plan,
                                       sounds=omni.load_sounds(sounds) if sounds else None,
                                       num_jobs=num_jobs)
    except (RuntimeError, ValueError) as err:
        raise BadInput(str(err))
    click.echo(f"{stats['classes']} classes, clips per split {stats['clips']}, {stats['wall_s']:.0f} s")


@cli.command(context_settings=CONTEXT)
@click.argument("corpus", type=click.Choice(["synth_music", "synth_sfx"]))
@click.argument("corpus_dir", type=click.Path(file_okay=False))
@click.option("--train", "n_train", default=150, help="Clips per class in train.")
@click.option("--valid", "n_valid", default=10, help="Clips per class in valid.")
@click.option("--test", "n_test", default=20, help="Clips per class in test.")
@click.option("--seconds", default=6.0, help="Clip length.")
@click.option("--labels", help="Comma list of classes (default: all of the corpus).")
@click.option("-j", "--num-jobs", default=2)
def render(corpus, corpus_dir, n_train, n_valid, n_test, seconds, labels, num_jobs):
    """Render an offline corpus with FluidSynth from recorded GM samples (resumable)."""
    from ..data.recipes.synth import render_corpus
    try:
        stats = render_corpus(corpus_dir, corpus, labels.split(",") if labels else None,
                              {"train": n_train, "valid": n_valid, "test": n_test}, seconds,
                              num_jobs)
    except (RuntimeError, ValueError) as err:
        raise BadInput(str(err))
    click.echo(f"rendered {stats['rendered_s']:.0f} s of audio in {stats['wall_s']:.1f} s "
               f"({stats['x_real_time']:.0f}x real time)")


@cli.command("bind-audio", context_settings=CONTEXT)
@click.argument("train_cuts", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--valid-cuts", type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", default=600)
@click.option("--batch-size", default=32)
@click.option("--seed", default=0)
def bind_audio(train_cuts, output, valid_cuts, steps, batch_size, seed):
    """Train an audio encoder into MiniLM's text space (the offline Query-Net's audio side)."""
    from lhotse import CutSet

    from ..query.offline import OfflineEncoder, binding_accuracy, train_audio_binder
    text = OfflineEncoder()
    binder = train_audio_binder(CutSet.from_file(train_cuts), text, steps=steps,
                                batch_size=batch_size, seed=seed)
    binder.save(output)
    msg = f"wrote {output}"
    if valid_cuts:
        acc = binding_accuracy(binder, CutSet.from_file(valid_cuts), text)
        msg += f"; valid clips nearest to their own label's text: {100 * acc:.1f} %"
    click.echo(msg)


@cli.command("export-bundle", context_settings=CONTEXT)
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--audio-encoder", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--query-set", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--example-cuts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Cuts to build the example mixture from (e.g. the test split).")
@click.option("--example-labels", default="cello,clarinet", help="Classes mixed in the example.")
def export_bundle_cmd(output_dir, model_path, audio_encoder, query_set, example_cuts, example_labels):
    """Package a trained model as a shippable bundle (fp16) with an example mixture."""
    import tempfile

    import soundfile as sf
    from lhotse import CutSet

    from ..data.embed import cut_label
    from ..pretrained import export_bundle
    labels = example_labels.split(",")
    cuts = sorted(CutSet.from_file(example_cuts), key=lambda c: c.id)
    chosen = [next((c for c in cuts if cut_label(c) == lab), None) for lab in labels]
    if None in chosen:
        raise BadInput(f"No cut of {labels[chosen.index(None)]!r} in {example_cuts}")
    sources = [c.load_audio()[0] for c in chosen]
    n = min(len(s) for s in sources)
    mix = sum(0.45 * s[:n] / abs(s[:n]).max() for s in sources)
    with tempfile.TemporaryDirectory() as tmp:
        example = f"{tmp}/example.wav"
        sf.write(example, mix, 16000, subtype="FLOAT")
        sizes = export_bundle(model_path, audio_encoder, query_set, example, output_dir)
    click.echo(", ".join(f"{k} {v / 2**20:.2f} MB" for k, v in sorted(sizes.items())))


def load_encoder(imagebind=None, offline=None, device="cpu"):
    """The query encoder the options name: ImageBind (``--imagebind``) or the offline one
    (``--offline``: MiniLM text + a bound audio encoder file)."""
    from ..query import ImageBindEncoder
    from ..query.offline import OfflineEncoder
    if imagebind and offline:
        raise ValueError("Pass one query encoder: --imagebind or --offline, not both")
    if imagebind:
        return ImageBindEncoder(imagebind, device=device)
    if offline:
        return OfflineEncoder(offline, device=device)
    raise ValueError("Pass the query encoder: --imagebind PATH or --offline PATH")


def _report(manifests):
    for split, parts in manifests.items():
        cuts = parts["cuts"]
        hours = sum(c.duration for c in cuts) / 3600
        click.echo(f"{split}: {len(cuts)} cuts, {hours:.2f} h")


@cli.command(context_settings=CONTEXT)
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_dir", type=click.Path())
@click.option("--imagebind", "imagebind_ckpt", type=click.Path(),
              help="Local ImageBind checkpoint (imagebind_huge.pth).")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Bound audio encoder file: use the offline Query-Net (MiniLM text + audio).")
@click.option("--batch-size", default=16)
@click.option("--bank-size", default=5,
              help="Training clips averaged per class for the audio query bank (S).")
@click.option("--seed", default=0)
@click.option("--device", default="cpu")
def embed(cuts_path, output_dir, imagebind_ckpt, offline_ckpt, batch_size, bank_size, seed, device):
    """Embed the text/image/audio queries of every cut once (resumable).

    Writes OUTPUT_DIR/<name>_embedded.jsonl.gz, the arrays under OUTPUT_DIR/arrays, and the
    audio query bank and Query-Set beside them.
    """
    from lhotse import CutSet

    from ..data.embed import embed_cuts, write_query_banks
    from ..utils import atomic_write

    try:
        encoder = load_encoder(imagebind_ckpt, offline_ckpt, device)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err))
    output_dir = Path(output_dir)
    cuts = CutSet.from_file(cuts_path)
    name = Path(cuts_path).name.split(".")[0]
    embedded = embed_cuts(cuts, encoder, output_dir / "arrays", batch_size=batch_size)
    out = output_dir / f"{name}_embedded.jsonl.gz"
    with atomic_write(out) as tmp:
        embedded.to_file(tmp)
    paths = write_query_banks(embedded, encoder, output_dir, name, bank_size, seed)
    click.echo(f"wrote {out}" + "".join(f", {p}" for p in paths.values()))


@cli.command("export-shar", context_settings=CONTEXT)
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_dir", type=click.Path())
@click.option("--shard-size", default=1000, help="Cuts per shard.")
def export_shar_cmd(cuts_path, output_dir, shard_size):
    """Write embedded cuts as Lhotse Shar shards for streaming multi-node training.

    Read back with ``CutSet.from_shar(in_dir=OUTPUT_DIR)``.
    """
    from lhotse import CutSet

    from ..data.mixtures import export_shar
    shards = export_shar(CutSet.from_file(cuts_path), output_dir, shard_size)
    click.echo(f"wrote {len(shards['cuts'])} shards to {output_dir}")


@cli.command(context_settings=CONTEXT)
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False),
              help="CSV id,kind,reference,estimate[,mixture].")
@click.option("--references", type=click.Path(exists=True, file_okay=False))
@click.option("--estimates", type=click.Path(exists=True, file_okay=False),
              help="Folder of <kind>/<name>.wav (or <name>.wav) estimates.")
@click.option("--mixtures", type=click.Path(exists=True, file_okay=False))
@click.option("--backend", default="museval", type=click.Choice(["museval", "fast"]),
              help="SDR backend; 'fast' is used only where it matches museval within 0.01 dB.")
@click.option("--extra-metrics", default="", help="Comma list from asteroid's get_metrics: stoi,pesq.")
@click.option("-j", "--jobs", default=1, help="Scoring processes (one BLAS thread each).")
def score(output_dir, pairs, references, estimates, mixtures, backend, extra_metrics, jobs):
    """Score any separator's estimates: SDR (museval), SDRi, SI-SDR(i) per query kind.

    Writes OUTPUT_DIR/scores.csv, summary.csv and results.md, and prints the table.
    """
    from ..scoring import (pairs_from_folders, read_pairs_csv, score_pairs, summarize,
                           write_results)
    if bool(pairs) == bool(references and estimates):
        raise click.UsageError("Pass either --pairs CSV or --references DIR --estimates DIR")
    try:
        todo = (read_pairs_csv(pairs) if pairs
                else pairs_from_folders(references, estimates, mixtures))
        extra = [m for m in extra_metrics.split(",") if m]
        rows, info = score_pairs(todo, backend=backend, extra_metrics=extra, jobs=jobs)
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err))
    table = summarize(rows)
    paths = write_results(rows, table, output_dir)
    click.echo(paths["table"].read_text(), nl=False)
    delta = info["max_fast_delta_db"]
    click.echo(f"SDR backend: {info['backend']}" +
               (f" (fast vs museval: max |dSDR| {delta:.3f} dB)" if delta is not None else ""))


@cli.command()
@click.argument("run_a", type=click.Path(exists=True))
@click.argument("run_b", type=click.Path(exists=True))
@click.option("--metric", default="sdr", type=click.Choice(["sdr", "sdri", "si_sdr", "si_sdri"]))
def compare(run_a, run_b, metric):
    """Paired comparison of two scored runs (results folders or their scores.csv): per
    query kind, mean A - B over the same targets with a 95 % interval, and A's win rate."""
    from ..scoring import compare_scores, read_scores_csv

    def scores(path):
        path = Path(path)
        return read_scores_csv(path / "scores.csv" if path.is_dir() else path)
    try:
        lines = compare_scores(scores(run_a), scores(run_b), metric)
    except (FileNotFoundError, ValueError) as err:
        raise BadInput(str(err))
    click.echo(f"A: {run_a}\nB: {run_b}\n\n| query | n | A | B | A - B (95 % CI) | A wins |")
    click.echo("| --- | --- | --- | --- | --- | --- |")
    for line in lines:
        click.echo(f"| {line['kind']} | {line['n']} | {line['mean_a']:.2f} | {line['mean_b']:.2f} | "
                   f"{line['diff']:+.2f} ± {line['ci95']:.2f} | {line['wins']:.0%} |")


@cli.command(context_settings=CONTEXT)
@click.option("--conf", "conf_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML configuration (paper defaults: recipes/music/conf/train.yaml).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one configuration value (repeatable).")
@click.option("--train-cuts", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--valid-cuts", type=click.Path(exists=True, dir_okay=False))
@click.option("--valid-mixtures", type=click.Path(exists=True, dir_okay=False))
@click.option("--exp-dir", required=True, type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="Continue the run in EXP_DIR from its last checkpoint.")
def train(conf_path, overrides, train_cuts, valid_cuts, valid_mixtures, exp_dir, resume):
    """Train OmniSep (Lightning; GPU with bf16 when present, DDP-ready)."""
    from ..training.run import load_conf, train as run_train
    try:
        conf = load_conf(conf_path, overrides)
        package = run_train(conf, exp_dir, train_cuts, valid_cuts, valid_mixtures, resume=resume)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        raise click.ClickException(str(err))
    click.echo(f"wrote {package}")


@cli.command("make-mixtures", context_settings=CONTEXT)
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_json", type=click.Path(dir_okay=False))
@click.option("-n", "--n-mixtures", default=500)
@click.option("--n-src", default=2)
@click.option("--n-samples", default=65535)
@click.option("--seed", default=1234)
@click.option("--gain-range", default="0.5,1.5", help="LOW,HIGH: each source's gain is U(LOW, HIGH) "
              "(0.5623,1.7783: -5 to +5 dB).")
def make_mixtures(cuts_path, output_json, n_mixtures, n_src, n_samples, seed, gain_range):
    """Write a fixed, seeded list of test mixtures (cut ids, offsets, gains)."""
    from lhotse import CutSet

    from ..data.mixtures import make_test_mixtures
    try:
        low, high = (float(g) for g in gain_range.split(","))
        make_test_mixtures(CutSet.from_file(cuts_path), n_mixtures, n_src, n_samples, seed,
                           gain_range=(low, high), path=output_json)
    except ValueError as err:
        raise click.ClickException(str(err))
    click.echo(f"wrote {n_mixtures} mixtures to {output_json}")


@cli.command("absent-targets", context_settings=CONTEXT)
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("mixtures_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_csv", type=click.Path(dir_okay=False))
@click.option("--query-set", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Label embeddings (<prefix>_query_set.pt): the text queries.")
@click.option("--seed", default=0)
@click.option("--device", default="cpu")
def absent_targets(model_path, cuts_path, mixtures_path, output_csv, query_set, seed, device):
    """Estimate-to-mixture energy for a query of a source in the mixture vs a class not in it."""
    from lhotse import CutSet

    from ..models import OmniSep
    from ..open_domain import absent_summary, absent_target_rows, write_rows
    from ..query import QuerySet
    try:
        model = OmniSep.from_pretrained(model_path).to(device)
        rows = absent_target_rows(model, CutSet.from_file(cuts_path).to_eager(), mixtures_path,
                                  QuerySet.load(query_set), seed=seed)
    except (FileNotFoundError, ValueError) as err:
        raise BadInput(str(err))
    write_rows(output_csv, rows)
    click.echo(", ".join(f"{k} {v:.2f}" for k, v in absent_summary(rows).items()))


@cli.command("best-run", context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--link", type=click.Path(), help="Make this path a symbolic link to the best run.")
@click.option("--valid-cuts", type=click.Path(exists=True, dir_okay=False),
              help="Embedded validation cuts: score every final model on --valid-mixtures.")
@click.option("--valid-mixtures", type=click.Path(exists=True, dir_okay=False))
def best_run(runs, link, valid_cuts, valid_mixtures):
    """Compare training runs (Markdown), by their final models' text-query SI-SDRi on the
    validation mixtures when given, else by the last logged validation SI-SDR; link the best."""
    import os

    from lhotse import CutSet

    from ..open_domain import compare_runs, table_markdown
    if (valid_cuts is None) != (valid_mixtures is None):
        raise BadInput("Pass both --valid-cuts and --valid-mixtures, or neither")
    cuts = CutSet.from_file(valid_cuts).to_eager() if valid_cuts else None
    rows = compare_runs(runs, cuts, valid_mixtures)
    click.echo(table_markdown(rows, first="run"))
    if link:
        best = next(r for r in runs if Path(r).name == rows[0]["run"])
        tmp = Path(link).with_name(Path(link).name + ".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(os.path.relpath(Path(best).resolve(), Path(link).resolve().parent), tmp)
        os.replace(tmp, link)
        click.echo(f"best: {rows[0]['run']} -> {link}")


@cli.command("category-report", context_settings=CONTEXT)
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--mixtures", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The held-out recordings' fixed mixtures (test_mixtures.json).")
@click.option("--loso-mixtures", type=click.Path(exists=True, dir_okay=False),
              help="The held-out soundfont's fixed mixtures.")
@click.option("--classes", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The corpus's classes.json (label -> category).")
def category_report(model_dir, mixtures, loso_mixtures, classes):
    """Markdown: SDRi / SI-SDRi per category and query kind, the held-out soundfont, and
    present vs absent targets, from the folders stages 5-6 of recipes/omni wrote."""
    from ..open_domain import (absent_summary, category_table, load_categories, read_rows,
                               table_markdown, target_labels)
    model_dir = Path(model_dir)
    categories = load_categories(classes)
    kinds = ["text", "audio", "composed", "text+neg", "audio+neg", "composed+neg", "free_text",
             "free_text+aug"]
    out = []
    for name, mix_path in (("test", mixtures), ("test_loso", loso_mixtures)):
        scores = model_dir / name / "results" / "scores.csv"
        if mix_path is None or not scores.is_file():
            continue
        rows, labels = read_rows(scores), target_labels(mix_path)
        title = ("Held-out recordings" if name == "test" else "Instruments of the held-out soundfont")
        for metric in ("sdri", "si_sdri"):
            out.append(f"### {title}: {metric.upper().replace('_', '-')} (dB), mean per category\n")
            out.append(table_markdown(category_table(rows, labels, categories, metric,
                                                     [k for k in kinds if any(r["kind"] == k for r in rows)])))
    absent = model_dir / "absent.csv"
    if absent.is_file():
        out.append("### Present vs absent targets (estimate-to-mixture energy, dB; text queries)\n")
        out.append(table_markdown([{"measure": k, "dB": v} for k, v in absent_summary(read_rows(absent)).items()],
                                  first="measure"))
    if not out:
        raise BadInput(f"No scores under {model_dir}: run stages 5-6 first")
    click.echo("\n".join(out))


@cli.command("separate-test", context_settings=CONTEXT)
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("mixtures_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--query-set", type=click.Path(exists=True, dir_okay=False),
              help="Label embeddings (<prefix>_query_set.pt): text queries and Query-Aug.")
@click.option("--audio-bank", type=click.Path(exists=True, dir_okay=False),
              help="Audio query bank (<prefix>_audio_bank.pt).")
@click.option("--free-text", type=click.Path(exists=True, dir_okay=False),
              help="Description embeddings (<prefix>_free_text.pt).")
@click.option("--conf", "conf_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML whose 'eval' section sets alpha, negative_variant, compose_weights.")
@click.option("--set", "overrides", multiple=True, metavar="eval.KEY=VALUE")
@click.option("--plot", "plot_ids", multiple=True, metavar="MIX_I",
              help="Also write OUTPUT_DIR/<MIX_I>.png (e.g. mix00000_0).")
@click.option("--device", default="cpu")
def separate_test(model_path, cuts_path, mixtures_path, output_dir, query_set, audio_bank,
                  free_text, conf_path, overrides, plot_ids, device):
    """Separate fixed test mixtures with every query kind (text, image, audio, composed,
    each with and without a negative query; free text with and without Query-Aug)."""
    from lhotse import CutSet

    from ..evaluation import plot_separation, separate_test_mixtures
    from ..models import OmniSep
    from ..query import QuerySet
    from ..training.run import load_conf
    try:
        ev = load_conf(conf_path, overrides)["eval"]
        model = OmniSep.from_pretrained(model_path).to(device)
        banks = {name: QuerySet.load(path) if path else None for name, path in
                 (("query_set", query_set), ("audio_bank", audio_bank), ("free_text", free_text))}
        counts = separate_test_mixtures(model, CutSet.from_file(cuts_path).to_eager(),
                                        mixtures_path, output_dir, alpha=ev["alpha"],
                                        negative_variant=ev["negative_variant"],
                                        compose_weights=ev["compose_weights"], **banks)
        for mix_id in plot_ids:
            plot_separation(output_dir, mix_id, Path(output_dir) / f"{mix_id}.png")
    except (FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err))
    click.echo("estimates: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))


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
@click.option("--alpha", type=float, default=0.5, help="Negative-query strength (eq. 4).")
@click.option("--query-aug", is_flag=True, help="Map the text onto the nearest training label.")
@click.option("--query-set", type=click.Path(), help="Label embeddings for --query-aug.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--mono", is_flag=True, help="Average the channels first (default: per channel).")
@click.option("--plot", is_flag=True, help="Also write a spectrogram PNG per input.")
@click.option("--window", default=65536, help="Window length in samples at the model's rate.")
@click.option("--batch-windows", default=0, help="Windows per forward pass (0: 8 on GPU, 1 on CPU).")
@click.option("--overlap", default=0.25, help="Cross-faded share of each window (0, 0.5].")
@click.option("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: GPU if present).")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def separate(mixtures, model_path, imagebind_ckpt, offline_ckpt, text, image, audio, weights, negative_text,
             negative_image, negative_audio, alpha, query_aug, query_set, out_dir, mono, plot,
             window, batch_windows, overlap, device, force):
    """Keep what the query describes in each MIXTURE; write OUT/<name>_est1.wav + .json.

    Any sample rate (resampled to the model's and back), any channel count (each channel
    separated, or --mono), any length (overlapping windows, bounded memory).
    """
    import torch
    from tqdm.auto import tqdm

    from .. import separator as S
    from ..models import OmniSep
    from ..query import QuerySet

    try:
        spec = S.QuerySpec(text=text, image=image, audio=audio, weights=_parse_weights(weights, text, image, audio),
                           negative_text=negative_text, negative_image=negative_image,
                           negative_audio=negative_audio, alpha=alpha, query_aug=query_aug)
        spec.validate()
        paths = [Path(m) for m in mixtures]
        infos = [S.check_input_file(p) for p in paths]
        S.unique_stems(paths)
        out = Path(out_dir)
        _check_writable(out)
        outputs = [S.output_paths(p, out) for p in paths]
        existing = [o["wav"] for o in outputs if o["wav"].exists()]
        if existing and not force:
            raise ValueError(f"{existing[0]} exists; pass --force to overwrite")
        if window < 1024:
            raise ValueError(f"--window must be at least 1024 samples, got {window}")
        if not 0 < overlap <= 0.5:
            raise ValueError(f"--overlap must be in (0, 0.5], got {overlap}")
        dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        model = OmniSep.from_pretrained(model_path).to(dev)
        if model_path == "default" and not (imagebind_ckpt or offline_ckpt):
            from ..pretrained import DEFAULT
            offline_ckpt = DEFAULT.audio_encoder
            query_set = query_set or DEFAULT.query_set
        encoder = load_encoder(imagebind_ckpt, offline_ckpt, dev)
        if encoder.dim != model.query_dim:
            raise ValueError(f"The encoder gives {encoder.dim}-d queries, the model expects "
                             f"{model.query_dim}")
        qs = QuerySet.load(query_set) if query_set else None
        query, record = S.build_query(encoder, spec, qs)
        out.mkdir(parents=True, exist_ok=True)
        total = sum(i.frames for i in infos)
        with tqdm(total=total, unit="sample", unit_scale=True, desc="separating") as bar:
            for path, paths_out in zip(paths, outputs):
                facts = S.separate_file(model, path, query, paths_out["wav"], mono=mono,
                                        window=window, batch_windows=batch_windows or None,
                                        overlap=overlap, progress=bar.update)
                S.write_sidecar(paths_out["json"], {**facts, **record, "model": str(model_path),
                                                   "device": str(dev), "mono": mono})
                if plot:
                    S.plot_file_spectrograms(path, paths_out["wav"], paths_out["png"])
    except (FileNotFoundError, ValueError) as err:
        raise BadInput(str(err))
    click.echo(f"wrote {len(paths)} estimate(s) to {out}")


@cli.command("eval-pairs")
@click.option("--model", "model_path", default="default", help="A model file, or 'default'.")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Its bound audio encoder file (default: the shipped one; text is MiniLM).")
@click.option("--pairs", help="Comma-separated a+b pairs (default: every pair of instruments).")
@click.option("--seconds", default=4.0, help="Length of each rendered mixture.")
@click.option("--seed", default=9_000_000, help="First melody seed (the recipe uses < 3,000,000).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the rows here.")
def eval_pairs(model_path, offline_ckpt, pairs, seconds, seed, csv_path):
    """Separate freshly rendered 0 dB instrument pairs with text queries; print SDRi per
    target and the share of targets >= 3 dB above the mixture (needs FluidSynth)."""
    import numpy as np

    from ..evaluation import fresh_pair_gains
    from ..models import OmniSep
    from ..pretrained import DEFAULT

    try:
        model = OmniSep.from_pretrained(model_path)
        encoder = load_encoder(offline=offline_ckpt or DEFAULT.audio_encoder)
        pair_list = [tuple(p.split("+")) for p in pairs.split(",")] if pairs else None
        if pair_list and any(len(p) != 2 for p in pair_list):
            raise ValueError(f"--pairs takes a+b,c+d,..., got {pairs!r}")
        rows = fresh_pair_gains(model, encoder, pair_list, seconds, seed, progress=True)
    except (FileNotFoundError, ValueError, RuntimeError) as err:  # RuntimeError: no FluidSynth
        raise BadInput(str(err))
    click.echo(f"{'pair':<28} {'target':<16} {'SDRi':>6} {'SDR':>6} selected")
    for r in rows:
        click.echo(f"{r['pair']:<28} {r['label']:<16} {r['sdri']:6.1f} {r['sdr']:6.1f} {r['selected']}")
    gains = np.array([r["sdri"] for r in rows])
    labels = sorted({r["label"] for r in rows})
    click.echo("\nper instrument (median SDRi): " + ", ".join(
        f"{l} {np.median([r['sdri'] for r in rows if r['label'] == l]):.1f}" for l in labels))
    click.echo(f"{len(rows)} targets: median SDRi {np.median(gains):.2f} dB, mean {gains.mean():.2f}, "
               f"min {gains.min():.2f}; >= 3 dB: {np.mean(gains >= 3):.1%}; "
               f"selected: {np.mean([r['selected'] for r in rows]):.1%}")
    if csv_path:
        from ..utils import write_csv
        write_csv(csv_path, rows, list(rows[0]))


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


def _check_writable(out: Path) -> None:
    import os
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ValueError(f"Output directory {out} is not writable")


def prepare_main():
    """Console script ``omnisep-prepare``: the ``prepare`` group on its own."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    prepare()


def embed_main():
    """Console script ``omnisep-embed``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    embed()


def score_main():
    """Console script ``omnisep-score``."""
    score()


if __name__ == "__main__":
    cli()
