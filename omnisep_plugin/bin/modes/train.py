"""Training commands: ``omnisep train``, ``omnisep widen`` (more capacity for a trained model)
and ``omnisep make-mixtures`` (fixed valid/test lists)."""
import click

from ...config import AUDIO
from .cli_base import CONTEXT, cli, user_errors


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
@click.option("--init", help="Fine-tune: start from a shipped network ('omni', 'instruments') or "
              "an omnisep.pth (its architecture replaces the configuration's model section).")
@user_errors
def train(conf_path, overrides, train_cuts, valid_cuts, valid_mixtures, exp_dir, resume, init):
    """Train OmniSep (Lightning; GPU with bf16 when present, DDP-ready)."""
    from ...training.run import load_conf, train as run_train
    conf = load_conf(conf_path, overrides)
    package = run_train(conf, exp_dir, train_cuts, valid_cuts, valid_mixtures, resume=resume,
                        init=init)
    click.echo(f"wrote {package}")


@cli.command(context_settings=CONTEXT)
@click.argument("model")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--widths", metavar="W1,W2,...",
              help="The new U-Net channels per level, outermost first (same depth, each at "
              "least the old width).")
@click.option("--conf", "conf_path", type=click.Path(exists=True, dir_okay=False),
              help="Take the widths from this training configuration's model.unet_widths.")
@click.option("--n-masks", type=click.IntRange(1),
              help="The new number k of intermediate masks (eq. 2), at least the old one.")
@click.option("--noise", default=0.01, show_default=True, type=click.FloatRange(0),
              help="Symmetry-breaking noise, relative to each weight tensor's spread.")
@click.option("--seed", default=0, show_default=True)
@user_errors
def widen(model, output, widths, conf_path, n_masks, noise, seed):
    """Write MODEL (an omnisep.pth, or a shipped name: omni) with a wider U-Net and/or more
    intermediate masks that starts from what it learnt (Net2WiderNet: copies of trained
    channels, the same function up to --noise); continue training it with ``omnisep train
    --init OUTPUT``. With --conf, each size grows to the configuration's where that is
    larger and is kept otherwise."""
    from ...models.routed import load_single
    from ...training.run import load_conf
    if widths is not None and conf_path is not None:
        raise ValueError("Give the new widths once: --widths W1,W2,... or --conf CONF")
    small = load_single(model, "omnisep widen")
    old, old_masks = list(small.masker.widths), small.n_masks
    if conf_path is not None:  # grows to the configuration's sizes where they are larger
        model_conf = load_conf(conf_path)["model"]
        conf_widths = model_conf.get("unet_widths", old)
        if len(conf_widths) != len(old):
            raise ValueError(f"{conf_path}: model.unet_widths has {len(conf_widths)} levels, "
                             f"the model {len(old)}")
        widths = [max(int(w), o) for w, o in zip(conf_widths, old)]
        n_masks = n_masks or max(int(model_conf.get("n_masks", old_masks)), old_masks)
    elif widths is not None:
        try:
            widths = [int(w) for w in widths.split(",")]
        except ValueError:
            raise ValueError(f"--widths must be comma-separated integers, got {widths!r}") from None
    elif n_masks is None:
        raise ValueError("Give the new widths (--widths W1,W2,... or --conf CONF) or --n-masks K")
    widths, n_masks = widths or old, n_masks or old_masks
    wide = small.widened(widths, noise=noise if widths != old else 0.0, seed=seed)
    if n_masks != old_masks:
        wide = wide.with_more_masks(n_masks, noise=noise, seed=seed + 1)
    wide.float().save(output)
    n_old, n_new = (sum(p.numel() for p in m.parameters()) for m in (small, wide))
    click.echo(f"wrote {output}: U-Net {old} -> {widths}, {old_masks} -> {n_masks} masks, "
               f"{n_old:,} -> {n_new:,} parameters")


@cli.command("make-mixtures", context_settings=CONTEXT)
@click.argument("cuts_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("output_json", type=click.Path(dir_okay=False))
@click.option("-n", "--n-mixtures", default=500, type=click.IntRange(1))
@click.option("--n-src", default=2, type=click.IntRange(1))
@click.option("--n-samples", default=AUDIO.crop_samples, type=click.IntRange(1))
@click.option("--seed", default=1234)
@click.option("--gain-range", default="0.5,1.5", help="LOW,HIGH: each source's gain is U(LOW, HIGH) "
              "(0.5623,1.7783: -5 to +5 dB).")
@click.option("--labels", help="Comma list: mix only cuts of these labels (e.g. one model's "
              "vocabulary; '_' matches a space).")
@user_errors
def make_mixtures(cuts_path, output_json, n_mixtures, n_src, n_samples, seed, gain_range, labels):
    """Write a fixed, seeded list of test mixtures (cut ids, offsets, gains)."""
    from lhotse import CutSet

    from ...data import load_cuts
    from ...data.embed import cut_label
    from ...data.mixtures import make_test_mixtures
    try:
        low, high = (float(g) for g in gain_range.split(","))
    except ValueError:
        raise ValueError(f"--gain-range must be LOW,HIGH, got {gain_range!r}") from None
    cuts = load_cuts(cuts_path)
    if labels:
        wanted = {lab.strip().replace("_", " ") for lab in labels.split(",") if lab.strip()}
        if not wanted:
            raise ValueError(f"--labels names no label: {labels!r}")
        cuts = CutSet.from_cuts(c for c in cuts if cut_label(c).replace("_", " ") in wanted)
        missing = wanted - {cut_label(c).replace("_", " ") for c in cuts}
        if missing:
            raise ValueError(f"No cut of {sorted(missing)} in {cuts_path}")
    make_test_mixtures(cuts, n_mixtures, n_src, n_samples, seed,
                       gain_range=(low, high), path=output_json)
    click.echo(f"wrote {n_mixtures} mixtures to {output_json}")
