"""The store's tables, one DDL list per dialect, and the schema version the store checks on open.

The schema is versioned by the store itself (table ``statechart_meta``): a database created by an
older release is upgraded step by step in one transaction; one created by a newer release is
refused, never written to.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

_TABLES = """
CREATE TABLE IF NOT EXISTS statechart_instances (
    id TEXT PRIMARY KEY,
    machine TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition_hash TEXT NOT NULL,
    configuration TEXT NOT NULL,
    history TEXT NOT NULL,
    data TEXT NOT NULL,
    pending TEXT NOT NULL,
    send_counter INTEGER NOT NULL,
    bound TEXT NOT NULL,
    done {bool} NOT NULL,
    session_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    state_entered TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS statechart_instances_machine ON statechart_instances (machine, version, id);
CREATE TABLE IF NOT EXISTS statechart_instance_states (
    instance_id TEXT NOT NULL,
    state TEXT NOT NULL,
    atomic {bool} NOT NULL,
    entered_at {real} NOT NULL,
    PRIMARY KEY (instance_id, state)
);
CREATE INDEX IF NOT EXISTS statechart_instance_states_state ON statechart_instance_states (state, entered_at);
CREATE TABLE IF NOT EXISTS statechart_audit (
    id {serial} PRIMARY KEY,
    instance_id TEXT NOT NULL,
    machine TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    event TEXT NOT NULL,
    data TEXT,
    transitions TEXT NOT NULL,
    configuration_before TEXT NOT NULL,
    configuration_after TEXT NOT NULL,
    from_states TEXT NOT NULL,
    to_states TEXT NOT NULL,
    actor TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    created_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS statechart_audit_instance ON statechart_audit (instance_id, id);
CREATE INDEX IF NOT EXISTS statechart_audit_time ON statechart_audit (created_at);
CREATE TABLE IF NOT EXISTS statechart_outbox (
    id {serial} PRIMARY KEY,
    instance_id TEXT NOT NULL,
    machine TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT,
    created_at {real} NOT NULL,
    published_at {real}
);
CREATE INDEX IF NOT EXISTS statechart_outbox_unpublished ON statechart_outbox (published_at, id);
CREATE TABLE IF NOT EXISTS statechart_timers (
    instance_id TEXT NOT NULL,
    send_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    due_at {real} NOT NULL,
    PRIMARY KEY (instance_id, send_id, seq)
);
CREATE INDEX IF NOT EXISTS statechart_timers_due ON statechart_timers (due_at);
CREATE TABLE IF NOT EXISTS statechart_idempotency (
    instance_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (instance_id, key)
);
CREATE INDEX IF NOT EXISTS statechart_idempotency_time ON statechart_idempotency (created_at);
"""

# Version 2: the migration runner's progress (a persisted keyset cursor per run) and its failures.
_MIGRATION_TABLES = """
CREATE TABLE IF NOT EXISTS statechart_migration_runs (
    id {serial} PRIMARY KEY,
    machine TEXT NOT NULL,
    to_version INTEGER NOT NULL,
    cursor TEXT NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    total INTEGER NOT NULL,
    started_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    finished_at {real}
);
CREATE TABLE IF NOT EXISTS statechart_migration_failures (
    run_id INTEGER NOT NULL,
    instance_id TEXT NOT NULL,
    from_version INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (run_id, instance_id)
);
"""

# Version 3: quarantine (one row per instance and kind of work that keeps failing: a timer, an outbox
# publish, a migration), per-instance relay claims (so several relays keep each instance's order),
# and the indexes the relays need (retention, ``store.prune``, uses the existing ``created_at`` and
# ``published_at`` indexes).
_FAULT_TABLES = """
CREATE TABLE IF NOT EXISTS statechart_failures (
    kind TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    item TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    parked {bool} NOT NULL,
    first_failed_at {real} NOT NULL,
    last_failed_at {real} NOT NULL,
    next_attempt_at {real} NOT NULL,
    PRIMARY KEY (kind, instance_id)
);
CREATE INDEX IF NOT EXISTS statechart_failures_instance ON statechart_failures (instance_id);
CREATE TABLE IF NOT EXISTS statechart_outbox_claims (
    instance_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    expires_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS statechart_outbox_instance ON statechart_outbox (instance_id, id);
CREATE INDEX IF NOT EXISTS statechart_migration_failures_instance ON statechart_migration_failures (instance_id)
"""

_TYPES = {
    "sqlite": {"bool": "INTEGER", "real": "REAL", "serial": "INTEGER"},  # INTEGER PRIMARY KEY = rowid
    "postgresql": {"bool": "BOOLEAN", "real": "DOUBLE PRECISION", "serial": "BIGSERIAL"},
}


def _statements(text: str, dialect: str) -> list[str]:
    return [statement.strip() for statement in text.format(**_TYPES[dialect]).split(";") if statement.strip()]


# Version 4: composition, operations and rollout. Each feature adds its own named DDL text (new
# tables, or ``ALTER TABLE ... ADD COLUMN`` for existing ones) to this tuple, in the order written.
_V4_PARTS: tuple[str, ...] = ()


def table_statements(dialect: str) -> list[str]:
    """The DDL of the current schema for ``dialect`` ("sqlite" or "postgresql"): the first tables,
    then every upgrade step in order, so a new database and an upgraded one end up the same."""
    return _statements(_TABLES, dialect) + [statement for version in sorted(UPGRADES)
                                            for statement in UPGRADES[version][dialect]]


#: Steps from version N to N+1, per dialect: ``UPGRADES[N]`` upgrades a version-N database.
UPGRADES: dict[int, dict[str, list[str]]] = {
    1: {dialect: _statements(_MIGRATION_TABLES, dialect) for dialect in _TYPES},
    2: {dialect: _statements(_FAULT_TABLES, dialect) for dialect in _TYPES},
    3: {dialect: [statement for part in _V4_PARTS for statement in _statements(part, dialect)] for dialect in _TYPES},
}
