"""``statechart import`` and ``statechart export``: SCXML documents <-> YAML machine files."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .output import write_output
from .loading import allow_python_option, read_only_policy, src_options
from ..errors import LoadError, Problem
from ..machine import load, loads, loads_scxml
from ..scxml_export import export_scxml
from ..scxml_import import scxml_to_yaml

__all__ = ["import_command", "export_command"]

MACHINE_FILE = re.compile(r"^v(\d+)\.ya?ml$")


def _read(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LoadError([Problem(file, 1, 1, f"cannot read the file: {error}")]) from None


def _name_and_version(output: str | None) -> tuple[str | None, int | None]:
    """``machines/<name>/v<N>.yaml`` names the machine and its version; other paths name neither."""
    if output is None:
        return None, None
    path = Path(output)
    match = MACHINE_FILE.match(path.name)
    if not match:
        return None, None
    name = path.parent.name if path.parent.parent.name == "machines" else None
    return name, int(match.group(1))


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE.yaml",
              help="Write the YAML here (folders are created) instead of to standard output.")
@allow_python_option
@src_options
def import_command(file: str, output: str | None, allow_python: bool, src_dir: str | None, max_src_bytes: int) -> None:
    """Convert an SCXML document (Python datamodel) into a YAML machine file.

    Unsupported SCXML (<invoke>, other datamodels, elements of other namespaces) is refused
    with the element and its line, and nothing is written. Written to machines/<name>/v<N>.yaml,
    the machine is named <name> and numbered N.

    \b
    Example:
      statechart import chart.scxml -o machines/chart/v1.yaml
      statechart import chart.scxml            # the YAML on standard output
    """
    text = _read(file)
    folder = Path(file).parent
    # The document must compile as SCXML (problems point at its lines) ...
    policy = read_only_policy(allow_python)
    loads_scxml(text, file, base_dir=folder, python=policy, src_dir=src_dir, max_src_bytes=max_src_bytes)
    name, version = _name_and_version(output)
    yaml_text = scxml_to_yaml(text, file, folder, machine=name, version=version, src_dir=src_dir,
                              max_src_bytes=max_src_bytes)
    # ... and the YAML written must load as it is.
    try:
        loads(yaml_text, output or str(Path(file).with_suffix(".yaml")), base_dir=folder, python=policy)
    except LoadError as error:
        raise click.ClickException("the YAML made from this document does not load:\n"
                                   + "\n".join(f"  {p.message}" + (f" ({p.hint})" if p.hint else "")
                                               for p in error.problems)) from None
    if output is None:
        click.echo(yaml_text, nl=False)
        return
    write_output(output, yaml_text)
    click.echo(f"wrote {output}")


@click.command("export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE.scxml",
              help="Write the SCXML here (folders are created) instead of to standard output.")
@allow_python_option
def export_command(file: str, output: str | None, allow_python: bool) -> None:
    """Write a machine file as an SCXML document (Python datamodel).

    What SCXML cannot say (named Python actions and guards, emit, after, on_done, ...) is
    written in the sc: namespace, so `statechart import` gives back the same machine.

    \b
    Example:
      statechart export machines/order/v2.yaml -o order.scxml
      statechart export machines/order/v2.yaml         # the SCXML on standard output
    """
    text = export_scxml(load(file, python=read_only_policy(allow_python)))
    if output is None:
        click.echo(text, nl=False)
        return
    write_output(output, text)
    click.echo(f"wrote {output}")
