"""Writing a command's output file: folders made as needed, and one line (no traceback) when the
file cannot be written."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["write_output"]


def write_output(output: str | Path, text: str) -> Path:
    """Write ``text`` to ``output`` (UTF-8), creating its folder; a ClickException when it cannot."""
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from None
    return path
