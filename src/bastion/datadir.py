"""The data folder: whether an installation lives there, its modes, and who may use it.

- **Modes.** Bastion creates its folders 0700 (and, under the umask the command line sets,
  its files 0600) and never changes the mode of a folder it did not create:
  ``--data-dir /tmp`` leaves ``/tmp`` alone. An existing folder that other users may read
  is reported, not changed.
- **An installation** is a folder that holds the token signing keys. Only ``bastion
  serve`` and ``bastion init`` make one; every other command refuses a folder without one,
  so a mistyped ``--data-dir`` is an error instead of a new, empty installation.
- **One server per folder.** ``bastion serve`` holds an exclusive ``flock`` on
  ``bastion.lock`` for as long as it runs; its worker processes inherit the same lock
  (``FolderLock`` passes its descriptor to them), so it is free only once the last of them
  has exited. A second server is refused with the pid of the first. A command holds a
  shared lock while it runs, so no server starts under it; when a server already holds
  the folder, the command goes through the database they share, as every worker does.
- A folder that cannot be one (a file, an unwritable or virtual file system) fails with
  one line naming the folder and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.reduction import DupFd
from pathlib import Path
from typing import Any

from bastion.errors import ConfigurationError
from bastion.tokens.signing_keys import MANIFEST_NAME

__all__ = [
    "LOCK_NAME",
    "PRIVATE_UMASK",
    "DataFolderInUse",
    "FolderLock",
    "has_installation",
    "lock_for_command",
    "lock_for_server",
    "prepare",
    "require_installation",
]

log = logging.getLogger("bastion")
LOCK_NAME = "bastion.lock"
PRIVATE_UMASK = 0o077  # files 0600, folders 0700 (as PostgreSQL's server sets it)
_warned: set[Path] = set()


class DataFolderInUse(ConfigurationError):
    code = "data_folder_in_use"


def has_installation(path: Path) -> bool:
    """True when ``path`` holds an installation (its token signing keys)."""
    return (path / "keys" / MANIFEST_NAME).is_file()


def require_installation(path: Path) -> None:
    """Refuse a folder without an installation: a mistyped ``--data-dir`` is an error."""
    if not has_installation(path):
        raise ConfigurationError(
            f"no Bastion installation in {path} (is --data-dir / BASTION_DATA_DIR right?); "
            f"`bastion init --data-dir {path}` creates one"
        )


def prepare(path: Path) -> None:
    """Make ``path`` a usable data folder: create the missing folders (0700), check that
    files can be created in it, and report (once) a folder other users may read."""
    created = _create(path)
    try:
        os.close(_open_lock_file(path))
    except OSError as exc:
        raise _unusable(path, exc) from None
    if not created and path not in _warned:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            _warned.add(path)
            log.warning(
                "data folder %s is open to other users (mode %04o); Bastion leaves its mode "
                "alone: `chmod 700 %s` makes it private",
                path,
                mode,
                path,
            )


@dataclass
class FolderLock:
    """A ``flock`` on the folder's lock file, held until every process holding its
    descriptor has closed it (``pickle`` it into a child process to share it)."""

    path: Path
    fd: int

    def release(self) -> None:
        os.close(self.fd)

    def __reduce__(self) -> tuple[Any, ...]:
        # multiprocessing passes the descriptor itself to the child it is starting.
        return (_inherited, (self.path, DupFd(self.fd)))


def lock_for_server(path: Path) -> FolderLock:
    """The exclusive lock of a server; ``DataFolderInUse`` names whoever holds it."""
    try:
        fd = _open_lock_file(path)
    except OSError as exc:
        raise _unusable(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise DataFolderInUse(
            f"the data folder {path} is in use by {holder}: one server per data folder "
            "(stop it first, or give this one its own --data-dir)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return FolderLock(path, fd)


@contextlib.contextmanager
def lock_for_command(path: Path) -> Iterator[None]:
    """A shared lock for the life of a command, so that no server starts under it; when a
    server holds the folder, the command shares its database as a worker does."""
    try:
        fd = _open_lock_file(path)
    except OSError as exc:
        raise _unusable(path, exc) from None
    try:
        with contextlib.suppress(BlockingIOError):  # a server runs: go through its database
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)  # releases the lock


def _inherited(path: Path, descriptor: Any) -> FolderLock:
    return FolderLock(path, descriptor.detach())


def _holder(fd: int) -> str:
    """Who holds the lock that ``fd`` could not take: a server (its pid) or commands."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return f"another Bastion server (pid {pid})" if pid.isdigit() else "another Bastion server"
    fcntl.flock(fd, fcntl.LOCK_UN)
    return "a bastion command that is still running (try again when it has finished)"


def _open_lock_file(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    return os.open(path / LOCK_NAME, flags, 0o600)


def _create(path: Path) -> bool:
    """Create ``path`` and any missing parent, each 0700; True when ``path`` was created."""
    missing: list[Path] = []
    probe = path
    try:
        while not probe.exists() and not probe.is_symlink():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        if not missing and not path.is_dir():
            raise ConfigurationError(f"cannot use {path} as the data folder: it is not a folder")
    except OSError as exc:
        raise _unusable(path, exc) from None
    if not missing:
        return False
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # ours: its mode does not depend on the umask
        except FileExistsError:  # made meanwhile by someone else: theirs, leave it
            continue
        except OSError as exc:
            raise _unusable(path, exc) from None
    return True


def _unusable(path: Path, exc: OSError) -> ConfigurationError:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENOENT: "this file system does not allow it",
        errno.ENOSPC: "no space left on the device",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or "unknown error")
    return ConfigurationError(f"cannot use {path} as the data folder: {reason}")
