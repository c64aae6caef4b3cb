"""Small helpers shared by the package: atomic file writes, reading saved packages."""
import contextlib
import csv
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, Union


@contextlib.contextmanager
def atomic_write(path: Union[str, os.PathLike]) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or kill while writing leaves ``path`` untouched (no half-written file).
    The temporary file keeps ``path``'s suffix so format-sniffing writers still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv(path: Union[str, os.PathLike], rows: Iterable[dict], fields: Sequence[str]) -> None:
    """Write ``rows`` (dicts) as a CSV with the header ``fields``, atomically."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def load_package(path: Union[str, os.PathLike], what: str,
                 build: Callable[[Any], Any] = lambda package: package) -> Any:
    """Read a file written by ``torch.save`` of plain types and build an object from it.

    Only ``weights_only=True`` loading is used (no pickled code runs). Any failure, while
    reading or in ``build``, becomes one clear error naming the file and ``what`` it should
    have been.

    Raises:
        FileNotFoundError: ``No <what> at <path>``.
        ValueError: ``<path> is not a valid <what> (<reason>)`` for a corrupt, truncated or
            foreign file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No {what} at {path}")
    try:
        return build(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:
        reason = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise ValueError(f"{path} is not a valid {what} ({reason})") from None
