"""The store's public row codec (``Store.encode_row`` / ``Store.decode_row``), which the migration
runner uses instead of the store's private helpers: a row decodes to the snapshot it was made from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statechart import PendingSend, Snapshot, Store
from statechart.errors import CorruptInstanceError, PayloadError
from statechart.store.core import INSTANCE_COLUMNS, dump_json

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3), max_leaves=8)
pending = st.builds(PendingSend, names, names, json_values, st.floats(0, 1e9), st.integers(0, 1000), st.booleans())


@st.composite
def snapshots(draw: Any) -> Snapshot:
    configuration = draw(st.frozensets(names, min_size=1, max_size=4))
    return Snapshot(draw(names), draw(st.integers(1, 50)), draw(names), configuration,
                    draw(st.dictionaries(names, st.frozensets(names, max_size=3), max_size=2)),
                    draw(st.dictionaries(names, json_values, max_size=4)), draw(st.booleans()),
                    draw(st.none() | names), tuple(draw(st.lists(pending, max_size=3))), (),
                    draw(st.integers(0, 10**6)), draw(st.frozensets(names, max_size=2)))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Store.open(f"sqlite:///{tmp_path_factory.mktemp('rows') / 'store.db'}") as opened:
        yield opened


def test_the_columns_name_every_field_of_a_row(store: Store) -> None:
    row = store.encode_row(Snapshot("m", 1, "h", frozenset({"a"}), {}, {}), "i1", 1, 0.0, 0.0, {"a": 0.0})
    assert len(row) == len(INSTANCE_COLUMNS.split(","))


@settings(max_examples=150, deadline=None)
@given(snapshot=snapshots(), instance_id=names, revision=st.integers(1, 10**6))
def test_a_row_decodes_to_the_snapshot_it_was_made_from(store: Store, snapshot: Snapshot, instance_id: str,
                                                       revision: int) -> None:
    entered = {s: 5.0 for s in snapshot.configuration}
    stored = store.decode_row(store.encode_row(snapshot, instance_id, revision, 1.0, 2.0, entered))
    expected = snapshot if snapshot.session_id else Snapshot(
        snapshot.machine, snapshot.version, snapshot.definition_hash, snapshot.configuration, snapshot.history,
        snapshot.data, snapshot.done, instance_id, snapshot.pending_sends, (), snapshot.send_counter,
        snapshot.bound_states)
    assert stored.snapshot == expected
    assert (stored.id, stored.revision, stored.created_at, stored.updated_at, stored.state_entered) == (
        instance_id, revision, 1.0, 2.0, entered)


def test_a_malformed_row_is_refused_naming_the_instance(store: Store) -> None:
    row = list(store.encode_row(Snapshot("m", 1, "h", frozenset({"a"}), {}, {}), "i1", 1, 0.0, 0.0, {"a": 0.0}))
    row[4] = "{not json"
    with pytest.raises(CorruptInstanceError, match="i1"):
        store.decode_row(row)


def test_dump_json_refuses_what_no_database_can_store() -> None:
    assert dump_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    with pytest.raises(PayloadError, match="not valid Unicode"):
        dump_json("\ud800")
    with pytest.raises(PayloadError, match="cannot store float"):
        dump_json(float("nan"))
