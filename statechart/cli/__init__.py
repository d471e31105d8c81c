"""The ``statechart`` command: thin wrappers that parse arguments, call the library, and print.

Exit codes scripts can rely on: 0 ok, 1 findings or failures (a bad machine file, an
unhandled event in strict mode), 2 usage errors. A user error never shows a traceback.
"""

from __future__ import annotations

import sys

import click

from ..errors import StatechartError
from .machines import run_command, validate_command
from .migrations import diff_command, makemigration_command, migrate_command, migrations_group
from .store import instances_group, metrics_command, outbox_group, send_command, store_group, worker_command
from .scxml import export_command, import_command
from .render import render_command, render_migration_command
from .analysis import check_command, fuzz_command, paths_command
from .demo import demo_command

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="statechart")
def cli() -> None:
    """Hierarchical statecharts with W3C SCXML semantics, authored in YAML.

    \b
    Example:
      statechart validate machines/
      statechart run machines/order/v2.yaml --event ADD='{"price": 5}' --event CHECKOUT
      statechart instances create order --id order-1 --store sqlite:///app.db
      statechart send order-1 ADD --data '{"price": 5}' --store sqlite:///app.db
      statechart migrations check delivery
      statechart migrate delivery --store sqlite:///app.db
    """


cli.add_command(validate_command)
cli.add_command(run_command)
cli.add_command(instances_group)
cli.add_command(send_command)
cli.add_command(worker_command)
cli.add_command(outbox_group)
cli.add_command(metrics_command)
cli.add_command(store_group)
cli.add_command(import_command)
cli.add_command(export_command)
cli.add_command(diff_command)
cli.add_command(makemigration_command)
cli.add_command(migrations_group)
cli.add_command(migrate_command)
cli.add_command(render_command)
cli.add_command(render_migration_command)
cli.add_command(check_command)
cli.add_command(paths_command)
cli.add_command(fuzz_command)
cli.add_command(demo_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point; maps our exceptions to a message and exit code 1 instead of a traceback."""
    try:
        outcome = cli.main(args=argv, prog_name="statechart", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except StatechartError as error:
        click.echo(click.style("error: ", fg="red", bold=True) + str(error), err=True)
        return 1
    except (BrokenPipeError, KeyboardInterrupt):
        return 1
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
