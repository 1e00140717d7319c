"""Every file the project writes: atomic writes and up-front writability checks.

- `atomic_path(path)`: a context manager yielding a temp path beside `path`; when the block
  succeeds the temp file gets the umask's permissions and is renamed onto `path` (readers see
  the old file or the new one, never half of one); on any exception it is removed. Every
  writer (model files, checkpoints, JSON, data files, report pages) goes through it.
- `write_bytes_atomic`, `write_text_atomic`, `write_json_atomic`: the common cases.

- `ensure_writable_dir(path, what)`: the folder exists or can be created, and a file can be
  created in it (a probe file is created and removed). Call it before loading data or training.
- `ensure_writable_file(path, what)`: the same for the folder of an output file, and the path
  is not a folder.
- `writing(path, what)`: a context manager turning an OSError raised while writing (disk full,
  permission, quota) into an OutputError that names the file and the reason, so the CLI prints
  one line instead of a traceback. The writers themselves are atomic (temp file in the target
  folder + os.replace), so a failed write leaves the old file or nothing.

Root ignores permission bits, so a folder can still be unwritable for root: a path below a
regular file, a read-only mount, /proc. The probe catches all of these.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from imsnn_lava.errors import ImsnnError

__all__ = ["OutputError", "atomic_file", "atomic_path", "ensure_writable_dir",
           "ensure_writable_file", "write_bytes_atomic", "write_json_atomic", "write_text_atomic",
           "writing"]


class OutputError(ImsnnError):
    """An output file or folder cannot be written. The message names it and says why."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _probe(folder: Path) -> None:
    """Create `folder` if needed, then create and remove a file in it (raises OSError)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".imsnn-write-probe.")
    os.close(fd)
    os.unlink(probe)


def ensure_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create `path` if needed and prove a file can be created in it; returns it as a Path.

    Raises OutputError naming `what` and the path otherwise."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: cannot write the {what} there (not a folder)")
    try:
        _probe(folder)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write the {what} there ({_reason(exc)})") from None
    return folder


def ensure_writable_file(path: str | os.PathLike, what: str) -> Path:
    """Prove that file `path` can be written (its folder is created if needed), without
    touching `path` itself; returns it as a Path. Raises OutputError otherwise."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target}: cannot write the {what} (it is a folder)")
    try:
        _probe(target.parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write the {what} ({_reason(exc)})") from None
    return target


@contextlib.contextmanager
def writing(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn an OSError inside the block into OutputError naming `path` and the reason."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the {what} ({_reason(exc)})") from None


def _indented(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


def file_mode() -> int:
    """Permissions of a new file under the current umask (mkstemp makes 0600 files)."""
    umask = os.umask(0o022)  # read the umask (no other way), then put it back
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temp path in `path`'s folder (created if needed); on success give it the
    umask's permissions, optionally fsync it, and rename it onto `path`; on any exception
    (KeyboardInterrupt included) remove it and re-raise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator:
    """atomic_path, yielding the temp file opened for binary writing."""
    with atomic_path(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
        yield fh


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data,
                      dumps: Callable[[object], str] = _indented) -> None:
    """Write JSON (old file or new, never half of one)."""
    write_text_atomic(path, dumps(data) + "\n")
