"""Small helpers shared by the package: atomic file writes, reading saved packages."""
import contextlib
import csv
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Sequence, Union


#: Longest file name most file systems allow (bytes).
NAME_MAX = 255
_TEMP_STEM = 100  # characters of the target's name kept in a temporary name


def cache_dir() -> Path:
    """The package's cache folder: ``$OMNISEP_CACHE`` or ``~/.cache/omnisep``."""
    return Path(os.environ.get("OMNISEP_CACHE", "~/.cache/omnisep")).expanduser()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temps(path: Union[str, os.PathLike]) -> List[Path]:
    """Remove temporary files that a killed run (SIGKILL, power loss) left beside ``path``.

    Temporary names are ``.<name>.<pid>.<random>.tmp<suffix>`` (see :func:`temp_path`); one
    whose process no longer runs is stale. Returns the removed paths.
    """
    path = Path(path)
    prefix = f".{path.name[:_TEMP_STEM]}."
    removed = []
    if not path.parent.is_dir():
        return removed
    for p in path.parent.iterdir():
        rest = p.name[len(prefix):] if p.name.startswith(prefix) else ""
        pid = rest.split(".", 1)[0]
        if ".tmp" in rest and pid.isdigit() and not _pid_alive(int(pid)):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp(\.[^.]*)?$")


def target_of_temp(path: Union[str, os.PathLike]) -> Path:
    """The file a temporary name of :func:`temp_path` stands for (``path`` itself if it is
    not one), for messages.

    Example:
        >>> str(target_of_temp("out/.mix_est1.wav.123.ab_c9.tmp.wav"))
        'out/mix_est1.wav'
    """
    path = Path(path)
    m = _TEMP_NAME.match(path.name)
    return path.with_name(m.group("name")) if m else path


def temp_path(path: Union[str, os.PathLike]) -> str:
    """Create an empty temporary file beside ``path`` and return its name.

    The name is short enough for any ``path`` whose own name fits the file system, keeps
    ``path``'s suffix (format-sniffing writers still work) and carries this process's id,
    so that :func:`clean_stale_temps` can tell a dead run's leftovers from a live one's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:_TEMP_STEM]}.{os.getpid()}.",
                               suffix=".tmp" + path.suffix[:20])
    os.close(fd)
    return tmp


def _publish(tmp: str, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: Union[str, os.PathLike]) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash, an exception or SIGINT / SIGTERM (the CLI turns it into an exception) while
    writing leaves ``path`` untouched and no temporary file; a SIGKILL leaves one that the
    next write beside ``path`` removes. The temporary file keeps ``path``'s suffix.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        _publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class StagedWrites:
    """All-or-nothing writes of several files.

    :meth:`path` gives a temporary name beside each target; :meth:`commit` renames them all
    onto their targets; leaving the ``with`` block without a commit (an error, a signal)
    removes every temporary file, so no target is touched.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with StagedWrites() as staged:
        ...     _ = pathlib.Path(staged.path(d / "a.txt")).write_text("a")
        ...     staged.commit()
        >>> sorted(p.name for p in d.iterdir())
        ['a.txt']
    """

    def __init__(self):
        self._pending: List[tuple] = []

    def path(self, target: Union[str, os.PathLike]) -> str:
        tmp = temp_path(target)
        self._pending.append((tmp, Path(target)))
        return tmp

    def commit(self) -> None:
        for tmp, target in self._pending:
            _publish(tmp, target)
        self._pending = []

    def discard(self) -> None:
        for tmp, _ in self._pending:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._pending = []

    def __enter__(self) -> "StagedWrites":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


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
