"""The lazy-upgrade hook: how a store moves an old instance to the latest version on its own.

The store sits below the migrations package and never imports it: a host that wants lazy
upgrades hands the store an :class:`Upgrader` (``statechart.migrate.upgrader.ChainUpgrader``
builds one from a migrations folder), and the store calls it inside the transaction of the
event that reached the instance.
"""

from __future__ import annotations

from typing import Protocol

from ..machine import Machine
from ..snapshot import Snapshot

__all__ = ["MachineSource", "Upgrader"]


class MachineSource(Protocol):
    """Where an upgrader finds the registered versions of a machine (a ``Store``)."""

    def machine(self, name: str, version: int | None = None) -> Machine: ...


class Upgrader(Protocol):
    """Moves one stored snapshot up to ``to_version``; raises (e.g. ``MigrationError``) to refuse,
    which leaves the instance untouched."""

    def upgrade(self, machines: MachineSource, snapshot: Snapshot, to_version: int, instance_id: str) -> Snapshot:
        ...
