"""Scoring commands (no model runs here): ``omnisep score`` and ``omnisep compare``."""
from pathlib import Path

import click

from .cli_base import CONTEXT, cli, user_errors


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
@click.option("-j", "--jobs", default=1, type=click.IntRange(1),
              help="Scoring processes (one BLAS thread each).")
@user_errors
def score(output_dir, pairs, references, estimates, mixtures, backend, extra_metrics, jobs):
    """Score any separator's estimates: SDR (museval), SDRi, SI-SDR(i) per query kind.

    Writes OUTPUT_DIR/scores.csv, summary.csv and results.md, and prints the table.
    """
    from ...scoring import (check_extra_metrics, pairs_from_folders, read_pairs_csv,
                            score_pairs, summarize, write_results)
    if bool(pairs) == bool(references and estimates):
        raise click.UsageError("Pass either --pairs CSV or --references DIR --estimates DIR")
    extra = check_extra_metrics([m for m in extra_metrics.split(",") if m])
    todo = (read_pairs_csv(pairs) if pairs
            else pairs_from_folders(references, estimates, mixtures))
    rows, info = score_pairs(todo, backend=backend, extra_metrics=extra, jobs=jobs)
    table = summarize(rows)
    paths = write_results(rows, table, output_dir)
    click.echo(paths["table"].read_text(), nl=False)
    delta = info["max_fast_delta_db"]
    click.echo(f"SDR backend: {info['backend']}" +
               (f" (fast vs museval: max |dSDR| {delta:.3f} dB)" if delta is not None else ""))


@cli.command(context_settings=CONTEXT)
@click.argument("run_a", type=click.Path(exists=True))
@click.argument("run_b", type=click.Path(exists=True))
@click.option("--metric", default="sdr", type=click.Choice(["sdr", "sdri", "si_sdr", "si_sdri"]))
@user_errors
def compare(run_a, run_b, metric):
    """Paired comparison of two scored runs (results folders or their scores.csv): per
    query kind, mean A - B over the same targets with a 95 % interval, and A's win rate."""
    from ...scoring import compare_scores, read_scores_csv

    def scores(path):
        path = Path(path)
        return read_scores_csv(path / "scores.csv" if path.is_dir() else path)
    lines = compare_scores(scores(run_a), scores(run_b), metric)
    click.echo(f"A: {run_a}\nB: {run_b}\n\n| query | n | A | B | A - B (95 % CI) | A wins |")
    click.echo("| --- | --- | --- | --- | --- | --- |")
    for line in lines:
        click.echo(f"| {line['kind']} | {line['n']} | {line['mean_a']:.2f} | {line['mean_b']:.2f} | "
                   f"{line['diff']:+.2f} ± {line['ci95']:.2f} | {line['wins']:.0%} |")
