"""``statechart serve``: the local simulator and audit-trail replay web app (Flask, optional)."""

from __future__ import annotations

import ipaddress

import click

__all__ = ["serve_command", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.argument("machines_dir", metavar="[MACHINES]", default="machines", required=False,
                type=click.Path(file_okay=True, dir_okay=True))
@click.option("--store", "store_url", metavar="URL",
              help="Also browse this store's instances and replay their audit trail (read-only by default).")
@click.option("--allow-send", is_flag=True,
              help="Let the page send events to stored instances and create them (writes to --store).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; anything but loopback exposes the simulator to the network.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="The port (0: any free one).")
def serve_command(machines_dir: str, store_url: str | None, allow_send: bool, host: str, port: int) -> None:
    """Simulate machines in the browser; replay stored instances step by step.

    Pick a machine and version, click enabled events (with a JSON payload), advance a virtual
    clock, step back; with --store, open a stored instance and step through its audit trail on
    the diagram. The store is only read unless --allow-send is given.

    \b
    Example:
      statechart serve machines/
      statechart serve machines/ --store sqlite:///app.db
      statechart serve machines/ --store sqlite:///app.db --allow-send --port 8800
    """
    from ..web import INSTALL_HINT

    try:
        import flask  # noqa: F401 - only to know whether the extra is installed
    except ImportError:
        raise click.ClickException(INSTALL_HINT) from None
    from ..web.app import create_app, threaded_server
    from ..web.catalog import load_catalog
    from ..web.replay import check_store_url

    if allow_send and not store_url:
        raise click.UsageError("--allow-send writes to a store: give it with --store URL")
    catalog = load_catalog(machines_dir)
    if store_url:
        check_store_url(store_url, allow_send)
        from ..store import Store

        Store.open(store_url).close()  # a bad URL or an unusable schema is reported now, not on the page
    loopback = is_loopback(host)
    if not loopback:
        click.echo(click.style("warning: ", fg="yellow", bold=True)
                   + f"listening on {host}, not loopback: anyone who can reach it can drive the simulator"
                   + (" and write to the store (--allow-send)" if allow_send else "")
                   + "; there is no login", err=True)
    app = create_app(catalog, store_url=store_url, allow_send=allow_send, loopback_only=loopback)
    try:
        server = threaded_server(app, host, port)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}; "
                                   "pick another --port") from None
    shown = f"[{host}]" if ":" in host else host
    for problem in catalog.problems:
        click.echo(click.style("not loaded: ", fg="yellow") + problem, err=True)
    click.echo(f"statechart serve: {len(catalog.machines)} machine versions from {machines_dir}"
               + (f", store {store_url} ({'read-write' if allow_send else 'read-only'})" if store_url else ""))
    click.echo(f"open http://{shown}:{server.port}/  (Ctrl+C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
