"""File names that come from a peer stay inside their directory.

``unpack DIR`` makes a provider write its embedded assets into a directory the
server then serves. Neither side may let a name escape it:

* provider side, :func:`write_files` (what :class:`~plugwire.http.drp.Provider`'s
  ``unpack`` returning a mapping of names to contents goes through) writes each
  file by walking the directory one component at a time with ``O_NOFOLLOW``
  relative to an open directory descriptor, so a name with ``..``, an absolute
  name, a name through a symlink or onto a symlink is refused, even when the
  symlink was planted before the write;
* server side, :func:`check_tree` walks a directory without following links and
  refuses any symlink whose target resolves outside it (the host runs it on the
  directory before and after ``unpack``).

Both raise :class:`PathEscapeError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from plugwire.core.errors import ProtocolError

__all__ = ["PathEscapeError", "check_name", "check_tree", "write_files"]


class PathEscapeError(ProtocolError):
    """A file name from a peer would leave its directory (``..``, an absolute name,
    a symlink pointing outside, or a name resolving through a symlink)."""


def check_name(name: str, *, peer: str | None = None, step: str = "unpack") -> tuple[str, ...]:
    """The components of a relative file name, or :class:`PathEscapeError`."""

    def refuse(why: str) -> PathEscapeError:
        return PathEscapeError(
            f"file name {name!r} {why}",
            peer=peer,
            step=step,
            expected="a relative name inside the directory",
            seen=repr(name)[:200],
        )

    if not isinstance(name, str) or not name:
        raise refuse("is empty")
    if "\0" in name:
        raise refuse("contains NUL")
    if name.startswith("/"):
        raise refuse("is absolute")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise refuse("contains '..'")
    if not parts:
        raise refuse("names the directory itself")
    return parts


def _open_dir(parent: int, part: str, *, create: bool) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(part, flags, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):
        os.mkdir(part, 0o755, dir_fd=parent)
    return os.open(part, flags, dir_fd=parent)


def write_files(
    directory: str | os.PathLike[str],
    files: Mapping[str, bytes | str],
    *,
    peer: str | None = None,
    step: str = "unpack",
) -> list[Path]:
    """Write ``files`` (relative name -> content) under ``directory``; return the paths.

    Every name is checked first (:func:`check_name`), so nothing is written when one
    is bad. Then each path is walked from an open descriptor of ``directory`` with
    ``O_NOFOLLOW``: a symlink on the way, or as the file itself, raises
    :class:`PathEscapeError` instead of being followed."""
    checked = [(check_name(name, peer=peer, step=step), name, data) for name, data in files.items()]
    root = os.fspath(directory)
    written: list[Path] = []
    for parts, name, data in checked:
        fds: list[int] = []
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fds.append(fd)
            for part in parts[:-1]:
                fd = _open_dir(fd, part, create=True)
                fds.append(fd)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(parts[-1], flags, 0o644, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PathEscapeError(
                    f"file name {name!r} goes through or onto a symlink",
                    peer=peer,
                    step=step,
                    expected="plain directories and files inside the directory",
                    seen=f"{type(exc).__name__}: {exc.strerror}",
                ) from None
            raise
        finally:
            for opened in fds:
                os.close(opened)
        with os.fdopen(out, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        written.append(Path(root, *parts))
    return written


def check_tree(
    directory: str | os.PathLike[str], *, peer: str | None = None, step: str = "unpack"
) -> None:
    """Refuse (:class:`PathEscapeError`) a directory holding a symlink whose target
    resolves outside it, or anything but files, directories and such links."""
    root = Path(os.path.realpath(directory))
    for here, dirs, names in os.walk(root, followlinks=False):
        for entry in (*dirs, *names):
            path = Path(here, entry)
            mode = os.lstat(path).st_mode
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                target = os.readlink(path)
                resolved = Path(os.path.realpath(path))
                if os.path.isabs(target) or not resolved.is_relative_to(root):
                    raise PathEscapeError(
                        f"{rel} is a symlink leaving the directory",
                        peer=peer,
                        step=step,
                        expected=f"links that stay inside {root}",
                        seen=f"{rel} -> {target}",
                    )
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise PathEscapeError(
                    f"{rel} is neither a file nor a directory",
                    peer=peer,
                    step=step,
                    expected="files, directories and inner links",
                    seen=f"mode {stat.filemode(mode)}",
                )
