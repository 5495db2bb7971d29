"""One process owns a run directory: an exclusive POSIX record lock (`lockf`) on
`<run_dir>/.larpo.lock`, which names its holder. The operating system drops the lock when the
process ends, however it ends, so a lock left by a killed run never blocks its resume; unlike
`flock`, a POSIX lock is not shared with the processes a run forks (workers, launchers), so none of
them can keep holding it after the run is gone. Standard library only: the CLI checks a resumed run
directory with it before Hydra writes anything there."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from larpo.fields import ConfigError

_HELD: dict[Path, int] = {}  # lock files this process holds (a process may build a run twice)


def _path(run_dir: str | Path) -> Path:
    return Path(run_dir).expanduser().resolve() / ".larpo.lock"


def acquire(run_dir: str | Path) -> None:
    """Hold the run directory's lock until this process ends; ConfigError (one line) naming the
    holder when another process holds it."""
    path = _path(run_dir)
    if path in _HELD:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(
            "run_dir",
            str(path.parent),
            f"is in use by {holder_of(path)}",
            "wait for that run to end or stop it; a killed run's lock is released, so `larpo resume=` then works",
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    _HELD[path] = fd


def check_free(run_dir: str | Path) -> None:
    """Raise the same one line as `acquire` if another process holds the run directory; hold nothing."""
    path = _path(run_dir)
    if path in _HELD or not path.is_file():  # ours (closing another fd of it would drop our POSIX lock)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise ConfigError(
            "resume", str(path.parent), f"is in use by {holder_of(path)}", "wait for that run to end or stop it"
        ) from None
    finally:
        os.close(fd)


def holder_of(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"
