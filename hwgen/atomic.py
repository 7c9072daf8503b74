"""Atomic output: a file or directory appears complete or not at all.

Every command that writes results goes through these so that an error half-way (bad
input, a tool failing, Ctrl-C, SIGTERM) never leaves a half-written file or build directory
that a later step could mistake for a good one. They are also the one place where an output
path's OSError becomes an :class:`~hwgen.errors.OutputError` naming the path and the OS's
reason, and where an existing directory is (or is not) replaced.

Staging names are ``.NAME.PID.RANDOM.tmp`` beside the target: the process id lets a later
run tell the leftovers of a killed run (SIGKILL, power loss) from a concurrent run's live
staging, and remove only the former.
"""

import contextlib
import os
import re
import shutil
import signal
import threading
import tempfile
from pathlib import Path

from hwgen.errors import OutputError

# Linux allows 255 bytes per name; the staging prefix adds the pid and mkdtemp's random
# part, so the target's name is shortened in the prefix (it is only a hint for people).
_NAME_BYTES = 100


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prefix(path):
    name = path.name.encode()[:_NAME_BYTES].decode(errors="ignore")
    return f".{name}.{os.getpid()}."


def _fail(path, error):
    reason = error.strerror or str(error) or type(error).__name__
    where = Path(error.filename) if error.filename else path
    return OutputError(f"{path}: cannot write ({reason}"
                       + (f": {where}" if where != path and error.filename else "") + ")")


@contextlib.contextmanager
def interruptions_held():
    """Hold SIGINT and SIGTERM while something to clean up (a staging path, a child
    process) is created and recorded, so an interruption lands either before it exists or
    after the code that removes it is armed. Only the main thread runs signal handlers, so
    elsewhere this holds nothing. A child process inherits the held signals."""
    if not hasattr(signal, "pthread_sigmask") or (       # not POSIX
            threading.current_thread() is not threading.main_thread()):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _check_parents(path):
    """A parent that exists but is a file would make mkdir fail with a misleading "File
    exists"; name it instead."""
    for parent in path.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise OutputError(f"{path}: cannot write ({parent} is not a directory)")
            return


def _mine(error, places):
    """Whether an OSError raised while writing concerns the output (a write into staging, or
    one without a file name, such as a full disk) rather than something read on the way."""
    if not error.filename:
        return True
    name = os.fspath(error.filename)
    return any(name == os.fspath(p) or name.startswith(os.fspath(p) + os.sep) for p in places)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(path):
    """Remove staging directories and retired copies of ``path`` left by runs that were
    killed before they could clean up (their process no longer exists)."""
    path = Path(path)
    name = path.name.encode()[:_NAME_BYTES].decode(errors="ignore")
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)\.[^/]*\.(tmp|old)$")
    with contextlib.suppress(OSError):
        for sibling in path.parent.iterdir():
            match = pattern.match(sibling.name)
            if match and sibling.is_dir() and not sibling.is_symlink() \
                    and not _pid_alive(int(match.group(1))):
                shutil.rmtree(sibling, ignore_errors=True)


def check_replaceable(path, *, owned=None, force=False):
    """Refuse to replace ``path`` unless it is absent, empty, ``owned`` by the caller, or
    ``force`` is given; refuse the working directory and its ancestors in any case.
    Commands call it before any long work so that a refusal comes first, not last."""
    path = Path(os.path.abspath(path))
    _check_parents(path)
    here, target = Path.cwd().resolve(), path.resolve()
    if target == here or target in here.parents:
        raise OutputError(f"{path}: refusing to replace the current directory or one of its "
                          f"parents; name a new directory")
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        raise OutputError(f"{path}: exists and is not a directory; remove it or choose "
                          f"another output directory")
    if owned is None or force:
        return
    try:
        empty = not any(path.iterdir())
    except OSError as error:
        raise _fail(path, error) from None
    if not empty and not owned(path):
        raise OutputError(f"{path}: exists and is not an hwgen build directory; refusing to "
                          f"replace it (use --force to replace it and everything in it)")


@contextlib.contextmanager
def atomic_file(path, mode="wb"):
    """Yield a file object; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    _check_parents(Path(os.path.abspath(path)))
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with interruptions_held():
            fd, temporary = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp",
                                             dir=path.parent)
    except OSError as error:
        raise _fail(path, error) from None
    except BaseException:
        if temporary is not None:
            os.close(fd)
            os.unlink(temporary)
        raise
    try:
        # mkstemp creates the file 0600; give it the permissions an ordinary open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError) and _mine(error, [path, temporary]):
            raise _fail(path, error) from None
        raise


@contextlib.contextmanager
def atomic_directory(path, *, owned=None, force=False):
    """Yield a fresh staging directory; on success it replaces ``path`` as a whole.

    An existing ``path`` is replaced only if it is empty or ``owned(path)`` says it is the
    caller's (``owned=None``: the caller owns whatever is there, e.g. a subdirectory of a
    build directory), or ``force`` is true; otherwise :class:`OutputError` names it. On error
    the staging directory is deleted and an existing ``path`` is left as it was.
    """
    # Lexically absolute, so that "-o ." and "-o .." name real directories (and are
    # refused as the working directory) instead of reaching os.replace as "." or "..".
    path = Path(os.path.abspath(path))
    check_replaceable(path, owned=owned, force=force)
    staging = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(path)
        with interruptions_held():
            staging = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp",
                                            dir=path.parent))
    except OSError as error:
        raise _fail(path, error) from None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        if os.path.lexists(path):
            # The swap is two renames; an interruption between them would leave neither
            # the old nor the new directory at ``path``.
            with interruptions_held():
                retired = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".old",
                                                dir=path.parent))
                os.replace(path, retired / path.name)
                try:
                    os.replace(staging, path)
                except OSError:
                    os.replace(retired / path.name, path)
                    raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and _mine(error, [path, staging]):
            raise _fail(path, error) from None
        raise
