"""JSON given on the command line (``--data``, ``NAME=JSON`` events): one parser for every command.

It goes through :func:`statechart.json_text.parse_json_text`, so the nesting-depth and size limits
that protect the library from hostile documents hold for CLI input too, and a bad value is a
``click.BadParameter`` naming the option and the character where parsing stopped (never a traceback).
"""

from __future__ import annotations

from typing import Any

import click

from ..json_text import JSONTextError, parse_json_text

__all__ = ["parse_json_option", "json_object_option"]


def parse_json_option(text: str, *, option: str | None = None, what: str | None = None) -> Any:
    """The JSON value of ``text``.

    ``option`` (``--data``) becomes click's parameter hint ("Invalid value for '--data'");
    ``what`` names a value that is not a whole option ("the data of event 'ADD' is not valid JSON").
    """
    try:
        return parse_json_text(text)
    except JSONTextError as error:
        message = f"not valid JSON: {error.message} (at character {error.position})"
        raise click.BadParameter(f"{what} is {message}" if what else message,
                                 param_hint=f"'{option}'" if option else None) from None


def json_object_option(text: str | None, option: str) -> dict[str, Any] | None:
    """The JSON object of ``text`` (``None`` when the option was not given); any other JSON value is refused."""
    if text is None:
        return None
    data = parse_json_option(text, option=option)
    if not isinstance(data, dict):
        raise click.BadParameter(f"must be a JSON object, not {type(data).__name__}", param_hint=f"'{option}'")
    return data
