"""Configuration loading and the training run behind ``omnisep train``.

Every hyper-parameter lives in the YAML configuration (``recipes/*/conf/train.yaml`` holds
the paper's values); ``--set section.key=value`` overrides one; the configuration used is
copied to ``<exp_dir>/conf.yaml``. Outputs in ``exp_dir``: ``checkpoints/`` (every
``training.ckpt_every`` steps and ``last.ckpt``), ``metrics.csv`` (Lightning CSV logs),
``loss.png`` and ``omnisep.pth`` (the trained model as an Asteroid package).
"""
import csv
import logging
import os
import re
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

import yaml

from ..allocator import keep_freed_memory
from ..config import train_defaults
from ..losses import check_mask_target
from ..utils import atomic_write


class _ConfLoader(yaml.SafeLoader):
    """YAML 1.1 as ``yaml.safe_load`` reads it, except that ``3e-5`` is a float, as in
    YAML 1.2 and Python (PyYAML alone reads it as the string '3e-5')."""


_ConfLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
               r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _yaml(text: str):
    return yaml.load(text, Loader=_ConfLoader)

#: The configuration's defaults (a copy of :func:`omnisep_plugin.config.train_defaults`,
#: their single source).
DEFAULTS: Dict[str, dict] = train_defaults()


def _read_yaml(path: Path, conf: dict, chain: Tuple[Path, ...] = ()) -> None:
    """Merge ``path`` into ``conf``: its ``base`` file first (recursively, any depth), then
    its own sections; ``chain`` holds the files that led here, so that a loop is named."""
    if not path.is_file():
        raise FileNotFoundError(f"No configuration file at {path}")
    chain = chain + (path.resolve(),)
    loaded = _yaml(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a mapping of sections")
    base = loaded.pop("base", None)
    if base is not None:  # an ablation file: the base configuration, then its changes
        base_path = path.parent / base
        if base_path.resolve() in chain:
            loop = " -> ".join(p.name for p in chain) + f" -> {base_path.name}"
            raise ValueError(f"{path}: its 'base' chain loops ({loop})")
        _read_yaml(base_path, conf, chain)
    for section, values in loaded.items():
        if not isinstance(values, dict):
            raise ValueError(f"{path}: section {section!r} must be a mapping")
        conf.setdefault(section, {}).update(values)


def _known_keys() -> Dict[str, set]:
    """Section -> the keys it may hold: the dataclass fields of :mod:`omnisep_plugin.config`
    and, for ``model``, the arguments of :class:`OmniSep`."""
    import inspect

    from ..models import OmniSep
    known = {section: set(values) for section, values in DEFAULTS.items()}
    known["model"] = set(inspect.signature(OmniSep.__init__).parameters) - {"self"}
    return known


def check_conf(conf: dict) -> None:
    """Refuse unknown sections and keys (a typo would otherwise be ignored silently), naming
    the key and the known ones."""
    known = _known_keys()
    for section, values in conf.items():
        if section not in known:
            raise ValueError(f"Unknown configuration section {section!r}; known sections: "
                             f"{', '.join(sorted(known))}")
        for key in values:
            if key not in known[section]:
                raise ValueError(f"Unknown configuration key {section}.{key}; known keys of "
                                 f"{section}: {', '.join(sorted(known[section]))}")
    if "mask_target" in conf.get("optim", {}):
        check_mask_target(conf["optim"]["mask_target"])
    wave = conf.get("optim", {}).get("wave_loss_weight", 0.0)
    if not isinstance(wave, (int, float)) or wave < 0:
        raise ValueError(f"optim.wave_loss_weight must be a number >= 0, got {wave!r}")


def load_conf(path: Optional[os.PathLike], overrides: Iterable[str] = ()) -> dict:
    """The defaults updated by the YAML file (and the file its ``base:`` names, first),
    then by ``section.key=value`` overrides; unknown sections or keys are a ValueError."""
    conf = train_defaults()
    if path is not None:
        _read_yaml(Path(path), conf)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"Overrides look like section.key=value, got {item!r}")
        conf.setdefault(section, {})[name] = _yaml(value)
    check_conf(conf)
    return conf


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX-BF16): only there is bf16
    autocast faster than fp32 (elsewhere it is emulated and many times slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def _precision(setting: str) -> str:
    """``auto``: bf16-mixed on a GPU with bf16, or on a CPU with bf16 instructions; else fp32."""
    import torch
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


def train(conf: dict, exp_dir: os.PathLike, train_cuts: os.PathLike,
          valid_cuts: Optional[os.PathLike] = None, valid_mixtures: Optional[os.PathLike] = None,
          resume: bool = False, progress: bool = True, callbacks: Sequence = (),
          init: Optional[str] = None):
    """Train OmniSep as configured; returns the path of the exported model package.

    ``training.accelerator / devices / num_nodes / strategy`` go to Lightning's Trainer (DDP:
    ``strategy: ddp``; under ``torchrun`` or SLURM Lightning reads the rank from the
    environment); ``callbacks`` are extra Lightning callbacks. ``init`` (``"default"`` or an
    ``omnisep.pth``) fine-tunes: the run starts from that model's weights and architecture
    (its ``model`` arguments replace the configuration's); a resumed run continues from its
    checkpoint instead, with the architecture it started with (``exp_dir/conf.yaml``)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from pytorch_lightning.utilities import rank_zero_only

    from .callbacks import DecayAfterMinutes
    from .datamodule import MixtureDataModule
    from .system import OmniSepSystem

    # The data module checks every data setting (augmentation, mix-in, balance): before the
    # run writes anything.
    data = MixtureDataModule(train_cuts, valid_cuts, valid_mixtures, **conf["data"])
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    last = exp_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        logging.warning("--resume: no checkpoint at %s, starting from scratch", last)
    if not resume and last.is_file():
        raise FileExistsError(f"{exp_dir} already holds a run; pass --resume to continue it "
                              "or choose another experiment folder")
    start = None
    written = exp_dir / "conf.yaml"
    if resume and last.is_file() and written.is_file():
        # the architecture the run has (an --init model's may differ from the configuration's)
        model_args = yaml.safe_load(written.read_text()).get("model")
        if model_args and conf["model"] != model_args:
            logging.warning("--resume: the run's architecture (%s) replaces the configuration's "
                            "model section", written)
            conf["model"] = model_args
    if init is not None and not (resume and last.is_file()):
        from ..models.routed import load_single
        start = load_single(init, "--init")
        if conf["model"] and conf["model"] != start.get_model_args():
            logging.warning("--init %s: its architecture replaces the configuration's model "
                            "section", init)
        conf["model"] = start.get_model_args()
    # Every process of a DDP run (torchrun, SLURM or Lightning's launcher) runs this function;
    # only the global rank 0 writes the run's files.
    first = rank_zero_only.rank == 0
    if first:
        with atomic_write(written) as tmp:
            Path(tmp).write_text(yaml.safe_dump(conf, sort_keys=False))
    tr = conf["training"]
    if tr["keep_freed_memory"] and keep_freed_memory():
        logging.info("glibc keeps freed memory (no page faults on reused activations)")
    pl.seed_everything(tr["seed"], workers=True)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    system = OmniSepSystem(model_args=conf["model"], **conf["query"], **conf["optim"],
                           seed=tr["seed"])
    if start is not None:
        start.clear_mask_temperatures()  # a separation setting: training and validation use none
        system.model.load_state_dict(start.state_dict())
        logging.info("initialised from %s", init)
    has_val = valid_cuts is not None
    if tr.get("decay_at_minutes") is not None:
        callbacks = [*callbacks, DecayAfterMinutes(tr["decay_at_minutes"], conf["optim"]["decay_factor"])]
    trainer = pl.Trainer(
        max_steps=tr["max_steps"], max_epochs=-1, precision=_precision(tr["precision"]),
        max_time=None if tr.get("max_minutes") is None else {"minutes": float(tr["max_minutes"])},
        gradient_clip_val=tr["grad_clip"], accelerator=tr["accelerator"], devices=tr["devices"],
        num_nodes=tr["num_nodes"], strategy=tr["strategy"],
        accumulate_grad_batches=tr["accumulate_grad_batches"],
        use_distributed_sampler=False,  # NumberedBatches shards by rank itself (Lhotse)
        val_check_interval=tr["val_every"] if has_val else None,
        check_val_every_n_epoch=None, limit_val_batches=None if has_val else 0,
        num_sanity_val_steps=0, log_every_n_steps=max(1, min(50, tr["max_steps"] // 10)),
        logger=CSVLogger(exp_dir, name="", version=_log_version(exp_dir, resume and first)), default_root_dir=exp_dir,
        enable_progress_bar=progress, enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=exp_dir / "checkpoints", every_n_train_steps=tr["ckpt_every"],
                                   save_last=True, save_top_k=-1, enable_version_counter=False,
                                   filename="step{step:07d}", auto_insert_metric_name=False),
                   *callbacks],
    )
    trainer.fit(system, datamodule=data, ckpt_path=str(last) if resume and last.is_file() else None)
    package = exp_dir / "omnisep.pth"
    if trainer.is_global_zero:
        system.model.cpu().save(package)
        plot_losses(exp_dir / "logs" / "metrics.csv", exp_dir / "loss.png")
    return package


def _log_version(exp_dir: Path, resume: bool) -> str:
    """The CSV logger's folder, ``logs``; a resumed run first moves the metrics of its
    earlier parts aside (``logs/metrics.part<N>.csv``), since the logger rewrites the file."""
    metrics = exp_dir / "logs" / "metrics.csv"
    if resume and metrics.is_file() and metrics.stat().st_size > 0:
        n = len(list(metrics.parent.glob("metrics.part*.csv")))
        metrics.rename(metrics.with_name(f"metrics.part{n:03d}.csv"))
    return "logs"


def read_metric(metrics_csv: os.PathLike, name: str):
    """``(steps, values)`` of one logged metric from Lightning's ``metrics.csv``, after the
    metrics of earlier parts of a resumed run (``metrics.part*.csv`` beside it)."""
    metrics_csv = Path(metrics_csv)
    files = sorted(metrics_csv.parent.glob("metrics.part*.csv")) + (
        [metrics_csv] if metrics_csv.is_file() else [])
    steps, values = [], []
    for path in files:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get(name):
                    steps.append(int(row["step"]))
                    values.append(float(row[name]))
    return steps, values


def plot_losses(metrics_csv: Path, out: Path) -> None:
    """Training loss (and validation SI-SDR when logged) against step, as a PNG."""
    if not metrics_csv.is_file():
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(*read_metric(metrics_csv, "train_loss"), label="train WBCE")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    handles = ax.get_lines()
    val = read_metric(metrics_csv, "val_si_sdr")
    if val[0]:
        ax2 = ax.twinx()
        handles += ax2.plot(*val, "o-", color="tab:orange", label="valid SI-SDR (dB)")
        ax2.set_ylabel("SI-SDR (dB)")
    # one legend for both axes, below the plot where no curve runs
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    with atomic_write(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
