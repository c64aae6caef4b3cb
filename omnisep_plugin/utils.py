"""Small helpers shared by the package: atomic file writes."""
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union


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
