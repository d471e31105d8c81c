"""Commands over a store: ``instances``, ``send``, ``worker``, ``outbox`` and ``metrics``.

Thin wrappers over :class:`statechart.Store`: every command takes ``--store URL`` (default: the
environment variable STATECHART_STORE, else ``sqlite:///statechart.db``) and ``--machines DIR``
(default ``machines``, the folder of ``<name>/v<N>.yaml`` files to register).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import click
from click.core import ParameterSource

from ..durations import format_duration, parse_duration
from ..errors import CorruptInstanceError, DatabaseError, StoreError
from ..store import Receipt, Store, StoredInstance
from ..store.core import DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_BACKOFF
from ..store.inputs import MAX_LIMIT, MAX_VERSION
from ..text_tables import format_table
from .options import json_object_option, parse_json_option

__all__ = ["instances_group", "send_command", "worker_command", "outbox_group", "metrics_command",
           "store_group", "DEFAULT_STORE"]

DEFAULT_STORE = "sqlite:///statechart.db"
_sleep = time.sleep  # the worker's idle wait (tests replace it)


class Duration(click.ParamType):
    """``500ms``, ``30s``, ``5m``, ``2h``, ``1d`` -> seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


DURATION = Duration()
#: A machine version and a page size as the store accepts them (a huge number is a usage error).
VERSION = click.IntRange(1, MAX_VERSION)
LIMIT = click.IntRange(1, MAX_LIMIT)


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--store URL`` and ``--machines DIR`` on a command."""
    command = click.option("--machines", "machines_dir", default="machines", show_default=True, metavar="DIR",
                           help="Folder of machines/<name>/v<N>.yaml files (or one file) to register.")(command)
    return click.option("--store", "store_url", envvar="STATECHART_STORE", default=DEFAULT_STORE,
                        show_default=True, metavar="URL", show_envvar=True,
                        help="sqlite:///path.db or postgresql://user@host/db.")(command)


@contextmanager
def opened(store_url: str, machines_dir: str, *, register: bool = True, strict: bool = False,
           **options: Any) -> Iterator[Store]:
    """The store at ``store_url`` with the machines of ``machines_dir`` registered; closed afterwards."""
    path = Path(machines_dir)
    if register and not path.exists():
        context = click.get_current_context()
        if context.get_parameter_source("machines_dir") is not ParameterSource.DEFAULT:
            raise click.BadParameter(f"{machines_dir!r} does not exist", param_hint="'--machines'")
        register = False  # no machines/ folder here: commands that need a machine say which one is missing
    store = Store.open(store_url, strict=strict, **options)
    try:
        if register:
            store.register(path)
        yield store
    finally:
        store.close()


# -- formatting -------------------------------------------------------------------------------------------
def dump(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def _timestamp(moment: float) -> str:
    try:
        return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"t={moment:g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = (),
          indent: str = "  ") -> None:
    """Echo plain aligned columns with a bold header; ``right``: indexes of right-aligned (numeric) columns."""
    lines = format_table(headers, rows, right=right, indent=indent)
    if rows:
        lines[0] = click.style(lines[0], bold=True)
    for line in lines:
        click.echo(line)


def _heading(text: str) -> None:
    click.echo(click.style(text, bold=True))


def _leaves(store: Store, stored: StoredInstance) -> list[str]:
    """The active atomic states in document order (the whole configuration, sorted, when the machine
    version is not registered)."""
    machine = store.machines.get((stored.machine, stored.version))
    if machine is None:
        return sorted(stored.configuration)
    states = machine.model.states
    return sorted((s for s in stored.configuration if s in states and states[s].is_atomic),
                  key=lambda s: states[s].order)


def _instance_document(store: Store, stored: StoredInstance) -> dict[str, Any]:
    return {
        "id": stored.id, "machine": stored.machine, "version": stored.version,
        "state": _leaves(store, stored), "configuration": sorted(stored.configuration),
        "data": stored.data, "done": stored.done, "revision": stored.revision,
        "created_at": stored.created_at, "updated_at": stored.updated_at,
        "state_entered": dict(sorted(stored.state_entered.items())),
        "pending_timers": [{"id": p.id, "event": p.event, "data": p.data, "due": p.due}
                           for p in sorted(stored.pending_sends, key=lambda p: (p.due, p.seq))],
    }


# -- instances --------------------------------------------------------------------------------------------
@click.group("instances")
def instances_group() -> None:
    """List, inspect, create, drive and delete stored instances.

    \b
    Example:
      statechart instances create order --id order-1 --data '{"total": 0}'
      statechart instances send order-1 ADD --data '{"price": 5}'
      statechart instances list --machine order --state cart --stuck-for 2h
      statechart instances show order-1
    """


@instances_group.command("list")
@click.option("--machine", metavar="M", help="Only instances of this machine.")
@click.option("--version", "version", type=VERSION, metavar="N", help="Only instances on this machine version.")
@click.option("--state", metavar="S", help="Only instances with this state active.")
@click.option("--stuck-for", type=DURATION, metavar="DURATION",
              help="Only unfinished instances whose state (--state, else any atomic one) was entered this long ago.")
@click.option("--limit", type=LIMIT, default=100, show_default=True)
@click.option("--after", metavar="ID", help="Start after this id (the last one of the previous page).")
@click.option("--failed", is_flag=True,
              help="List quarantined work instead: instances whose timer, publish or migration failed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
def instances_list_command(machine: str | None, version: int | None, state: str | None, stuck_for: float | None,
                           limit: int, after: str | None, failed: bool, as_json: bool, store_url: str,
                           machines_dir: str) -> None:
    """List stored instances by id, with their active states (--failed: their recorded failures).

    A row that cannot be decoded is reported on stderr by id; the listing goes on.

    \b
    Example:
      statechart instances list --machine order --stuck-for 2h --json
      statechart instances list --failed
    """
    if failed:
        if machine is not None or version is not None or state is not None or stuck_for is not None:
            raise click.UsageError("--failed lists failures of any instance; it takes only --limit, --after, --json")
        with opened(store_url, machines_dir, register=False) as store:
            failures = store.failures(limit=limit, after=after)
            now = store.clock.now()
        if as_json:
            dump([f.to_dict() for f in failures])
            return
        table(("ID", "KIND", "ITEM", "ATTEMPTS", "STATUS", "ERROR"),
               [(f.instance_id, f.kind, f.item, f.attempts,
                 "parked" if f.parked else ("retry in " + format_duration(f.next_attempt_at - now)
                                            if f.next_attempt_at > now else "retry due"),
                 f.error if len(f.error) <= 120 else f.error[:117] + "...") for f in failures],
               right=(3,), indent="")
        if any(f.parked for f in failures):
            click.echo("retry a parked one with: statechart instances retry ID", err=True)
        return
    with opened(store_url, machines_dir) as store:
        corrupt: list[CorruptInstanceError] = []
        found = store.list(machine, version=version, state=state, stuck_for=stuck_for, limit=limit, after=after,
                           corrupt=corrupt)
        for error in corrupt:
            click.echo(click.style("error: ", fg="red", bold=True) + str(error), err=True)
        seen: set[str] = set()
        unique = [i for i in found if not (i.id in seen or seen.add(i.id))]  # type: ignore[func-returns-value]
        if as_json:
            dump([_instance_document(store, i) for i in unique])
            return
        now = store.clock.now()
        table(("ID", "MACHINE", "STATE", "REVISION", "UPDATED"),
               [(i.id, f"{i.machine} v{i.version}", ", ".join(_leaves(store, i)) + (" (done)" if i.done else ""),
                 i.revision, f"{format_duration(now - i.updated_at)} ago") for i in unique], right=(3,), indent="")


@instances_group.command("show")
@click.argument("instance_id", metavar="ID")
@click.option("--audit", "audit_rows", type=click.IntRange(0, MAX_LIMIT), default=10, show_default=True,
              help="How many of the latest audit rows to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@store_options
def instances_show_command(instance_id: str, audit_rows: int, as_json: bool, store_url: str,
                           machines_dir: str) -> None:
    """Show one instance: configuration, data, revision, pending timers and its latest audit rows.

    \b
    Example:
      statechart instances show order-1 --json
    """
    with opened(store_url, machines_dir) as store:
        stored = store.load(instance_id)
        audit = store.audit(instance_id)
        latest = audit[-audit_rows:] if audit_rows else []
        if as_json:
            dump({**_instance_document(store, stored), "audit": latest, "audit_total": len(audit)})
            return
        now = store.clock.now()
        leaves = _leaves(store, stored)
        click.echo(click.style(stored.id, bold=True) + f"  {stored.machine} v{stored.version}, revision "
                   f"{stored.revision}" + (click.style("  (done)", fg="green") if stored.done else ""))
        entered = [stored.state_entered.get(s) for s in leaves]
        since = f"  (for {format_duration(now - min(e for e in entered if e is not None))})" if any(
            e is not None for e in entered) else ""
        rows = [("state", ", ".join(leaves) + since),
                ("config", ", ".join(sorted(stored.configuration))),
                ("data", json.dumps(stored.data, ensure_ascii=False, default=str)),
                ("created", _timestamp(stored.created_at)),
                ("updated", _timestamp(stored.updated_at))]
        for label, value in rows:
            click.echo(f"  {label:<9} {value}")
        click.echo(click.style("timers", bold=True))
        pending = sorted(stored.pending_sends, key=lambda p: (p.due, p.seq))
        when = [f"{_timestamp(p.due)} ({'in ' + format_duration(p.due - now) if p.due > now else 'due'})" for p in pending]
        table(("EVENT", "ID", "DUE"), [(p.event, p.id, w) for p, w in zip(pending, when)])
        click.echo(click.style("audit", bold=True) + (f" (latest {len(latest)} of {len(audit)})"
                                                       if len(latest) < len(audit) else ""))
        table(("REV", "EVENT", "OUTCOME", "TO", "ACTOR", "AT"),
               [(r["revision"], r["event"], r["outcome"] + (f": {r['reason']}" if r["reason"] else ""),
                 ", ".join(r["configuration_after"]), r["actor"] or "-", _timestamp(r["created_at"]))
                for r in latest], right=(0,))


@instances_group.command("retry")
@click.argument("instance_id", metavar="ID")
@click.option("--kind", type=click.Choice(["timer", "outbox", "migration"]),
              help="Only this kind of failed work (default: all of the instance's).")
@store_options
def instances_retry_command(instance_id: str, kind: str | None, store_url: str, machines_dir: str) -> None:
    """Try the failed (or parked) work of instance ID again: its timer fires at the next worker round,
    its outbox events go to the next relay round, the next `statechart migrate` takes it.

    \b
    Example:
      statechart instances list --failed
      statechart instances retry order-17
    """
    with opened(store_url, machines_dir, register=False) as store:
        cleared = store.retry(instance_id, kind)
    if not cleared:
        raise StoreError(f"instance {instance_id!r} has no recorded {kind + ' ' if kind else ''}failure; "
                         "see `statechart instances list --failed`")
    click.echo(f"{instance_id}: {cleared} failure(s) cleared; the work is tried again at the next round")


@instances_group.command("create")
@click.argument("machine", metavar="MACHINE")
@click.option("--id", "instance_id", metavar="ID", help="The new instance's id (default: a random one).")
@click.option("--data", "data_text", metavar="JSON", help="Initial data (a JSON object) merged over the machine's.")
@click.option("--version", "version", type=VERSION, metavar="N",
              help="Machine version (default: the latest registered).")
@click.option("--actor", metavar="A", help="Who creates it, for the audit log.")
@click.option("--json", "as_json", is_flag=True, help="Print the new instance as JSON.")
@store_options
def instances_create_command(machine: str, instance_id: str | None, data_text: str | None, version: int | None,
                             actor: str | None, as_json: bool, store_url: str, machines_dir: str) -> None:
    """Start a new instance of MACHINE and store it.

    \b
    Example:
      statechart instances create order --id order-1 --data '{"total": 0}' --actor ops
    """
    data = json_object_option(data_text, "--data")
    with opened(store_url, machines_dir) as store:
        stored = store.create(machine, data, id=instance_id, version=version, actor=actor)
        if as_json:
            dump(_instance_document(store, stored))
            return
        click.echo(f"created {click.style(stored.id, bold=True)} ({stored.machine} v{stored.version}) in "
                   f"{', '.join(_leaves(store, stored))}" + (" (done)" if stored.done else ""))


def _print_receipt(receipt: Receipt) -> None:
    if receipt.outcome == "applied":
        status = click.style("applied", fg="green")
    else:
        status = click.style("not handled", fg="yellow")
    click.echo(f"{receipt.instance_id}  {receipt.event}  {status}  revision {receipt.revision}"
               + (click.style("  (done)", fg="green") if receipt.done else ""))
    if receipt.replayed:
        click.echo("  replayed   the idempotency key was used before with this request; nothing changed")
    if receipt.transitions:
        click.echo(f"  {'via':<10} {', '.join(receipt.transitions)}")
    click.echo(f"  {'now in':<10} {', '.join(receipt.configuration_after)}")
    for effect in receipt.effects:
        click.echo(f"  {'emit':<10} {effect['event']} {json.dumps(effect['data'], ensure_ascii=False)}")


@click.command("send")
@click.argument("instance_id", metavar="ID")
@click.argument("event", metavar="EVENT")
@click.option("--data", "data_text", metavar="JSON", help="The event's data (any JSON value).")
@click.option("--key", "idempotency_key", metavar="IDEMPOTENCY_KEY",
              help="Send at most once per key: a retry with the same key replays the first receipt.")
@click.option("--actor", metavar="A", help="Who sends it, for the audit log.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) when the event is unknown or not handled.")
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@store_options
def send_command(instance_id: str, event: str, data_text: str | None, idempotency_key: str | None,
                 actor: str | None, strict: bool, as_json: bool, store_url: str, machines_dir: str) -> None:
    """Send EVENT to the stored instance ID: one atomic, audited step.

    \b
    Example:
      statechart send order-1 ADD --data '{"price": 5}' --key req-42 --actor api
      statechart instances send order-1 CHECKOUT --json
    """
    data = parse_json_option(data_text, option="--data") if data_text is not None else None
    with opened(store_url, machines_dir, strict=strict) as store:
        receipt = store.send(instance_id, event, data, idempotency_key=idempotency_key, actor=actor)
    if as_json:
        dump({**receipt.to_dict(), "replayed": receipt.replayed})
    else:
        _print_receipt(receipt)


instances_group.add_command(send_command)


@instances_group.command("delete")
@click.argument("instance_id", metavar="ID")
@store_options
def instances_delete_command(instance_id: str, store_url: str, machines_dir: str) -> None:
    """Delete a stored instance with its timers (its audit rows and outbox events stay).

    \b
    Example:
      statechart instances delete order-1
    """
    with opened(store_url, machines_dir, register=False) as store:
        store.delete(instance_id)
    click.echo(f"deleted {instance_id}")


# -- worker -----------------------------------------------------------------------------------------------
@click.command("worker")
@click.option("--poll", type=DURATION, default="1s", show_default=True, metavar="DURATION",
              help="How long to wait when no timer is due.")
@click.option("--batch", type=LIMIT, default=100, show_default=True,
              help="Timers fired per round before looking again.")
@click.option("--once", is_flag=True, help="Fire the timers that are due now, then exit.")
@click.option("--max-attempts", type=click.IntRange(min=1), default=DEFAULT_MAX_ATTEMPTS, show_default=True,
              help="Attempts before a failing timer is parked (see `instances list --failed`).")
@click.option("--retry-backoff", type=DURATION, default=f"{DEFAULT_RETRY_BACKOFF:g}s", show_default=True,
              metavar="DURATION", help="Wait before retrying a failed timer; doubles after each failure.")
@store_options
def worker_command(poll: float, batch: int, once: bool, max_attempts: int, retry_backoff: float, store_url: str,
                   machines_dir: str) -> None:
    """Fire due timers (delayed sends and `after` transitions), a line per timer, until Ctrl-C.

    Several workers may share a PostgreSQL store; no timer fires twice. A timer whose step fails
    is recorded and retried with backoff, then parked; the other timers go on firing. When the
    database is briefly unavailable (a dropped connection, a timeout) the worker says so and tries
    again after --poll, connecting again; with --once it exits 1 instead.

    \b
    Example:
      statechart worker --store postgresql://app@db/app --poll 500ms
      statechart worker --once          # from cron
    """
    fired = failed = 0
    with opened(store_url, machines_dir, max_attempts=max_attempts, retry_backoff=retry_backoff) as store:
        try:
            while True:
                try:
                    receipts = store.fire_due(batch)
                except DatabaseError as error:
                    if once or not (error.retryable or error.commit_unknown):
                        raise
                    click.echo(f"warning: {error}; trying again in {format_duration(poll)}", err=True)
                    _sleep(poll)
                    continue
                for receipt in receipts:
                    if receipt.outcome == "failed":
                        failed += 1
                        click.echo(f"failed {receipt.event} on {receipt.instance_id}: recorded for a retry; "
                                   "see `statechart instances list --failed`", err=True)
                        continue
                    fired += 1
                    outcome = click.style(receipt.outcome, fg="green" if receipt.handled else "yellow")
                    click.echo(f"fired {receipt.event} on {receipt.instance_id}: {outcome}, revision "
                               f"{receipt.revision}, now in {', '.join(receipt.configuration_after)}")
                if receipts:
                    continue
                if once:
                    break
                try:
                    store.purge_idempotency_keys()
                except DatabaseError as error:
                    if not error.retryable:
                        raise
                    click.echo(f"warning: {error}", err=True)
                _sleep(poll)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
    click.echo(f"{fired} timer(s) fired" + (f", {failed} failed (quarantined)" if failed else ""), err=True)


# -- outbox -----------------------------------------------------------------------------------------------
@click.group("outbox")
def outbox_group() -> None:
    """Emitted events waiting to be published (the transactional outbox).

    \b
    Example:
      statechart outbox list --json
      statechart outbox publish 17 18
      statechart outbox lag
    """


@outbox_group.command("list")
@click.option("--limit", type=LIMIT, default=100, show_default=True)
@click.option("--after", "after_id", type=click.IntRange(0, 2**63 - 1), metavar="ID",
              help="Start after this outbox id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
def outbox_list_command(limit: int, after_id: int | None, as_json: bool, store_url: str, machines_dir: str) -> None:
    """List unpublished events in commit order.

    \b
    Example:
      statechart outbox list --limit 10 --json
    """
    with opened(store_url, machines_dir, register=False) as store:
        events = store.outbox.pending(limit, after_id)
        now = store.clock.now()
    if as_json:
        dump([e.to_dict() for e in events])
        return
    table(("ID", "INSTANCE", "MACHINE", "EVENT", "DATA", "WAITING"),
           [(e.id, e.instance_id, e.machine, e.event, json.dumps(e.data, ensure_ascii=False),
             format_duration(now - e.created_at)) for e in events], right=(0,), indent="")


@outbox_group.command("publish")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=click.IntRange(0, 2**63 - 1))
@store_options
def outbox_publish_command(ids: tuple[int, ...], store_url: str, machines_dir: str) -> None:
    """Mark outbox events published (after delivering them yourself); marking twice is harmless.

    \b
    Example:
      statechart outbox publish 17 18 19
    """
    with opened(store_url, machines_dir, register=False) as store:
        known = {e.id for e in store.outbox.events(ids)}
        missing = sorted(set(ids) - known)
        if missing:
            raise StoreError(f"no outbox event with id {', '.join(map(str, missing))}; nothing was marked")
        marked = store.outbox.mark_published(ids)
    already = len(set(ids)) - marked
    click.echo(f"marked {marked} event(s) published" + (f"; {already} already were" if already else ""))


@outbox_group.command("lag")
@click.option("--json", "as_json", is_flag=True, help='Print {"lag_seconds": ..., "unpublished": ...}.')
@store_options
def outbox_lag_command(as_json: bool, store_url: str, machines_dir: str) -> None:
    """How long the oldest unpublished event has waited, and how many wait.

    \b
    Example:
      statechart outbox lag --json
    """
    with opened(store_url, machines_dir, register=False) as store:
        lag = store.outbox.lag()
        waiting = store.outbox.count(False)
    if as_json:
        dump({"lag_seconds": lag, "unpublished": waiting})
    else:
        click.echo(f"lag {format_duration(lag)} ({lag:.3f}s), {waiting} unpublished")


# -- store maintenance ----------------------------------------------------------------------------------
@click.group("store")
def store_group() -> None:
    """Store maintenance: retention of audit rows, published outbox events and idempotency keys.

    \b
    Example:
      statechart store prune --audit-older-than 90d --outbox-published-older-than 7d
    """


@store_group.command("prune")
@click.option("--audit-older-than", type=DURATION, metavar="DURATION", help="Delete audit rows older than this.")
@click.option("--outbox-published-older-than", type=DURATION, metavar="DURATION",
              help="Delete outbox events published longer ago than this (unpublished ones are always kept).")
@click.option("--idempotency-older-than", type=DURATION, metavar="DURATION",
              help="Forget idempotency keys older than this (a retry after that is a new request).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows deleted per transaction.")
@click.option("--json", "as_json", is_flag=True, help='Print {"audit": N, "outbox": N, "idempotency": N}.')
@store_options
def store_prune_command(audit_older_than: float | None, outbox_published_older_than: float | None,
                        idempotency_older_than: float | None, batch_size: int, as_json: bool, store_url: str,
                        machines_dir: str) -> None:
    """Delete old rows in short batches, beside live traffic (run it from cron).

    \b
    Example:
      statechart store prune --audit-older-than 90d --outbox-published-older-than 7d --idempotency-older-than 7d
    """
    if audit_older_than is None and outbox_published_older_than is None and idempotency_older_than is None:
        raise click.UsageError("say what to prune: --audit-older-than, --outbox-published-older-than and/or "
                               "--idempotency-older-than")
    with opened(store_url, machines_dir, register=False) as store:
        counts = store.prune(audit_older_than=audit_older_than,
                             outbox_published_older_than=outbox_published_older_than,
                             idempotency_older_than=idempotency_older_than, batch_size=batch_size)
    if as_json:
        dump(counts.to_dict())
        return
    for name, age in (("audit", audit_older_than), ("outbox", outbox_published_older_than),
                      ("idempotency", idempotency_older_than)):
        if age is not None:
            click.echo(f"{name}: {getattr(counts, name)} row(s) older than {format_duration(age)} deleted")


# -- metrics ----------------------------------------------------------------------------------------------
@click.command("metrics")
@click.option("--machine", metavar="M", help="Only this machine's instances and events.")
@click.option("--window", type=DURATION, metavar="DURATION", help="Count events of this last period (default: all).")
@click.option("--stuck-after", type=DURATION, default="1h", show_default=True, metavar="DURATION",
              help="An unfinished instance in a non-final state this long is stuck.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@store_options
def metrics_command(machine: str | None, window: float | None, stuck_after: float, as_json: bool, store_url: str,
                    machines_dir: str) -> None:
    """Lifecycle metrics: instances, events by outcome, transitions, time in state, stuck instances, outbox.

    \b
    Example:
      statechart metrics --machine order --window 1h --stuck-after 2h
      statechart metrics --json
    """
    if window is not None and window <= 0:
        raise click.BadParameter("must be longer than 0s", param_hint="'--window'")
    with opened(store_url, machines_dir) as store:
        metrics = store.metrics(machine=machine, window=window, stuck_after=stuck_after)
    if as_json:
        dump(metrics.to_dict())
        return
    heading = _heading
    heading("instances")
    table(("MACHINE", "VERSION", "INSTANCES", "ACTIVE", "DONE"),
           [(p.machine, p.version, p.instances, p.active, p.done) for p in metrics.instances], right=(1, 2, 3, 4))
    events = metrics.events
    heading(f"events ({'last ' + format_duration(window) if window else 'all time'})")
    rate = f", {metrics.events_per_second:.3g}/s" if metrics.events_per_second is not None else ""
    click.echo(f"  {events.total} events{rate}: {events.applied} applied, {events.unhandled} unhandled, "
               f"{events.rejected} rejected; illegal rate {events.illegal_rate:.1%}")
    heading("transitions")
    table(("MACHINE", "FROM", "TO", "COUNT"),
           [(t.machine, t.from_states, t.to_states, t.count) for t in metrics.transitions], right=(3,))
    heading("time in state")
    table(("MACHINE", "STATE", "INSTANCES", "MEAN", "MAX"),
           [(t.machine, t.state, t.count, format_duration(t.mean_seconds), format_duration(t.max_seconds))
            for t in metrics.time_in_state], right=(2,))
    heading(f"stuck (in a non-final state for {format_duration(stuck_after)} or more): {metrics.stuck_instances} instance(s)")
    table(("MACHINE", "STATE", "INSTANCES", "LONGEST", "OLDEST"),
           [(s.machine, s.state, s.count, format_duration(s.max_seconds), ", ".join(s.oldest)) for s in metrics.stuck],
           right=(2,))
    heading("outbox")
    click.echo(f"  {metrics.outbox_unpublished} unpublished, lag {format_duration(metrics.outbox_lag)}")
    heading(f"failures (quarantined work): {metrics.parked} parked")
    table(("KIND", "FAILING", "PARKED"), [(f.kind, f.failing, f.parked) for f in metrics.failures], right=(1, 2))
