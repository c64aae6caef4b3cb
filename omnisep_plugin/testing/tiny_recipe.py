"""A tiny embedded corpus and training configuration for end-to-end tests (CPU, seconds)."""
from pathlib import Path

import yaml

from ..data.embed import embed_cuts, write_query_banks
from ..data.mixtures import make_test_mixtures
from ..data.recipes import prepare_music
from ..query import ImageBindEncoder
from .dummies import save_tiny_imagebind_checkpoint
from .fake_corpus import make_fake_music

INSTRUMENTS = ("violin", "flute", "cello", "trumpet")

#: Training configuration of a test-size run (query_dim = the tiny ImageBind's 16).
TINY_TRAIN_CONF = {
    "model": {"query_dim": 16, "n_masks": 4, "unet_widths": [4, 8, 8], "log_freq_bins": 32,
              "n_fft": 256, "hop_length": 64, "win_length": 256},
    "data": {"batch_size": 4, "n_samples": 16000, "num_workers": 0},
    "optim": {"lr": 0.01, "warmup_steps": 2, "decay_steps": 1000},
    "training": {"max_steps": 12, "val_every": 6, "ckpt_every": 6},
}


def make_tiny_embedded_corpus(root: Path, per_class: int = 5) -> dict:
    """Fake MUSIC corpus -> manifests -> tiny-ImageBind embeddings -> fixed valid/test
    mixtures and query banks under ``root``. Returns the paths by name."""
    root = Path(root)
    make_fake_music(root / "corpus", instruments=INSTRUMENTS, per_class=per_class)
    manifests = prepare_music(root / "corpus", root / "manifests", instruments=INSTRUMENTS)
    save_tiny_imagebind_checkpoint(root / "imagebind_tiny.pth")
    encoder = ImageBindEncoder(root / "imagebind_tiny.pth")
    paths = {"imagebind": root / "imagebind_tiny.pth"}
    for split in ("train", "valid", "test"):
        cuts = embed_cuts(manifests[split]["cuts"], encoder, root / "arrays", progress=False)
        paths[f"{split}_cuts"] = root / f"music_cuts_{split}_embedded.jsonl.gz"
        cuts.to_file(paths[f"{split}_cuts"])
        if split == "train":
            paths.update(write_query_banks(cuts, encoder, root, "music_cuts_train", 1))
        else:
            paths[f"{split}_mixtures"] = root / f"{split}_mixtures.json"
            make_test_mixtures(cuts, 4, n_samples=16000, seed=1, path=paths[f"{split}_mixtures"])
    paths["conf"] = root / "tiny.yaml"
    paths["conf"].write_text(yaml.safe_dump(TINY_TRAIN_CONF))
    return paths
