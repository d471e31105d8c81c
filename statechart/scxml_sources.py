"""Reading the files an SCXML document names in ``src`` attributes, when the caller allows it.

``<data src>`` and ``<script src>`` make an SCXML document read files. The document is data,
often someone else's, so nothing is read unless the caller names a folder (``src_dir``); then
only regular files inside that folder (symlinks resolved), of at most ``max_bytes``, decoded as
UTF-8. Devices, FIFOs, ``/etc/passwd`` and ``../`` escapes are refused before they are opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .quoting import quote_repr

__all__ = ["MAX_SRC_BYTES", "SourceRefused", "read_src"]

#: The largest file a ``src`` attribute may read unless the caller raises it.
MAX_SRC_BYTES = 1024 * 1024


class SourceRefused(Exception):
    """A ``src`` the caller's settings do not allow, or cannot be read; becomes a located problem."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _relative_path(source: str) -> str:
    """The path part of a ``src``: a relative path, or a ``file:`` URL; other URL schemes are refused."""
    if source.startswith("file:"):
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise SourceRefused(f"src {quote_repr(source)} names another host", "name a file inside the src folder")
        return unquote(parts.path)
    scheme = urlsplit(source).scheme
    if scheme and len(scheme) > 1:  # one letter is a Windows drive
        raise SourceRefused(f"src {quote_repr(source)} is a {scheme}: URL; only files are read",
                            "copy the content into the document, or into a file inside the src folder")
    return source


def read_src(source: str, src_dir: str | os.PathLike[str] | None, max_bytes: int = MAX_SRC_BYTES) -> str:
    """The text of the file ``source`` names, relative to ``src_dir``; raises :class:`SourceRefused`."""
    if src_dir is None:
        raise SourceRefused(f"src {quote_repr(source)} is not read: this document was loaded without a src folder",
                            "a caller that trusts the document passes src_dir= to loads_scxml() "
                            "(CLI: --src-dir DIR); or write the content inline")
    root = Path(src_dir).resolve()
    relative = _relative_path(source)
    if Path(relative).is_absolute() or relative.startswith("~"):
        raise SourceRefused(f"src {quote_repr(source)} is an absolute path", f"name a file relative to {root}")
    try:
        path = (root / relative).resolve()  # symlinks resolved: a link cannot lead outside
    except (OSError, ValueError) as error:  # a NUL byte, a name too long, a loop of links
        reason = getattr(error, "strerror", None) or error
        raise SourceRefused(f"src {quote_repr(source)} cannot be looked up: {reason}") from None
    if path != root and root not in path.parents:
        raise SourceRefused(f"src {quote_repr(source)} is outside the src folder {root}",
                            "only files inside the src folder are read")
    try:
        info = path.stat()
    except (OSError, ValueError) as error:
        raise SourceRefused(f"cannot read src {quote_repr(source)}: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SourceRefused(f"src {quote_repr(source)} is not a regular file", "only regular files are read")
    if info.st_size > max_bytes:
        raise SourceRefused(f"src {quote_repr(source)} is {info.st_size} bytes, more than the limit of {max_bytes}",
                            "pass a larger max_src_bytes= to loads_scxml() (CLI: --max-src-bytes) if it is meant")
    try:
        with open(path, "rb") as handle:  # O_NONBLOCK is not needed: a FIFO was refused above
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise SourceRefused(f"cannot read src {quote_repr(source)}: {error.strerror or error}") from None
    if len(data) > max_bytes:  # the file grew after stat
        raise SourceRefused(f"src {quote_repr(source)} is more than the limit of {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceRefused(f"src {quote_repr(source)} is not UTF-8 text (byte {error.start} cannot be decoded)",
                            "src files hold text: a data value or a script") from None
