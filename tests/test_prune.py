"""Retention: ``store.prune`` and ``statechart store prune`` delete old rows in bounded batches, on both backends."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from statechart import Store, VirtualClock
from statechart.cli import main

from machines import PINGER, open_store, rows

DAY = 86400.0


def history(store: Store, clock: VirtualClock) -> None:
    """Day 0: 'old' gets 5 pings, 3 of them published on day 1 and 2 left unpublished; the keys are
    from day 0. Day 100: 'new' gets 2 pings, 1 published."""
    store.create("pinger", id="old")
    for n in range(5):
        store.send("old", "PING", {"n": n}, idempotency_key=f"k{n}")
    clock.advance(DAY)
    store.outbox.mark_published([e.id for e in store.outbox.pending()][:3])
    clock.advance(99 * DAY)
    store.create("pinger", id="new")
    for n in range(2):
        store.send("new", "PING", {"n": n}, idempotency_key=f"k{n}")
    store.outbox.mark_published([e.id for e in store.outbox.pending() if e.instance_id == "new"][:1])


def test_prune_deletes_old_rows_in_batches_and_keeps_recent_and_unpublished_ones(store_url: str) -> None:
    clock = VirtualClock(0.0)
    with open_store(store_url, clock, PINGER) as store:
        history(store, clock)
        counts = store.prune(audit_older_than=90 * DAY, outbox_published_older_than=7 * DAY,
                             idempotency_older_than=7 * DAY, batch_size=2)
        assert counts.to_dict() == {"audit": 6, "outbox": 3, "idempotency": 5}
        assert rows(store, "SELECT DISTINCT instance_id FROM statechart_audit") == [("new",)]
        assert len(store.audit("new")) == 3
        left = rows(store, "SELECT instance_id, published_at IS NULL FROM statechart_outbox ORDER BY id")
        assert [(i, bool(unpublished)) for i, unpublished in left] == [
            ("old", True), ("old", True), ("new", False), ("new", True)]  # unpublished rows stay, however old
        assert rows(store, "SELECT instance_id, key FROM statechart_idempotency ORDER BY key") == [
            ("new", "k0"), ("new", "k1")]
        assert store.load("old").revision == 6  # instances themselves are never pruned
        assert store.prune(audit_older_than=90 * DAY, outbox_published_older_than=7 * DAY,
                           idempotency_older_than=7 * DAY).to_dict() == {"audit": 0, "outbox": 0, "idempotency": 0}


def test_prune_touches_only_the_tables_it_is_asked_about(store_url: str) -> None:
    clock = VirtualClock(0.0)
    with open_store(store_url, clock, PINGER) as store:
        history(store, clock)
        clock.advance(1)
        assert store.prune(outbox_published_older_than=0).to_dict() == {"audit": 0, "outbox": 4, "idempotency": 0}
        assert rows(store, "SELECT COUNT(*) FROM statechart_audit") == [(9,)]
        assert rows(store, "SELECT COUNT(*) FROM statechart_idempotency") == [(7,)]


def test_prune_refuses_negative_ages_and_empty_batches(store_url: str) -> None:
    with open_store(store_url, VirtualClock(0.0), PINGER) as store:
        with pytest.raises(ValueError, match="age of audit rows to prune must be seconds >= 0"):
            store.prune(audit_older_than=-1)
        with pytest.raises(ValueError, match="batch_size must be at least 1"):
            store.prune(audit_older_than=1, batch_size=0)


def test_store_prune_cli(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = VirtualClock(time.time() - 100 * DAY)
    with open_store(store_url, clock, PINGER) as store:
        history(store, clock)  # "new" is from now, "old" from 100 days ago
    options = ["--store", store_url, "--machines", str(tmp_path / "none")]
    code = main(["store", "prune", "--audit-older-than", "90d", "--outbox-published-older-than", "7d",
                 "--idempotency-older-than", "7d", "--batch-size", "2", "--json", *options])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out) == {"audit": 6, "outbox": 3, "idempotency": 5}
    assert main(["store", "prune", "--audit-older-than", "90d", *options]) == 0
    assert capsys.readouterr().out == "audit: 0 row(s) older than 90d deleted\n"
    assert main(["store", "prune", *options]) == 2
    assert "say what to prune" in capsys.readouterr().err
    assert main(["store", "prune", "--audit-older-than", "soon", *options]) == 2
    assert "'soon' is not a duration" in capsys.readouterr().err
