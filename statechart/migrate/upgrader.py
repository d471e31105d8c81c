"""The lazy upgrader: the steps of a migrations folder, offered to a store as its ``upgrader``.

    store = Store.open(url, upgrader=ChainUpgrader("migrations"))

The store calls it when an event reaches an instance below the latest registered version; the
instance goes through the same steps and checks as in a ``statechart migrate`` run.
"""

from __future__ import annotations

from pathlib import Path

from ..snapshot import Snapshot
from ..store.upgrade import MachineSource
from .chain import Step, load_chain
from .runner import upgrade_snapshot

__all__ = ["ChainUpgrader"]


class ChainUpgrader:
    """An ``Upgrader`` (``statechart/store/upgrade.py``) built from ``migrations/<machine>/``.

    Each machine's chain is loaded once, on its first upgrade (loading runs the step files, which
    are trusted code, like the host's actions).
    """

    def __init__(self, migrations: str | Path = "migrations") -> None:
        self.migrations = Path(migrations)
        self._chains: dict[str, list[Step]] = {}

    def __repr__(self) -> str:
        return f"ChainUpgrader({str(self.migrations)!r})"

    def upgrade(self, machines: MachineSource, snapshot: Snapshot, to_version: int, instance_id: str) -> Snapshot:
        steps = self._chains.get(snapshot.machine)
        if steps is None:
            steps = self._chains[snapshot.machine] = load_chain(snapshot.machine, self.migrations)
        return upgrade_snapshot(machines, snapshot, steps, to_version, instance_id)
