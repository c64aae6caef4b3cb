"""Figures of separation runs: spectrograms of a mixture, its reference and every query
kind's estimate (the paper's qualitative figure)."""
from pathlib import Path

import soundfile as sf

from ..utils import atomic_write


def plot_separation(out_dir, mixture_id: str, png_path) -> None:
    """PNG of mixture / reference / estimate spectrograms per query kind for one target
    ``<mix>_<i>`` of a :func:`separate_test_mixtures` folder (the paper's qualitative figure)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    name = f"{mixture_id}.wav"
    kinds = sorted(p.name for p in (out_dir / "est").iterdir() if (p / name).is_file())
    if not kinds:
        raise FileNotFoundError(f"No estimates named {name} under {out_dir / 'est'}")
    panels = [("mixture", out_dir / "mix" / name), ("reference", out_dir / "refs" / name)]
    panels += [(kind, out_dir / "est" / kind / name) for kind in kinds]
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (title, path) in zip(axes.flat, panels):
        wav, sr = sf.read(str(path), dtype="float32")
        ax.specgram(wav, NFFT=512, Fs=sr, noverlap=384, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_write(png_path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
