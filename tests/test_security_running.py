"""The trust boundary at run time (issue 11, running half): an attack corpus.

Machine YAML, snapshots, stored rows and everything a caller sends are data. Each case here
asserts the specific error, that nothing was written (revision, audit, outbox, timers
unchanged), and that evaluation stops quickly instead of hanging or allocating gigabytes.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import statechart
from statechart import (
    IllegalSnapshotError,
    PayloadError,
    ReservedEventError,
    SnapshotFormatError,
    StatechartError,
    Store,
)
from statechart.clock import VirtualClock
from strategies import Chart, charts, operations

ORDER = """
machine: order
version: 1
data: {total: 0, note: null, items: []}
initial: order
states:
  order:
    initial: payment
    on:
      error.execution: failed
      SET: {actions: [{assign: {note: "event.data"}}]}
    states:
      payment:
        initial: awaiting
        states:
          awaiting: {on: {PAID: paid}}
          paid: {type: final}
        on_done: fulfillment
        after: {1h: expired}
      fulfillment:
        on: {SHIP: shipped}
      expired: {}
      shipped: {}
  failed: {type: final}
"""
START = {"order", "payment", "awaiting"}


def order() -> statechart.Machine:
    return statechart.loads(ORDER)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url, clock=VirtualClock()) as opened:
        opened.register(order())
        yield opened


def written(store: Store, instance_id: str) -> tuple[Any, ...]:
    """Everything a step could have written for one instance."""
    backend = store.backend

    def rows(sql: str) -> list[tuple]:
        return [tuple(r) for r in backend.execute(sql, (instance_id,)).fetchall()]

    return (
        rows("SELECT revision, configuration, data, pending FROM statechart_instances WHERE id = ?"),
        rows("SELECT COUNT(*) FROM statechart_audit WHERE instance_id = ?"),
        rows("SELECT COUNT(*) FROM statechart_outbox WHERE instance_id = ?"),
        rows("SELECT send_id, seq FROM statechart_timers WHERE instance_id = ? ORDER BY send_id"),
    )


# -- platform events from outside ---------------------------------------------------------------

RESERVED = ["done.state.payment", "error.execution", "error.communication", "done.invoke.x", "after.0.payment",
            "done", "error", "after"]


@pytest.mark.parametrize("event", RESERVED)
def test_instance_refuses_reserved_events_from_callers(event: str) -> None:
    instance = order().start(clock=VirtualClock())
    before = instance.snapshot()
    with pytest.raises(ReservedEventError) as raised:
        instance.send(event)
    assert raised.value.event == event
    assert event in str(raised.value)
    assert instance.snapshot() == before


@pytest.mark.parametrize("event", ["done.state.payment", "error.execution", "after.0.payment"])
def test_store_refuses_reserved_events_and_writes_nothing(store: Store, event: str) -> None:
    created = store.create("order", id="o-1")
    before = written(store, "o-1")
    with pytest.raises(ReservedEventError):
        store.send("o-1", event)
    with pytest.raises(ReservedEventError):
        store.send("o-1", event, idempotency_key="k-1")
    assert written(store, "o-1") == before
    assert store.load("o-1").configuration == created.configuration == START


def test_interpreter_and_timers_still_deliver_reserved_events(store: Store) -> None:
    # done.state.payment raised by the interpreter itself moves the order on
    instance = order().start(clock=VirtualClock())
    instance.send("PAID")
    assert instance.configuration == {"order", "fulfillment"}
    # the after.* timer fires through the store's timer machinery
    store.create("order", id="o-2")
    store.clock.advance(3600)  # type: ignore[attr-defined]
    receipts = store.fire_due()
    assert [r.event for r in receipts] == ["after.0.payment"]
    assert store.load("o-2").configuration == {"order", "expired"}


def test_names_that_only_start_like_reserved_ones_are_ordinary() -> None:
    machine = statechart.loads("""
    machine: m
    version: 1
    states:
      a: {on: {doneX: b, errors: b, aftermath: b}}
      b: {}
    """)
    for name in ("doneX", "errors", "aftermath"):
        instance = machine.start()
        assert instance.send(name).handled


def test_cli_run_of_a_reserved_event_is_a_message_not_a_traceback(tmp_path: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from statechart.cli import main

    file = tmp_path / "order.yaml"
    file.write_text(ORDER)
    assert main(["run", str(file), "-e", "done.state.payment"]) == 1
    err = capsys.readouterr().err
    assert "cannot be sent from outside" in err and "Traceback" not in err


def test_cli_store_send_of_a_reserved_event_writes_nothing(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from statechart.cli import main

    folder = tmp_path / "machines" / "order"
    folder.mkdir(parents=True)
    (folder / "v1.yaml").write_text(ORDER)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Store.open(url) as opened:
        opened.register(order()).create("order", id="o-1")
        before = written(opened, "o-1")
    code = main(["send", "o-1", "error.execution", "--store", url, "--machines", str(tmp_path / "machines")])
    assert code == 1
    assert "cannot be sent from outside" in capsys.readouterr().err
    with Store.open(url) as opened:
        assert written(opened, "o-1") == before


# -- payloads and assigned values ------------------------------------------------------------------

BAD_PAYLOADS = [
    ({1: "a", "1": "b"}, "has the key 1 (int)"),
    ({None: 1}, "has the key None"),
    ({"x": float("nan")}, "is nan"),
    ({"x": float("inf")}, "is inf"),
    ({"x": 10**5000}, "beyond the 64-bit range"),
    ({"x": (1, 2)}, "is a tuple"),
    ({"x": {1, 2}}, "is a set"),
    ({"x": str}, "is a type"),
    ({"x": b"raw"}, "is a bytes"),
]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("payload", "message"), [*BAD_PAYLOADS, (nested(10_000), "nested more than 64")])
def test_instance_send_refuses_payloads_that_are_not_json(payload: Any, message: str) -> None:
    instance = order().start(clock=VirtualClock())
    before = instance.snapshot()
    with pytest.raises(PayloadError) as raised:
        instance.send("SET", payload)
    assert message in str(raised.value)
    assert "event data" in str(raised.value)
    assert instance.snapshot() == before


@pytest.mark.parametrize(("payload", "message"), [*BAD_PAYLOADS, (nested(10_000), "nested more than 64")])
def test_store_send_refuses_payloads_that_are_not_json_and_writes_nothing(store: Store, payload: Any,
                                                                          message: str) -> None:
    store.create("order", id="o-1")
    before = written(store, "o-1")
    with pytest.raises(PayloadError) as raised:
        store.send("o-1", "SET", payload)
    assert message in str(raised.value)
    assert written(store, "o-1") == before


def test_payloads_are_copied_so_the_caller_cannot_change_the_instance_later() -> None:
    instance = order().start(clock=VirtualClock())
    payload = {"a": [1]}
    instance.send("SET", payload)
    payload["a"].append(2)
    assert instance.data["note"] == {"a": [1]}


def test_start_data_that_is_not_json_is_refused() -> None:
    with pytest.raises(PayloadError, match="start data"):
        order().start({"total": float("nan")})


ASSIGNED = [
    ("float('nan')", "is nan"),
    ("10 ** 30", "beyond the 64-bit range"),
    ("(1, 2)", "is a tuple"),
    ("str", "is a type"),
    ("{1: 'a'}", "has the key 1 (int)"),
    ("{'a': {1, 2}}", "is a set"),
]


@pytest.mark.parametrize(("expression", "message"), ASSIGNED)
def test_assign_of_a_value_that_is_not_json_is_error_execution_with_its_location(expression: str,
                                                                                  message: str) -> None:
    machine = statechart.loads(f"""
machine: m
version: 1
data: {{x: 0}}
states:
  top:
    on:
      error.execution: failed
    states:
      a:
        on:
          GO: {{target: b, actions: [{{assign: {{x: "{expression}"}}}}]}}
      b: {{}}
  failed: {{}}
""", "m.yaml")
    instance = machine.start()
    result = instance.send("GO")
    assert instance.configuration == {"failed"}
    assert instance.data == {"x": 0}
    assert len(result.errors) == 1
    assert message in result.errors[0]
    assert "the value assigned to 'x' at m.yaml:" in result.errors[0]
    machine.restore(instance.snapshot().to_json())  # what is left round-trips


def test_script_assignments_are_checked_like_assign() -> None:
    machine = statechart.loads("""
machine: m
version: 1
data: {x: 0, d: {}}
states:
  a:
    on:
      GO: {target: b, actions: [{script: "x = (1, 2)"}]}
      SUB: {target: b, actions: [{script: "d[1] = 2"}]}
  b: {}
""")
    for event, message in (("GO", "is a tuple"), ("SUB", "data keys are strings")):
        instance = machine.start()
        result = instance.send(event)
        assert message in result.errors[0]
        assert instance.data == {"x": 0, "d": {}}


def test_emit_and_send_payloads_are_checked_before_they_reach_the_outbox() -> None:
    machine = statechart.loads("""
machine: m
version: 1
states:
  a:
    on:
      EMIT: {target: b, actions: [{emit: {event: out, data: {v: "float('inf')"}}}]}
      SEND: {target: b, actions: [{send: {event: later, delay: 1s, data: {v: "(1,)"}}}]}
  b: {}
""")
    instance = machine.start()
    result = instance.send("EMIT")
    assert result.effects == () and "is inf" in result.errors[0]
    instance = machine.start()
    result = instance.send("SEND")
    assert instance.pending_sends == () and "is a tuple" in result.errors[0]


# -- impossible snapshots and stored rows -----------------------------------------------------------

HISTORY = """
machine: h
version: 1
data: {n: 0}
states:
  main:
    initial: a
    on: {OUT: away}
    states:
      hist: {type: history, history: shallow}
      deep: {type: history, history: deep}
      a:
        initial: a1
        states:
          a1: {on: {NEXT: a2}}
          a2: {}
      b: {}
  away: {on: {RESUME: main.hist}}
  par:
    type: parallel
    states:
      left: {initial: l1, states: {l1: {}}}
      right: {initial: r1, states: {r1: {}}}
  end: {type: final}
"""


def history_machine() -> statechart.Machine:
    return statechart.loads(HISTORY)


def good_snapshot() -> dict[str, Any]:
    instance = history_machine().start(clock=VirtualClock())
    instance.send("OUT")
    return instance.snapshot().to_dict()


def pending(**changes: Any) -> list[dict[str, Any]]:
    send = {"id": "s1", "event": "TICK", "data": None, "due": 5.0, "seq": 1, "internal_id": False}
    return [{**send, **changes}]


ILLEGAL = [
    ({"configuration": ["main", "a", "a1", "b"]}, "compound 'main' has 2 active children"),
    ({"configuration": ["a1"]}, "'a1' is active but its parent 'a' is not"),
    ({"configuration": []}, "compound 'machine' has 0 active children"),
    ({"configuration": ["par", "left", "l1"]}, "parallel 'par' is missing regions right"),
    ({"configuration": ["main", "hist"]}, "history state 'hist' cannot be active"),
    ({"configuration": ["nowhere"]}, "unknown state 'nowhere'"),
    ({"history": {"hist": ["par"]}}, "shallow history 'hist' holds par, which are not children of 'main'"),
    ({"history": {"hist": ["a1"]}}, "shallow history 'hist' holds a1, which are not children of 'main'"),
    ({"history": {"hist": ["a", "b"]}}, "compound 'main' has 2 active children"),
    ({"history": {"deep": ["a"]}}, "deep history 'deep' holds a, which are not atomic descendants of 'main'"),
    ({"history": {"deep": ["a1", "a2"]}}, "compound 'a' has 2 active children"),
    ({"history": {"a": ["a1"]}}, "history names 'a', which is not a history state"),
    ({"history": {"hist": []}}, "history 'hist' is empty"),
    ({"done": True}, "done is true but no top-level final state is active"),
    ({"configuration": ["end"]}, "a top-level final state is active but done is false"),
    ({"bound_states": ["ghost"]}, "bound_states names states the machine does not have"),
    ({"pending_sends": pending(id="")}, "pending_sends[0] has the id ''"),
    ({"pending_sends": pending() + pending()}, "repeats the send 's1' #1"),
    ({"pending_sends": pending(seq=-1)}, "sequence number -1"),
    ({"data": {"x": {"y": [1] * 3}, "z": (1,)}}, "data['z'] is a tuple"),
]

MALFORMED = [
    ({"done": "yes"}, "expected bool @ $.done"),
    ({"send_counter": 1.5}, "expected int @ $.send_counter"),
    ({"send_counter": True}, "expected int @ $.send_counter"),
    ({"pending_sends": pending(due=float("nan"))}, "expected float @ $.pending_sends[0].due"),
    ({"pending_sends": pending(due="soon")}, "expected float @ $.pending_sends[0].due"),
    ({"version": "1"}, "expected int @ $.version"),
]


@pytest.mark.parametrize(("change", "message"), ILLEGAL)
def test_restore_refuses_impossible_snapshots(change: dict[str, Any], message: str) -> None:
    machine = history_machine()
    document = {**good_snapshot(), **change}
    with pytest.raises(IllegalSnapshotError) as raised:
        machine.restore(document)
    assert message in str(raised.value)
    assert any(message in problem for problem in raised.value.problems)


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_snapshot_decoding_refuses_wrong_field_types_instead_of_converting(change: dict[str, Any],
                                                                           message: str) -> None:
    with pytest.raises(SnapshotFormatError) as raised:
        history_machine().restore({**good_snapshot(), **change})
    assert message in str(raised.value)


def test_restore_checks_a_snapshot_value_built_by_hand_too() -> None:
    import attrs

    from statechart.snapshot import Snapshot

    snapshot = Snapshot.from_dict(good_snapshot())
    for change, message in (({"done": "yes"}, "done is 'yes'"), ({"send_counter": 1.5}, "send_counter is 1.5"),
                            ({"data": {"x": float("nan")}}, "data['x'] is nan")):
        with pytest.raises(IllegalSnapshotError, match=message.replace("[", r"\[")):
            history_machine().restore(attrs.evolve(snapshot, **change))


def test_a_history_value_cannot_send_a_later_resume_anywhere() -> None:
    machine = history_machine()
    document = {**good_snapshot(), "history": {"hist": ["par"]}}
    with pytest.raises(IllegalSnapshotError):
        machine.restore(document)
    # the legal one resumes where it left off
    restored = machine.restore(good_snapshot())
    restored.send("RESUME")
    assert restored.configuration == {"main", "a", "a1"}


def test_snapshot_json_with_nan_or_deep_nesting_is_a_format_error() -> None:
    from statechart.snapshot import Snapshot

    text = history_machine().start().snapshot().to_json()
    with pytest.raises(SnapshotFormatError, match="NaN is not a JSON number"):
        Snapshot.from_json(text.replace('"n":0', '"n":NaN'))
    with pytest.raises(SnapshotFormatError):
        Snapshot.from_json(text.replace('"n":0', '"n":' + "[" * 100_000 + "]" * 100_000))
    with pytest.raises(IllegalSnapshotError, match="nested more than 64"):
        history_machine().restore(text.replace('"n":0', '"n":' + "[" * 100 + "]" * 100))


STORED = [
    ("configuration", '["main","a","a1","b"]', "compound 'main' has 2 active children"),
    ("configuration", '[]', "compound 'machine' has 0 active children"),
    ("configuration", '{"a": 1}', "configuration must be a list of state ids"),
    ("history", '{"hist": ["par"]}', "shallow history 'hist' holds par"),
    ("data", '{"n": NaN}', "NaN is not a JSON number"),
    ("data", '[1]', "data must be a JSON object"),
    ("data", '{"n": ' + "[" * 100 + "]" * 100 + "}", "nested more than 64"),
    ("data", '{"n": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ("pending", '[["s1", "TICK", null, 5.0, 1]]', "a pending send must be"),
    ("pending", '[["s1", "TICK", null, "soon", 1, false]]', "finite number of seconds"),
    ("send_counter", -1, "send_counter is -1"),
    ("done", True, "done is true but no top-level final state is active"),
]


@pytest.mark.parametrize(("column", "value", "message"), STORED, ids=[f"{c}-{m}" for c, _, m in STORED])
def test_store_refuses_an_impossible_stored_row_by_instance_and_writes_nothing(
        store_url: str, column: str, value: Any, message: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as opened:
        opened.register(history_machine())
        opened.create("h", id="h-1")
        opened.send("h-1", "OUT")
        with opened.backend.transaction():
            opened.backend.execute(f"UPDATE statechart_instances SET {column} = ? WHERE id = ?", (value, "h-1"))
        before = written(opened, "h-1")
        with pytest.raises(IllegalSnapshotError) as raised:
            opened.send("h-1", "RESUME")
        assert raised.value.instance_id == "h-1"
        assert "instance 'h-1'" in str(raised.value) and message in str(raised.value)
        with pytest.raises(IllegalSnapshotError):
            opened.instance("h-1")
        assert written(opened, "h-1") == before


@pytest.mark.parametrize(("column", "value", "message"), [("send_counter", 1.5, "send_counter is 1.5"),
                                                          ("done", 7, "done is 7"), ("done", "yes", "done is 'yes'")])
def test_sqlite_rows_with_values_of_the_wrong_type_are_refused(tmp_path: Any, column: str, value: Any,
                                                               message: str) -> None:
    """SQLite columns take any value (PostgreSQL's types refuse these already)."""
    with Store.open(f"sqlite:///{tmp_path / 's.db'}", clock=VirtualClock()) as opened:
        opened.register(history_machine())
        opened.create("h", id="h-1")
        with opened.backend.transaction():
            opened.backend.execute(f"UPDATE statechart_instances SET {column} = ? WHERE id = ?", (value, "h-1"))
        before = written(opened, "h-1")
        with pytest.raises(IllegalSnapshotError, match=message):
            opened.send("h-1", "OUT")
        with pytest.raises(IllegalSnapshotError, match=message):
            opened.load("h-1")
        assert written(opened, "h-1") == before


# -- properties -----------------------------------------------------------------------------------

PROPERTY_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=30, **PROPERTY_SETTINGS)
@given(charts(), operations())
def test_restore_accepts_every_reachable_snapshot(chart: Chart, ops: list) -> None:
    """No false positives: whatever the interpreter reaches, restoring it is accepted."""
    machine = statechart.loads(chart.yaml, microstep_limit=100)
    clock = VirtualClock()
    try:
        instance = machine.start(clock=clock)
    except statechart.EventlessLoopError:
        return
    for kind, argument in [("none", None), *ops]:
        try:
            if kind == "send":
                instance.send(argument)
            elif kind == "advance":
                instance.advance(argument)
        except (statechart.EventlessLoopError, statechart.InstanceDoneError):
            pass
        snapshot = instance.snapshot()
        assert machine.restore(snapshot).configuration == instance.configuration
        assert machine.restore(snapshot.to_json()).snapshot() == machine.restore(snapshot).snapshot()


JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                        st.binary(max_size=3), st.tuples(st.integers()), st.just(str), st.just(math.nan))
ANYTHING = st.recursive(
    JSON_LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=3), st.integers(), st.none()), inner,
                                            max_size=4)),
    max_leaves=30)


def deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(st.one_of(ANYTHING, st.builds(deep, st.integers(0, 3000), ANYTHING)))
def test_random_payloads_are_accepted_as_json_or_refused_with_payload_error(payload: Any) -> None:
    instance = order().start(clock=VirtualClock())
    try:
        instance.send("SET", payload)
    except PayloadError:
        assert instance.data["note"] is None
    else:
        assert json.loads(json.dumps(instance.data["note"], allow_nan=False)) == instance.data["note"]


SNAPSHOT_FIELDS = ["configuration", "history", "data", "done", "send_counter", "pending_sends", "bound_states",
                   "session_id", "version", "format"]


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(st.sampled_from(SNAPSHOT_FIELDS), st.one_of(ANYTHING, st.builds(deep, st.integers(0, 1000), ANYTHING)))
def test_random_snapshots_are_restored_or_refused_with_our_own_errors(field: str, value: Any) -> None:
    machine = history_machine()
    document = {**good_snapshot(), field: value}
    try:
        machine.restore(document)
    except StatechartError:
        pass
    try:
        text = json.dumps(document)
    except (TypeError, ValueError, RecursionError):  # not even JSON text: nothing to restore from
        return
    try:
        machine.restore(text)
    except StatechartError:
        pass


# -- bounded expressions ----------------------------------------------------------------------------

EXPENSIVE = [
    ("9**9**9", "would have about 1,162,261,467 bits"),
    ("2 ** 20000", "would have about 20,000 bits"),
    ("10**3000 * 10**3000", "the product would have about"),
    ("1 << 10**9", "1 << 1000000000 would have about"),
    ("sum([[1]]*10**6, [])", "the limit is 100,000"),
    ("sum([[1] * 1000] * 101, [])", "sum would build a sequence of 101,000 items"),
    ("'a' * 10**10", "repeating a str of length 1"),
    ("[0] * 10**9", "repeating a list of length 1"),
    ("f\"{'a':>1000000000}\"", "asks for '1000000000' characters"),
    ("f'{1.5:.100000f}'", "asks for '100000' characters"),
    ("f'{n:>{10**8}}'", "asks for '100000000' characters"),
    ("'%*d' % (10**9, 1)", "`*` widths are not supported"),
    ("'%.100000f' % 1.5", "above the limit of 10,000"),
    ("'x'.join(['ab' * 1000] * 2000)", "join would build a string of 4,001,999"),
    ("('a' * 100000).replace('', 'bbbbbbbbbbbb')", "replace would build a string"),
    ("len([1 for a in big for b in big for c in big])", "iterated more than 1,000,000 times"),
    ("[x for x in big for y in big for z in big]", "iterated more than 1,000,000 times"),
]


def guarded_machine(expression: str, where: str) -> statechart.Machine:
    expression = expression.replace('"', '\\"')  # inside a YAML double-quoted scalar
    action = (f'{{target: b, cond: "{expression}"}}' if where == "cond" else
              f'{{target: b, actions: [{{assign: {{x: "{expression}"}}}}]}}')
    return statechart.loads(f"""
machine: g
version: 1
data: {{x: 0, n: 7, big: []}}
states:
  top:
    on:
      error.execution: failed
    states:
      a:
        on:
          GO: {action}
      b: {{}}
  failed: {{}}
""", "g.yaml")


@pytest.mark.parametrize("where", ["cond", "assign"])
@pytest.mark.parametrize(("expression", "message"), EXPENSIVE, ids=[e for e, _ in EXPENSIVE])
def test_expensive_expressions_stop_quickly_with_error_execution(expression: str, message: str, where: str) -> None:
    instance = guarded_machine(expression, where).start({"big": list(range(2000))})
    started = time.perf_counter()
    result = instance.send("GO")
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert instance.configuration == {"failed"}
    assert len(result.errors) == 1 and "ExpressionLimitError" in result.errors[0]
    assert message in result.errors[0]


def test_per_item_work_in_a_long_comprehension_hits_the_time_backstop() -> None:
    instance = guarded_machine("len([x in big for x in big])", "assign").start({"big": list(range(90_000))})
    started = time.perf_counter()
    result = instance.send("GO")
    assert time.perf_counter() - started < 3.0
    assert "spent more than 1 s" in result.errors[0]


def test_foreach_iterations_draw_on_the_same_budget() -> None:
    machine = statechart.loads("""
machine: f
version: 1
data: {big: [], i: 0, j: 0}
states:
  a:
    on:
      GO:
        target: b
        actions:
          - foreach:
              array: big
              item: i
              do:
                - foreach: {array: big, item: j}
  b: {}
""")
    instance = machine.start({"big": list(range(2000))})
    started = time.perf_counter()
    result = instance.send("GO")
    assert time.perf_counter() - started < 2.0
    assert "iterated more than 1,000,000 times" in result.errors[0]


def test_the_budget_is_per_macrostep() -> None:
    instance = guarded_machine("len([1 for a in big for b in big])", "assign").start({"big": list(range(900))})
    for _ in range(3):  # 810,000 iterations each: every step stays within its own budget
        instance = guarded_machine("len([1 for a in big for b in big])", "assign").restore(instance.snapshot())
        result = instance.send("GO")
        assert result.errors == () and instance.data["x"] == 810_000
        instance = guarded_machine("len([1 for a in big for b in big])", "assign").start({"big": list(range(900))})


def test_ordinary_uses_of_the_guarded_operators_are_unchanged() -> None:
    from statechart.expressions import compile_expression

    cases = {"2 ** 10": 1024, "n * 3": 21, "'ab' * 3": "ababab", "[0] * 3": [0, 0, 0], "1 << 4": 16,
             "n % 3": 1, "'%5d|%-3s|%.2f' % (n, 'a', 1.5)": "    7|a  |1.50", "f'{n:>4}{n!r:<3}|'": "   77  |",
             "'-'.join(['a', 'b'])": "a-b", "'abc'.replace('b', 'xy')": "axyc", "sum([[1], [2]], [])": [1, 2],
             "sum([1, 2.5])": 3.5, "sum((x for x in [1, 2]), 10)": 13, "[a * b for a in [1, 2] for b in [3]]": [3, 6],
             "{k: v for k, v in {'a': 1}.items()}": {"a": 1}, "2.0 ** 0.5": 2.0 ** 0.5, "(-2) ** 3": -8}
    for source, expected in cases.items():
        assert compile_expression(source).evaluate({"n": 7}, None, None, {}) == expected, source


def test_too_many_for_clauses_is_a_located_load_error() -> None:
    clauses = " ".join(f"for v{i} in xs" for i in range(9))
    with pytest.raises(statechart.LoadError) as raised:
        statechart.loads(f"""
machine: m
version: 1
data: {{xs: [], y: 0}}
states:
  a:
    on:
      GO: {{target: a, actions: [{{assign: {{y: "len([1 {clauses}])"}}}}]}}
""", "m.yaml")
    (problem,) = raised.value.problems
    assert problem.file == "m.yaml" and problem.line == 8
    assert "at most 8" in problem.message


def test_an_expensive_guard_inside_store_send_does_not_hold_the_store(store_url: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as opened:
        opened.register(guarded_machine("9**9**9 > 0", "cond"))
        opened.create("g", id="g-1")
        started = time.perf_counter()
        receipt = opened.send("g-1", "GO")
        assert time.perf_counter() - started < 2.0
        assert receipt.configuration_after == ("failed",)
        assert opened.load("g-1").revision == 2


def test_computed_initial_data_and_foreach_items_are_json_or_error_execution() -> None:
    machine = statechart.loads("""
machine: m
version: 1
data: {x: {expr: "float('nan')"}, y: {expr: "[1, 2]"}, i: null}
states:
  a:
    on:
      GO: {target: b, actions: [{foreach: {array: "[(1, 2)]", item: i}}]}
  b: {}
""")
    instance = machine.start()
    assert instance.data == {"x": None, "y": [1, 2], "i": None}
    assert "data 'x' is nan" in instance.initial_result.errors[0]  # type: ignore[union-attr]
    result = instance.send("GO")
    assert "foreach item 'i' is a tuple" in result.errors[0]
    assert instance.data["i"] is None


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_migration_run_reports_an_impossible_stored_row_as_that_instance_failing(store_url: str,
                                                                                   dry_run: bool) -> None:
    from pathlib import Path

    from statechart.migrate.runner import migrate

    root = Path(__file__).resolve().parent.parent
    with Store.open(store_url, clock=VirtualClock(1000.0)) as opened:
        opened.register(root / "machines")
        for index in range(3):
            opened.create("delivery", {"order_id": f"o-{index}"}, id=f"d-{index}", version=1)
        with opened.backend.transaction():
            opened.backend.execute("UPDATE statechart_instances SET configuration = ? WHERE id = ?",
                                   ('["submitted", "canceled"]', "d-1"))
        row, audits, outbox, timers = written(opened, "d-1")
        summary = migrate(opened, "delivery", migrations=root / "migrations", dry_run=dry_run)
        assert (summary.migrated, summary.failed) == (2, 1)
        ((failed_id, reason),) = summary.failures
        assert failed_id == "d-1" and "compound 'machine' has 2 active children" in reason
        # the row, its outbox and timers are untouched; a real run records the failure (an audit row)
        after_row, after_audits, after_outbox, after_timers = written(opened, "d-1")
        assert (after_row, after_outbox, after_timers) == (row, outbox, timers)
        assert after_audits == audits if dry_run else after_audits[0][0] == audits[0][0] + 1


@pytest.mark.parametrize(("column", "value"), [("configuration", '["order", "payment", "awaiting", "expired"]'),
                                               ("data", '{"total": NaN}')])
def test_a_timer_of_an_impossible_row_is_quarantined_and_the_next_timer_still_fires(store_url: str, column: str,
                                                                                  value: str) -> None:
    with Store.open(store_url, clock=VirtualClock()) as opened:
        opened.register(order())
        opened.create("order", id="o-1")
        opened.create("order", id="o-2")
        with opened.backend.transaction():
            opened.backend.execute(f"UPDATE statechart_instances SET {column} = ? WHERE id = ?", (value, "o-1"))
        opened.clock.advance(3600)  # type: ignore[attr-defined]
        receipts = {r.instance_id: r.outcome for r in opened.fire_due()}
        # the row's own fault: quarantined (recorded, retried with backoff, then parked), not run
        assert receipts == {"o-1": "failed", "o-2": "applied"}
        assert opened.load("o-2").configuration == {"order", "expired"}
        (failure,) = opened.failures(instance_id="o-1")
        assert failure.kind == "timer" and "instance 'o-1'" in failure.error
