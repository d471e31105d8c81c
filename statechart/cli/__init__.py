"""The ``statechart`` command: thin wrappers that parse arguments, call the library, and print.

Exit codes scripts can rely on: 0 ok, 1 findings or failures (a bad machine file, an
unhandled event in strict mode), 2 usage errors. A user error never shows a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module

import click

from ..errors import StatechartError

__all__ = ["main", "cli", "COMMANDS"]

#: Every command: name -> (module under statechart.cli, attribute, one-line help). The help line is
#: what ``statechart --help`` lists without importing the command's module; a test checks that each
#: entry resolves to the command of that name and that no command is missing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("machines", "validate_command", "Check machine files and report every problem."),
    "run": ("machines", "run_command", "Start an instance of FILE, send events, print each step."),
    "check": ("analysis", "check_command", "Find unreachable states, dead ends, traps and more."),
    "paths": ("analysis", "paths_command", "The shortest event sequence that reaches each state."),
    "fuzz": ("analysis", "fuzz_command", "Drive instances with random events and check invariants."),
    "render": ("render", "render_command", "Draw a machine as a diagram."),
    "render-migration": ("render", "render_migration_command", "Draw one migration step side by side."),
    "review": ("review", "review_command", "Write the review page of a new version (changes, risks, step, checks)."),
    "import": ("scxml", "import_command", "Convert an SCXML document into a YAML machine file."),
    "export": ("scxml", "export_command", "Write a machine file as an SCXML document."),
    "instances": ("store", "instances_group", "List, inspect, create, drive and delete stored instances."),
    "send": ("store", "send_command", "Send EVENT to the stored instance ID in one transaction."),
    "worker": ("store", "worker_command", "Fire due timers (delayed sends and `after` transitions)."),
    "outbox": ("store", "outbox_group", "Emitted events waiting to be published."),
    "metrics": ("store", "metrics_command", "Lifecycle metrics of a store."),
    "store": ("store", "store_group", "Store maintenance: prune old audit, outbox and idempotency rows."),
    "migrations": ("migrations", "migrations_group", "Write, prove and run migration steps."),
    "diff": ("migrations", "diff_command", "Compare two machine files (also `migrations diff`)."),
    "makemigration": ("migrations", "makemigration_command", "Draft a migration step (also `migrations makemigration`)."),
    "migrate": ("migrations", "migrate_command", "Move stored instances to a version (also `migrations migrate`)."),
    "schema": ("schema", "schema_command", "Print or write the JSON Schema of machine files."),
    "serve": ("serve", "serve_command", "A local web app: simulate machines, replay stored instances."),
    "demo": ("demo", "demo_command", "A populated SQLite store, metrics, a migration and diagrams."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs (or shows its help).

    ``statechart --help`` and ``--version`` then cost click and nothing else; the compiler, the
    store, networkx and hypothesis are imported by the commands that need them.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        return getattr(import_module(f"{__name__}.{module}"), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="statechart")
def cli() -> None:
    """Hierarchical statecharts with W3C SCXML semantics, authored in YAML.

    \b
    Example:
      statechart demo
      statechart validate machines/
      statechart run machines/order/v2.yaml --event ADD='{"price": 5}' --event CHECKOUT
      statechart instances create order --id order-1 --store sqlite:///app.db
      statechart send order-1 ADD --data '{"price": 5}' --store sqlite:///app.db
      statechart migrations check delivery
      statechart migrations migrate delivery --store sqlite:///app.db
    """


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
