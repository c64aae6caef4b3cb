"""Corpus recipes in Lhotse's style: ``prepare_<corpus>(corpus_dir, output_dir)``."""
from .music import prepare_music
from .vggsound import prepare_vggsound

__all__ = ["prepare_music", "prepare_vggsound"]
