"""The open-domain recipe's commands: ``omnisep build-omni``, ``omnisep prepare omni`` and the
reports of an open-domain model (``absent-targets``, ``best-run``, ``category-report``)."""
import os
from pathlib import Path

import click

from .cli_base import BadInput, CONTEXT, cli, prepare, user_errors


@prepare.command("omni", context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path())
@user_errors
def omni_manifests(corpus_dir, output_dir):
    """A built omni corpus -> omni_{recordings,supervisions,cuts}_{split}.jsonl.gz."""
    from ...data.recipes.omni import prepare_omni
    for split, parts in sorted(prepare_omni(corpus_dir, output_dir).items()):
        click.echo(f"{split}: {len(parts['cuts'])} cuts")


def _split_counts(text: str) -> dict:
    try:
        return {k: int(v) for k, v in (item.split("=") for item in text.split(",") if item)}
    except ValueError:
        raise BadInput(f"Expected SPLIT=N,SPLIT=N..., got {text!r}") from None


@cli.command("build-omni", context_settings=CONTEXT)
@click.argument("corpus_dir", type=click.Path(file_okay=False))
@click.option("--cache-dir", default="~/.cache/omnisep/omni",
              help="Where the Debian packages are downloaded and unpacked (reused).")
@click.option("--instrument-clips", default="train=12,valid=1,test=2", help="Clips per instrument "
              "and soundfont in each split (the held-out soundfont: --loso-clips).")
@click.option("--loso-clips", default=3, help="test_loso clips per instrument (held-out soundfont).")
@click.option("--heldout-soundfont", default="sf_gmbank", help="Soundfont kept out of training "
              "(fluidr3_gm, timgm6mb, sf_gmbank).")
@click.option("--train-only-soundfonts", default="", help="Comma-separated soundfonts rendered into "
              "the training split only (opl3_fm: an FM-chip imitation; freepats: a GUS patch set of "
              "recorded samples, rendered by TiMidity++ from the package cache).")
@click.option("--dev-soundfont", default="", help="A soundfont rendered only into the valid_loso "
              "split (e.g. freepats): unheard timbres to choose checkpoints on, as test_loso's are "
              "to report on.")
@click.option("--dev-soundfont-clips", default=4, help="valid_loso clips per instrument.")
@click.option("--speech-clips", default="train=40,valid=2,test=6", help="Clips per voice and split.")
@click.option("--max-train-clips", default=40, help="Training clips per everyday class at most.")
@click.option("--seconds", default=6.0, help="Clip length.")
@click.option("--sounds", type=click.Path(exists=True, dir_okay=False),
              help="The curated file table (default: the package's omni_tables/sounds.tsv).")
@click.option("-j", "--num-jobs", default=2)
@user_errors(extra=(RuntimeError,))
def build_omni(corpus_dir, cache_dir, instrument_clips, loso_clips, heldout_soundfont,
               train_only_soundfonts, dev_soundfont, dev_soundfont_clips, speech_clips,
               max_train_clips, seconds, sounds, num_jobs):
    """Fetch the Debian packages and build the open-domain corpus (resumable)."""
    from ...data.recipes import omni
    plan = omni.CorpusPlan(seconds=seconds, instrument_clips=_split_counts(instrument_clips),
                           loso_clips=loso_clips, heldout_soundfont=heldout_soundfont,
                           train_only_soundfonts=tuple(f for f in train_only_soundfonts.split(",") if f),
                           dev_soundfont=dev_soundfont, dev_soundfont_clips=dev_soundfont_clips,
                           speech_clips=_split_counts(speech_clips),
                           max_train_clips_per_class=max_train_clips)
    stats = omni.build_omni_corpus(corpus_dir, Path(cache_dir).expanduser(), plan,
                                   sounds=omni.load_sounds(sounds) if sounds else None,
                                   num_jobs=num_jobs)
    click.echo(f"{stats['classes']} classes, clips per split {stats['clips']}, {stats['wall_s']:.0f} s")


@cli.command("absent-targets", context_settings=CONTEXT)
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("mixtures_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_csv", type=click.Path(dir_okay=False))
@click.option("--query-set", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Label embeddings (<prefix>_query_set.pt): the text queries.")
@click.option("--audio-bank", type=click.Path(exists=True, dir_okay=False),
              help="The labels' audio prototypes (<prefix>_audio_bank.pt): also the text queries "
                   "composed with them (kinds present+proto, absent+proto); every form also as "
                   "<kind>+neg, the two queries asked for together.")
@click.option("--offline", "offline_ckpt", type=click.Path(exists=True, dir_okay=False),
              help="A bound audio encoder (audio_encoder.pth): also each single query's "
                   "residual-negative second pass (kinds <kind>+resid).")
@click.option("--seed", default=0)
@click.option("--device", default="cpu")
@user_errors
def absent_targets(model_path, cuts_path, mixtures_path, output_csv, query_set, audio_bank,
                   offline_ckpt, seed, device):
    """Estimate-to-mixture energy for a query of a source in the mixture vs a class not in it."""
    from ...data import load_cuts
    from ...models import OmniSep
    from ...open_domain import absent_summary, absent_target_rows, write_rows
    from ...query import QuerySet
    from .cli_base import load_encoder
    model = OmniSep.from_pretrained(model_path).to(device)
    encoder = load_encoder(None, offline_ckpt, device) if offline_ckpt else None
    rows = absent_target_rows(model, load_cuts(cuts_path), mixtures_path, QuerySet.load(query_set),
                              seed=seed, audio_bank=QuerySet.load(audio_bank) if audio_bank else None,
                              encoder=encoder)
    write_rows(output_csv, rows)
    click.echo(", ".join(f"{k} {v:.2f}" for k, v in absent_summary(rows).items()))


@cli.command("energy-threshold", context_settings=CONTEXT)
@click.argument("dev_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--test", "test_csv", type=click.Path(exists=True, dir_okay=False),
              help="Rows to report the chosen threshold's error rates on (not chosen on).")
@click.option("--kind", type=click.Choice(["text", "proto", "text+neg", "proto+neg",
                                           "text+resid", "proto+resid"]),
              default="text",
              help="Which query form's rows: text alone, or text + audio prototype (+proto); "
                   "+neg: the present and absent queries asked for together, each removing "
                   "the other; +resid: each query alone with its residual-negative second pass "
                   "(absent-targets --offline).")
@click.option("--at", "at_db", type=float,
              help="Rate this min_energy_db (e.g. the shipped one) instead of choosing one.")
@user_errors
def energy_threshold(dev_csv, test_csv, kind, at_db):
    """Choose the query check's min_energy_db for a model on absent-targets rows of a dev
    set (fewest false alarms + misses), and report its rates there and on --test (Markdown)."""
    from ...open_domain import choose_energy_threshold, energy_flag_rates, read_rows, table_markdown
    suffix = "" if kind == "text" else "+" + kind.replace("text+", "")
    dev = read_rows(dev_csv)
    chosen = choose_energy_threshold(dev, suffix) if at_db is None else at_db
    rows = [("dev", dev)] + ([("test", read_rows(test_csv))] if test_csv else [])
    table = []
    for name, split_rows in rows:
        rates = energy_flag_rates(split_rows, chosen, suffix)
        table.append({"split": name, "min_energy_db": chosen,
                      "false alarms (present flagged)": f"{rates['false_alarm']:.1%} of {rates['n_present']}",
                      "misses (absent not flagged)": f"{rates['miss']:.1%} of {rates['n_absent']}"})
    click.echo(table_markdown(table, first="split"))


@cli.command("best-run", context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--link", type=click.Path(), help="Make this path a symbolic link to the best run.")
@click.option("--valid-cuts", type=click.Path(exists=True, dir_okay=False),
              help="Embedded validation cuts: score every final model on --valid-mixtures.")
@click.option("--valid-mixtures", type=click.Path(exists=True, dir_okay=False))
@user_errors
def best_run(runs, link, valid_cuts, valid_mixtures):
    """Compare training runs (Markdown), by their final models' text-query SI-SDRi on the
    validation mixtures when given, else by the last logged validation SI-SDR; link the best."""
    from ...data import load_cuts
    from ...open_domain import compare_runs, table_markdown
    if (valid_cuts is None) != (valid_mixtures is None):
        raise BadInput("Pass both --valid-cuts and --valid-mixtures, or neither")
    rows = compare_runs(runs, load_cuts(valid_cuts) if valid_cuts else None, valid_mixtures)
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
@user_errors
def category_report(model_dir, mixtures, loso_mixtures, classes):
    """Markdown: SDRi / SI-SDRi per category and query kind, the held-out soundfont, and
    present vs absent targets, from the folders stages 5-6 of recipes/omni wrote."""
    from ...open_domain import (absent_summary, category_table, load_categories, read_rows,
                                table_markdown, target_labels)
    model_dir = Path(model_dir)
    categories = load_categories(classes)
    kinds = ["text", "audio", "audio+label", "composed", "text+neg", "audio+neg",
             "audio+label+neg", "composed+neg", "free_text", "free_text+aug", "free_text+proto",
             "text+resid", "audio+label+resid", "composed+resid", "free_text+proto+resid"]
    out = []
    for name, mix_path in (("test", mixtures), ("test_loso", loso_mixtures)):
        scores = model_dir / name / "results" / "scores.csv"
        if mix_path is None or not scores.is_file():
            continue
        rows, labels = read_rows(scores), target_labels(mix_path)
        title = "Held-out recordings" if name == "test" else "Instruments of the held-out soundfont"
        present = [k for k in kinds if any(r["kind"] == k for r in rows)]
        for metric in ("sdri", "si_sdri"):
            out.append(f"### {title}: {metric.upper().replace('_', '-')} (dB), mean per category\n")
            out.append(table_markdown(category_table(rows, labels, categories, metric, present)))
    absent = model_dir / "absent.csv"
    if absent.is_file():
        out.append("### Present vs absent targets (estimate-to-mixture energy, dB; text queries)\n")
        out.append(table_markdown([{"measure": k, "dB": v} for k, v in absent_summary(read_rows(absent)).items()],
                                  first="measure"))
    if not out:
        raise BadInput(f"No scores under {model_dir}: run stages 5-6 first")
    click.echo("\n".join(out))


def _split_paths(items) -> dict:
    try:
        return {k: v for k, v in (item.split("=", 1) for item in items)}
    except ValueError:
        raise BadInput(f"Expected --cuts SPLIT=PATH, got {list(items)}") from None


@cli.command("pack-corpus", context_settings=CONTEXT)
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--cuts", "cut_paths", multiple=True, required=True, metavar="SPLIT=PATH",
              help="Embedded cuts of one split (repeatable), e.g. train=data/omni/embedded/"
                   "omni_cuts_train_embedded.jsonl.gz.")
@click.option("--backgrounds", type=click.Path(exists=True, dir_okay=False),
              help="The backgrounds.json of data.augment (packed with its audio).")
@click.option("--extra", "extra_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A small file stored as is (repeatable): fixed mixtures, the query set.")
@click.option("--max-mib", default=26.0, help="Size limit of the pack; the Opus level is chosen to "
              "fit it (26 MiB: the device tool's 64-MiB travel limit minus the tracked tree and wheels).")
@click.option("--level", type=click.FloatRange(0, 1), help="A fixed Opus compression level instead.")
@click.option("--per-class", type=click.IntRange(1), help="At most this many cuts of each label per "
              "split, evenly spread (every soundfont keeps its share); default: all.")
@click.option("-j", "--num-jobs", default=2)
@user_errors
def pack_corpus_cmd(output, cut_paths, backgrounds, extra_files, max_mib, level, per_class, num_jobs):
    """Pack embedded cuts (Opus audio, fp16 queries, all licence records) into one .tar."""
    from ...data import load_cuts
    from ...data.pack import pack_corpus
    from ...separation.files import check_output_dir
    if os.path.lexists(output):
        raise BadInput(f"{output} exists; remove it first (a pack is never overwritten in place)")
    check_output_dir(Path(output).parent)
    record = pack_corpus({s: load_cuts(p) for s, p in _split_paths(cut_paths).items()}, output,
                         max_mib=max_mib, backgrounds=backgrounds, extra_files=extra_files,
                         level=level, num_jobs=num_jobs, per_class=per_class)
    click.echo(f"wrote {output}: {record['bytes'] / 2**20:.1f} MiB, {record['audio_hours']} h of audio "
               f"at {record['kbit_s']} kbit/s (Opus level {record['opus_level']}), cuts {record['cuts']}")


@cli.command("unpack-corpus", context_settings=CONTEXT)
@click.argument("pack", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("-j", "--num-jobs", default=2)
@user_errors
def unpack_corpus_cmd(pack, output_dir, num_jobs):
    """Unpack a corpus pack: WAV audio, cuts_<split>_embedded.jsonl.gz, backgrounds.json."""
    from ...data.pack import unpack_corpus
    result = unpack_corpus(pack, output_dir, num_jobs=num_jobs)
    for split, path in result["cuts"].items():
        click.echo(f"{split}: {path}")
    for name, path in result["extra"].items():
        click.echo(f"{name}: {path}")
    if result["backgrounds"]:
        click.echo(f"backgrounds: {result['backgrounds']}")
