"""Data layer: corpus recipes, query embedding cache, mixture datasets."""
import os
from typing import Union


def load_cuts(path: Union[str, os.PathLike]):
    """An eager Lhotse ``CutSet`` read from a manifest; ValueError naming the file when it
    cannot be read or holds no cut."""
    from lhotse import CutSet

    try:
        cuts = CutSet.from_file(path)  # None for an empty manifest
        cuts = cuts.to_eager() if cuts is not None else []
    except FileNotFoundError:
        raise
    except Exception as err:  # gzip, JSON, lhotse schema errors: all mean a bad manifest
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise ValueError(f"{path} is not a readable cut manifest ({reason})") from None
    if len(cuts) == 0:
        raise ValueError(f"{path} holds no cuts")
    return cuts
