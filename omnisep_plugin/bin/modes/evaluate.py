"""Commands that run a model on benchmark data: ``omnisep separate-test`` (fixed test
mixtures, every query kind), ``omnisep eval-pairs`` (fresh instrument pairs),
``omnisep eval-presence`` (error rates of the query check) and
``omnisep export-bundle`` (package a trained model)."""
from pathlib import Path

import click

from .cli_base import BadInput, CONTEXT, cli, load_encoder, resolve_device, user_errors


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
@click.option("--offline", "offline_ckpt", type=click.Path(exists=True, dir_okay=False),
              help="A bound audio encoder (audio_encoder.pth): also the <kind>+resid kinds, the "
                   "second pass of omnisep separate --residual-negative.")
@click.option("--conf", "conf_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML whose 'eval' section sets alpha, negative_variant, compose_weights.")
@click.option("--set", "overrides", multiple=True, metavar="eval.KEY=VALUE")
@click.option("--plot", "plot_ids", multiple=True, metavar="MIX_I",
              help="Also write OUTPUT_DIR/<MIX_I>.png (e.g. mix00000_0).")
@click.option("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto.")
@user_errors
def separate_test(model_path, cuts_path, mixtures_path, output_dir, query_set, audio_bank,
                  free_text, offline_ckpt, conf_path, overrides, plot_ids, device):
    """Separate fixed test mixtures with every query kind (text, image, audio, composed,
    each with and without a negative query; free text with and without Query-Aug; with
    --offline, single queries' residual-negative second pass)."""
    from ...data import load_cuts

    from ...evaluation import plot_separation, separate_test_mixtures
    from ...models import OmniSep
    from ...query import QuerySet
    from ...training.run import load_conf
    ev = load_conf(conf_path, overrides)["eval"]
    dev = resolve_device(device)
    model = OmniSep.from_pretrained(model_path).to(dev)
    encoder = load_encoder(None, offline_ckpt, dev) if offline_ckpt else None
    banks = {name: QuerySet.load(path) if path else None for name, path in
             (("query_set", query_set), ("audio_bank", audio_bank), ("free_text", free_text))}
    counts = separate_test_mixtures(model, load_cuts(cuts_path),
                                    mixtures_path, output_dir, alpha=ev["alpha"],
                                    negative_variant=ev["negative_variant"],
                                    compose_weights=ev["compose_weights"], encoder=encoder,
                                    **banks)
    for mix_id in plot_ids:
        plot_separation(output_dir, mix_id, Path(output_dir) / f"{mix_id}.png")
    click.echo("estimates: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))


@cli.command("eval-pairs", context_settings=CONTEXT)
@click.option("--model", "model_path", default="default", help="A model file, or a shipped one: 'default', 'omni', 'instruments'.")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Its bound audio encoder file (default: the shipped one; text is MiniLM).")
@click.option("--pairs", help="Comma-separated a+b pairs (default: every pair of instruments).")
@click.option("--seconds", default=4.0, type=click.FloatRange(0.1, 600),
              help="Length of each rendered mixture.")
@click.option("--seed", default=9_000_000, help="First melody seed (the recipe uses < 3,000,000).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the rows here.")
@user_errors(extra=(RuntimeError,))  # RuntimeError: no FluidSynth
def eval_pairs(model_path, offline_ckpt, pairs, seconds, seed, csv_path):
    """Separate freshly rendered 0 dB instrument pairs with text queries; print SDRi per
    target and the share of targets >= 3 dB above the mixture (needs FluidSynth)."""
    import numpy as np

    from ...evaluation import fresh_pair_gains
    from ...models import OmniSep
    from ...pipelines import BUNDLES, DEFAULT

    model = OmniSep.from_pretrained(model_path)
    pair_list = [tuple(p.split("+")) for p in pairs.split(",")] if pairs else None
    if pair_list and any(len(p) != 2 for p in pair_list):
        raise ValueError(f"--pairs takes a+b,c+d,..., got {pairs!r}")
    encoder = load_encoder(offline=offline_ckpt or BUNDLES.get(model_path, DEFAULT).audio_encoder)
    rows = fresh_pair_gains(model, encoder, pair_list, seconds, seed, progress=True)
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
        from ...utils import write_csv
        write_csv(csv_path, rows, list(rows[0]))


@cli.command("eval-presence", context_settings=CONTEXT)
@click.option("--model", "model_path", default="default", help="A model file, or a shipped one: 'default', 'omni', 'instruments'.")
@click.option("--offline", "offline_ckpt", type=click.Path(),
              help="Its bound audio encoder file (default: the shipped one; text is MiniLM).")
@click.option("--pairs", "n_pairs", type=click.IntRange(1), help="Pairs per set (default: all 55).")
@click.option("--seconds", default=4.0, type=click.FloatRange(0.5, 600))
@click.option("--dev-seed", default=8_000_000, help="Melody seeds of the pairs the threshold is chosen on.")
@click.option("--test-seed", default=9_500_000, help="Melody seeds of the pairs the rates are measured on.")
@user_errors(extra=(RuntimeError,))  # RuntimeError: no FluidSynth
def eval_presence(model_path, offline_ckpt, n_pairs, seconds, dev_seed, test_seed):
    """False-alarm and miss rates of the query check ("target likely absent") on rendered
    instrument pairs: 2 present and 2 absent queries per pair (needs FluidSynth)."""
    from dataclasses import replace

    from ...config import PRESENCE
    from ...evaluation.presence_rates import choose_similarity, flag_rates, presence_rows
    from ...models import OmniSep
    from ...pipelines import BUNDLES, DEFAULT

    model = OmniSep.from_pretrained(model_path)
    encoder = load_encoder(offline=offline_ckpt or BUNDLES.get(model_path, DEFAULT).audio_encoder)
    dev = presence_rows(model, encoder, n_pairs, seconds, dev_seed, progress=True)
    test = presence_rows(model, encoder, n_pairs, seconds, test_seed, progress=True)
    chosen = replace(PRESENCE, min_similarity=choose_similarity(dev))
    for name, config in (("configured", PRESENCE), ("chosen on dev", chosen)):
        for split, rows in (("dev", dev), ("test", test)):
            r = flag_rates(rows, config)
            click.echo(f"{name:<14} min_similarity {config.min_similarity:.3f}, min_energy_db "
                       f"{config.min_energy_db}: {split:<4} false alarms {r['false_alarm']:.1%} "
                       f"of {r['n_present']} present, misses {r['miss']:.1%} of {r['n_absent']} absent")


@cli.command("export-bundle", context_settings=CONTEXT)
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--audio-encoder", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--query-set", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--example-cuts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Cuts to build the example mixture from (e.g. the test split).")
@click.option("--example-labels", default="cello,clarinet", help="Classes mixed in the example.")
@click.option("--text-seeds/--no-text-seeds", default=True, help="Ship the labels' MiniLM text "
              "embeddings (text_queries.pt; needs the MiniLM package, absent on the GPU machine).")
@click.option("--audio-prototypes", type=click.Path(exists=True, dir_okay=False),
              help="The labels' audio prototypes (the recipe's <prefix>_audio_bank.pt): text "
                   "queries are then composed with them (omnisep separate --prototypes).")
@user_errors
def export_bundle_cmd(output_dir, model_path, audio_encoder, query_set, example_cuts, example_labels,
                      text_seeds, audio_prototypes):
    """Package a trained model as a shippable bundle (fp16) with an example mixture."""
    import tempfile

    import soundfile as sf
    from ...data import load_cuts

    from ...data.embed import cut_label
    from ...pipelines import export_bundle
    labels = example_labels.split(",")
    cuts = sorted(load_cuts(example_cuts), key=lambda c: c.id)
    chosen = [next((c for c in cuts if cut_label(c) == lab), None) for lab in labels]
    if None in chosen:
        raise BadInput(f"No cut of {labels[chosen.index(None)]!r} in {example_cuts}")
    sources = [c.load_audio()[0] for c in chosen]
    n = min(len(s) for s in sources)
    sources = [0.45 * s[:n] / abs(s[:n]).max() for s in sources]
    with tempfile.TemporaryDirectory() as tmp:
        example = f"{tmp}/example.wav"
        sf.write(example, sum(sources), 16000, subtype="FLOAT")
        sizes = export_bundle(model_path, audio_encoder, query_set, example, output_dir, text_seeds,
                              example_sources=dict(zip(labels, sources)),
                              audio_prototypes_path=audio_prototypes)
    click.echo(", ".join(f"{k} {v / 2**20:.2f} MB" for k, v in sorted(sizes.items())))


@cli.command("route-bundle", context_settings=CONTEXT)
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--base", required=True,
              help="The shipped model (name) that answers every label its specialists do not.")
@click.option("--specialist", "specialists", multiple=True,
              help="A shipped model (name) that answers the labels of its own Query-Set (repeat).")
@click.option("--example", "example_name", help="The shipped model whose example mixture the "
              "bundle ships (default: --base's).")
@user_errors
def route_bundle(output_dir, base, specialists, example_name):
    """Package shipped models as one routed bundle (RoutedOmniSep): each query is answered by
    the expert of its nearest label, a specialist for its own labels, --base for the rest.
    The package names the shipped networks (it repeats no weights); the query side is
    --base's (recipes/omni stage 7 makes the default: --base omni --specialist instruments
    --example instruments)."""
    from ...pipelines import BUNDLES, export_routed_bundle

    unknown = [n for n in (base, *specialists, example_name) if n and n not in BUNDLES]
    if unknown:
        raise BadInput(f"Unknown shipped model(s) {unknown}; known: {sorted(BUNDLES)}")
    sizes = export_routed_bundle(output_dir, BUNDLES[base], [BUNDLES[n] for n in specialists],
                                 BUNDLES[example_name] if example_name else None)
    click.echo(", ".join(f"{k} {v / 2**20:.2f} MB" for k, v in sorted(sizes.items())))
