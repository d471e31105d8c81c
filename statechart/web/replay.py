"""Stored instances as the server shows them: list, inspect, replay the audit trail, and (only
when the server was started with ``--allow-send``) send events and create instances.

One :class:`~statechart.store.Store` holds one connection and is used by one thread, so each
request opens its own and closes it. Without ``--allow-send`` nothing here writes: a store that
does not exist yet is refused rather than created (:func:`check_store_url`), and send/create
raise :class:`ReadOnlyError` before the store is opened.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from ..errors import StatechartError, StoreError
from ..jsonvalues import check_json
from ..store import Store, StoredInstance
from ..store.backends import open_backend
from .catalog import Catalog
from .simulator import SimulatorError

__all__ = ["StoreView", "ReadOnlyError", "check_store_url"]

MAX_LISTED = 200


class ReadOnlyError(StatechartError):
    """A write (send, create) to a store the server opened read-only."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} refused: this server is read-only toward the store; "
                         f"restart it with `statechart serve --allow-send` to {what}")


def check_store_url(url: str, allow_send: bool) -> None:
    """Refuse, before serving, a store that does not exist yet unless writes are allowed: opening
    one creates it (a SQLite file, the tables of an empty PostgreSQL database)."""
    if allow_send:
        return
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if path and path != ":memory:" and not Path(path).exists():
            raise StoreError(f"no SQLite store at {path}; serve opens a store read-only and never creates one "
                             f"(check the path, or pass --allow-send to create it)")
    backend = open_backend(url)
    try:
        backend.execute("SELECT value FROM statechart_meta WHERE key = 'schema_version'").fetchone()
    except Exception:  # noqa: BLE001 - whatever the driver says, there is no store here
        raise StoreError("the --store database holds no statechart store (no statechart_meta table); serve "
                         "opens a store read-only and never creates one (pass --allow-send to create it)") from None
    finally:
        backend.close()


def _sorted(states: Any, machine: Any) -> list[str]:
    order = machine.model.states if machine is not None else {}
    return sorted(states, key=lambda s: (order[s].order if s in order else 1 << 30, s))


def _leaves(states: Any, machine: Any) -> list[str]:
    """The atomic states among ``states`` (all of them when the version is not loaded here)."""
    known = machine.model.states if machine is not None else {}
    return _sorted([s for s in states if s not in known or known[s].is_atomic], machine)


class StoreView:
    """The store at ``url`` seen through the machines of ``catalog``."""

    def __init__(self, url: str, catalog: Catalog, *, allow_send: bool = False) -> None:
        self.url = url
        self.catalog = catalog
        self.allow_send = allow_send

    @contextmanager
    def opened(self) -> Iterator[Store]:
        store = Store.open(self.url)
        try:
            store.register(*self.catalog.machines.values())
            yield store
        finally:
            store.close()

    def _machine(self, name: str, version: int) -> Any:
        return self.catalog.machines.get((name, version))

    def summary(self, stored: StoredInstance) -> dict[str, Any]:
        machine = self._machine(stored.machine, stored.version)
        return {"id": stored.id, "machine": stored.machine, "version": stored.version,
                "configuration": _sorted(stored.configuration, machine),
                "active_leaves": _leaves(stored.configuration, machine),
                "data": stored.data, "done": stored.done, "revision": stored.revision,
                "created_at": stored.created_at, "updated_at": stored.updated_at,
                "pending": [{"id": p.id, "event": p.event, "data": p.data, "due": p.due}
                            for p in stored.pending_sends],
                "drawable": machine is not None}

    def instances(self, machine: str | None = None) -> list[dict[str, Any]]:
        """The first instances by id (at most MAX_LISTED), optionally of one machine."""
        with self.opened() as store:
            return [self.summary(stored) for stored in store.list(machine or None, limit=MAX_LISTED)]

    def instance(self, instance_id: str) -> dict[str, Any]:
        with self.opened() as store:
            return self.summary(store.load(instance_id))

    def audit(self, instance_id: str) -> dict[str, Any]:
        """The instance and its audit rows, oldest first, each with ``step`` (0, 1, ...) and its
        configurations in document order; raises InstanceNotFoundError for an unknown id."""
        with self.opened() as store:
            stored = store.load(instance_id)
            rows = store.audit(instance_id)
        steps = []
        for index, row in enumerate(rows):
            machine = self._machine(stored.machine, row["version"])
            steps.append({**row, "step": index,
                          "configuration_before": _sorted(row["configuration_before"], machine),
                          "configuration_after": _sorted(row["configuration_after"], machine),
                          "leaves_after": _leaves(row["configuration_after"], machine),
                          "drawable": machine is not None})
        return {"instance": self.summary(stored), "steps": steps}

    def send(self, instance_id: str, event: str, data: Any = None) -> dict[str, Any]:
        if not self.allow_send:
            raise ReadOnlyError("sending an event")
        if not isinstance(event, str) or not event.strip():
            raise SimulatorError("an event name is needed (a non-empty string)")
        with self.opened() as store:
            receipt = store.send(instance_id, event, data, actor="statechart serve")
        return receipt.to_dict()

    def create(self, machine: str, version: int | None = None, instance_id: str | None = None,
               data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if not self.allow_send:
            raise ReadOnlyError("creating an instance")
        if data is not None and not isinstance(data, Mapping):
            raise SimulatorError("initial data must be a JSON object, like {\"total\": 0}")
        try:
            check_json(dict(data or {}), "the initial data")
        except (TypeError, ValueError) as error:
            raise SimulatorError(str(error)) from None
        self.catalog.get(machine, version)  # an unknown machine is named before the store is opened
        with self.opened() as store:
            stored = store.create(machine, data, id=instance_id or None, version=version, actor="statechart serve")
        return self.summary(stored)

