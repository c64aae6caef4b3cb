"""The ``omnisep`` command groups, defined once, and the one rule for user errors.

A command module (``bin/modes/<group>.py``) imports :data:`cli` (or :data:`prepare`),
decorates its commands with ``@cli.command(context_settings=CONTEXT)`` and
:func:`user_errors`, and is listed in ``bin/modes/__init__.py``.

The rule: whatever a user can cause (a bad value, a missing or unreadable file, a full
disk, a device that is not there) is one line on stderr, ``Error: ...``, and exit code 2;
SIGTERM and SIGINT remove the temporary files of a run before it exits (143 / 130).
"""
import errno
import functools
import logging
import signal

import click

CONTEXT = dict(show_default=True, help_option_names=["-h", "--help"])

#: Exceptions that are the user's (bad values, files, disk, devices); anything else is a bug
#: and keeps its traceback.
USER_ERRORS = (ValueError, OSError)


class BadInput(click.ClickException):
    """A user error: one line on stderr, exit code 2, nothing written."""
    exit_code = 2


_OS_MESSAGES = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded",
                errno.EROFS: "Read-only file system"}


def error_message(err: BaseException) -> str:
    """One line saying what went wrong (with the file name for OS errors)."""
    text = str(err).strip()
    if isinstance(err, OSError) and err.errno is not None:
        from ...utils import target_of_temp
        what = _OS_MESSAGES.get(err.errno, err.strerror or text)
        text = f"{what}: {target_of_temp(err.filename)}" if err.filename else what
    return text.splitlines()[0] if text else type(err).__name__


def user_errors(func=None, *, extra=()):
    """Decorator of a command: :data:`USER_ERRORS` (and ``extra``) become :class:`BadInput`.

    Use as ``@user_errors`` or ``@user_errors(extra=(RuntimeError,))``.
    """
    if func is None:
        return functools.partial(user_errors, extra=extra)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (*USER_ERRORS, *extra) as err:
            raise BadInput(error_message(err)) from None
    return wrapper


def _terminate(signum, frame):
    # SystemExit unwinds the stack: every atomic_write / StagedWrites removes its temporary file.
    raise SystemExit(128 + signum)


def install_signal_handlers(ctx=None) -> None:
    """SIGTERM raises SystemExit (SIGINT already raises KeyboardInterrupt), so that a killed
    run cleans up; the previous handler is restored when ``ctx`` closes."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        return
    if ctx is not None:
        ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")


@click.group(context_settings=CONTEXT)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def cli(ctx, verbose):
    """OmniSep: omni-modal query-based sound separation."""
    setup_logging(verbose)
    install_signal_handlers(ctx)


@cli.group(context_settings=CONTEXT)
def prepare():
    """Prepare corpus manifests (Lhotse)."""


def load_encoder(imagebind=None, offline=None, device="cpu"):
    """The query encoder the options name: ImageBind (``--imagebind``) or the offline one
    (``--offline``: MiniLM text + a bound audio encoder file)."""
    from ...query import ImageBindEncoder
    from ...query.offline import OfflineEncoder
    if imagebind and offline:
        raise ValueError("Pass one query encoder: --imagebind or --offline, not both")
    if imagebind:
        return ImageBindEncoder(imagebind, device=device)
    if offline:
        return OfflineEncoder(offline, device=device)
    raise ValueError("Pass the query encoder: --imagebind PATH or --offline PATH")


def resolve_device(name: str):
    """``torch.device`` for ``--device`` (``auto``: the GPU when present); ValueError for a
    name torch does not know or a device this machine does not have."""
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"Unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"Device {name!r} requested but no CUDA GPU is available")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"Device {name!r} requested but only {count} CUDA GPU(s) exist")
        return dev
    if dev.type == "mps" and torch.backends.mps.is_available():
        return dev
    raise ValueError(f"Device {name!r} cannot run OmniSep here: use cpu, cuda, cuda:N or auto")
