"""``statechart schema``: the JSON Schemas that ship with the package, for editors and CI."""

from __future__ import annotations

from importlib import resources

import click

from .output import write_output

__all__ = ["schema_command", "schema_text"]

SCHEMAS = {"machine": "machine.schema.json", "snapshot": "snapshot.schema.json"}


def schema_text(kind: str = "machine") -> str:
    """The installed schema's text (the same file the tests check against the loader)."""
    return resources.files("statechart").joinpath("schemas", SCHEMAS[kind]).read_text(encoding="utf-8")


@click.command("schema")
@click.option("--write", "target", metavar="PATH", type=click.Path(dir_okay=False),
              help="Write the schema to PATH (for an editor setting or a CI step) instead of printing it.")
@click.option("--path", "show_path", is_flag=True, help="Print where the installed schema file is.")
@click.option("--snapshot", is_flag=True, help="The snapshot schema instead of the machine file schema.")
def schema_command(target: str | None, show_path: bool, snapshot: bool) -> None:
    """Print (or write) the JSON Schema of machine files, as installed with this version.

    \b
    Example:
      statechart schema --write .statechart/machine.schema.json
      statechart schema --path
      statechart schema --snapshot > snapshot.schema.json
    """
    kind = "snapshot" if snapshot else "machine"
    if show_path:
        click.echo(str(resources.files("statechart").joinpath("schemas", SCHEMAS[kind])))
        return
    text = schema_text(kind)
    if target is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_output(target, text)
    click.echo(f"wrote the {kind} schema to {target}", err=True)
