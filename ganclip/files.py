"""Writing files so that a crash never leaves half of one under its final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None, mode: int | None = None):
    """Yield a fresh temporary path beside ``path``; rename it to ``path`` when the block
    ends normally, remove it when the block raises.

    Parameters
    ----------
    path : str or Path, the final name
    suffix : str or None, the temporary file's suffix (default: ``path``'s own, so that
        writers choosing a format by suffix still do)
    mode : int or None, permission bits for the finished file; None gives those of any new
        file (``0o666`` less the umask), where ``mkstemp`` alone would leave ``0o600``
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix if suffix is None
                               else suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
