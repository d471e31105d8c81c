"""The JSON Schemas of machine files and snapshots, and the reference documentation that
describes them.

The schemas are what editors (the YAML language server) use to complete keys and flag
mistakes as people type, so these tests check that they accept the canonical example,
reject typical mistakes at the place where they were made, and stay in step with
``docs/reference.md``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "statechart" / "schemas"
MACHINE_SCHEMA_PATH = SCHEMAS / "machine.schema.json"
SNAPSHOT_SCHEMA_PATH = SCHEMAS / "snapshot.schema.json"
REFERENCE_PATH = ROOT / "docs" / "reference.md"


# --------------------------------------------------------------------------- YAML


class StringKeyLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML 1.2 booleans only (true/false), so `on`, `off`, `yes`
    and `no` stay strings -- as they do in the YAML language server and in machine files."""


StringKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StringKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=StringKeyLoader)


EXAMPLE_MACHINE = """\
machine: order
version: 2
initial: cart
data:
  total: 0
  retries: 0
  on_hold: false
states:
  cart:
    on:
      ADD: {actions: [{assign: {total: "total + event.data['price']"}}]}
      CHECKOUT: {target: payment, cond: "total > 0"}
      "error.*": failed
  payment:
    initial: authorizing
    entry: [start_payment]
    exit: [{cancel: pay_timeout}]
    states:
      authorizing:
        entry: [{send: {event: TIMEOUT, delay: 30m, id: pay_timeout}}]
        on:
          AUTHORIZED: captured
          DECLINED: [{target: cart, cond: "retries < 3"}, {target: failed}]
      captured: {type: final, done_data: {amount: "total"}}
    on_done: fulfillment
  fulfillment:
    type: parallel
    states:
      shipping:
        states:
          packing: {on: {PACKED: in_transit}}
          in_transit: {after: {2d: late}, on: {DELIVERED: shipped}}
          late: {on: {DELIVERED: shipped}}
          shipped: {type: final}
      invoicing:
        initial: open
        states:
          hist: {type: history, history: deep, target: open}
          open: {on: {PAY: paid, HOLD: {target: held, type: internal}}}
          held: {always: {target: open, cond: "not on_hold"}}
          paid: {type: final}
    on_done: done
  failed: {}
  done: {type: final}
"""

# Exercises every key and verb the format has, in the places where they are allowed.
EVERY_FEATURE_MACHINE = """\
machine: kitchen_sink
version: 1
description: Every key of the format at least once.
initial: {target: [a.a1, b], actions: [{log: "'starting'"}]}
invariant: "count >= 0"
python: [myapp.kitchen_actions, actions.py]
data:
  count: 0
  items: [1, 2, 3]
  nested: {a: {b: 1}}
  started: {expr: "count + 1"}
  nothing: null
states:
  top:
    type: parallel
    description: Two regions.
    invariant: "count < 100"
    entry: record_entry
    exit: [record_exit, {emit: order.closed}]
    states:
      a:
        initial: {target: a1, actions: [{raise: {event: ready, data: {n: "count"}}}]}
        states:
          a1:
            type: atomic
            on:
              "*": null
              "error error.execution error. error.*": {target: a2, description: oops}
              "GO STOP": [{target: a2, guard: is_ready}, {actions: [bump]}]
            after:
              500ms: a2
              .5s: {target: a2, type: internal}
              30: a2
              "1.5": a2
          a2: {type: final, done_data: "count"}
          a_hist: {type: history, history: shallow, target: [a1], actions: [{log: {label: hist}}]}
        on_done: {target: b, actions: [{emit: {event: a.done, data: "event.data"}}]}
      b:
        always: [{cond: "count > 10", target: a}, null]
  a: {}
  b: ~
  c:
    entry:
      - assign: {count: "count + 1", nested.a.b: "2"}
      - raise: tick
      - send: {event: LATER, delay: 1.5, data: "count"}
      - send: {event: LATER, delay: 2h, id: later, data: {n: count, fixed: 1, flag: true}}
      - cancel: later
      - log: "count"
      - log: {label: count, expr: "count"}
      - if: "count > 1"
        then: [{log: "'big'"}]
        elif: [{cond: "count == 1", then: {log: "'one'"}}]
        else: [{log: "'small'"}]
      - foreach: {array: "items", item: item, index: i, do: [{assign: {count: "count + item"}}]}
      - foreach: {array: "items", item: item, do: emit_item}
      - emit: {event: kitchen.visited, data: {count: "count"}}
      - myapp.kitchen_actions.shout
"""


def machine_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8")))


def snapshot_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SNAPSHOT_SCHEMA_PATH.read_text(encoding="utf-8")))


def all_errors(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    """Errors and, recursively, the errors of anyOf/oneOf branches they carry."""
    for error in errors:
        yield error
        yield from all_errors(iter(error.context or ()))


def describe(errors: list[ValidationError]) -> str:
    return "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '<root>'} [{e.validator}] {e.message}"
        for e in all_errors(iter(errors))
    )


def reported_by(error: ValidationError, keyword: str) -> bool:
    """A key that breaks ``propertyNames`` is reported by the keyword that checks the name
    (``pattern``, ``anyOf``...); the error still sits on the mapping holding the key."""
    if keyword == "propertyNames":
        return "propertyNames" in error.absolute_schema_path
    return error.validator == keyword


def assert_fails_at(validator: Draft202012Validator, document: Any, path: tuple, keyword: str) -> None:
    """The document is invalid because of what is at ``path`` (reported by ``keyword``),
    and nothing elsewhere in the document is wrong."""
    errors = list(validator.iter_errors(document))
    assert errors, "expected the document to be invalid"
    found = [
        e for e in all_errors(iter(errors)) if tuple(e.absolute_path) == path and reported_by(e, keyword)
    ]
    assert found, f"no [{keyword}] error at {path}; errors were:\n{describe(errors)}"
    for error in errors:
        where = tuple(error.absolute_path)
        assert path[: len(where)] == where, (
            f"unexpected error outside {path}:\n{describe([error])}"
        )


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("path", [MACHINE_SCHEMA_PATH, SNAPSHOT_SCHEMA_PATH], ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_machine_schema_id() -> None:
    schema = json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$id"] == "https://statechart.dev/schemas/machine.schema.json"
    for name in ["state", "transition", "transition-list", "action", "action-list", "duration", "expression"]:
        assert name in schema["$defs"], name


def walk_schemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict]]:
    """Every subschema (dict) in a schema document, with a JSON-pointer-ish location."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key in ("properties", "$defs", "dependentSchemas"):
                for name, sub in value.items():
                    yield from walk_schemas(sub, f"{where}/{key}/{name}")
            elif key in ("enum", "const", "examples", "default", "required", "dependentRequired"):
                continue
            else:
                yield from walk_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from walk_schemas(item, f"{where}/{index}")


@pytest.mark.parametrize("path", [MACHINE_SCHEMA_PATH, SNAPSHOT_SCHEMA_PATH], ids=lambda p: p.name)
def test_every_property_is_documented_and_every_object_closed(path: Path) -> None:
    """What editors show on hover and completion: a title and description on every property;
    and no object silently accepts unknown keys."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    for where, node in walk_schemas(schema):
        if "/allOf/" in where or "/dependentSchemas/" in where or where.endswith("/if"):
            continue  # conditions that restrict keys documented elsewhere
        for name, sub in node.get("properties", {}).items():
            assert sub.get("title"), f"{where}/properties/{name} has no title"
            assert sub.get("description"), f"{where}/properties/{name} has no description"
        if node.get("properties"):
            assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"


@pytest.mark.parametrize("path", [MACHINE_SCHEMA_PATH, SNAPSHOT_SCHEMA_PATH], ids=lambda p: p.name)
def test_every_ref_resolves(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    for where, node in walk_schemas(schema):
        if "$ref" in node:
            target = node["$ref"]
            assert target.startswith("#/$defs/"), f"{where}: {target}"
            assert target.removeprefix("#/$defs/") in schema["$defs"], f"{where}: {target}"


# --------------------------------------------------------------------------- valid machines


def test_loader_keeps_on_as_a_string_key() -> None:
    document = load_yaml(EXAMPLE_MACHINE)
    assert "on" in document["states"]["cart"]
    assert True not in document["states"]["cart"]
    assert document["data"]["on_hold"] is False
    assert load_yaml("{on: 1, off: 2, yes: 3, no: 4}") == {"on": 1, "off": 2, "yes": 3, "no": 4}


def test_example_machine_validates() -> None:
    document = load_yaml(EXAMPLE_MACHINE)
    errors = list(machine_validator().iter_errors(document))
    assert not errors, describe(errors)


def test_every_feature_machine_validates() -> None:
    document = load_yaml(EVERY_FEATURE_MACHINE)
    errors = list(machine_validator().iter_errors(document))
    assert not errors, describe(errors)


def test_minimal_machine_validates() -> None:
    document = load_yaml("machine: m\nversion: 1\nstates:\n  only:\n")
    errors = list(machine_validator().iter_errors(document))
    assert not errors, describe(errors)


# --------------------------------------------------------------------------- broken machines

BASE = """\
machine: m
version: 1
states:
  s: {}
"""


def with_states(states_yaml: str) -> str:
    """A minimal machine whose `states` block is ``states_yaml`` (indented by two spaces)."""
    return "machine: m\nversion: 1\nstates:\n" + "".join(
        f"  {line}\n" for line in states_yaml.strip("\n").splitlines()
    )


BROKEN_MACHINES = [
    # (id, document, path of the mistake, keyword that reports it)
    ("unknown state key entri", with_states("s: {entri: [go]}"), ("states", "s"), "additionalProperties"),
    ("type paralel", with_states("s: {type: paralel, states: {a: {}}}"), ("states", "s", "type"), "enum"),
    ("history deeper", with_states("s: {states: {h: {type: history, history: deeper}, a: {}}}"),
     ("states", "s", "states", "h", "history"), "enum"),
    ("version 0", "machine: m\nversion: 0\nstates: {s: {}}\n", ("version",), "minimum"),
    ("version as string", "machine: m\nversion: '2'\nstates: {s: {}}\n", ("version",), "type"),
    ("machine name Order", "machine: Order\nversion: 1\nstates: {s: {}}\n", ("machine",), "pattern"),
    ("missing states", "machine: m\nversion: 1\n", (), "required"),
    ("unknown top-level key", BASE + "stats: {}\n", (), "additionalProperties"),
    ("data key not an identifier", BASE + "data: {1st: 0}\n", ("data",), "propertyNames"),
    ("state id with a dot", with_states("a.b: {}"), ("states",), "propertyNames"),
    ("after 30 minutes", with_states("s: {after: {30 minutes: t}}\nt: {}"), ("states", "s", "after"), "propertyNames"),
    ("send delay 30 minutes", with_states("s: {entry: [{send: {event: T, delay: 30 minutes}}]}"),
     ("states", "s", "entry", 0, "send", "delay"), "pattern"),
    ("negative delay", with_states("s: {entry: [{send: {event: T, delay: -5}}]}"),
     ("states", "s", "entry", 0, "send", "delay"), "minimum"),
    ("transition type sideways", with_states("s: {on: {GO: {target: t, type: sideways}}}\nt: {}"),
     ("states", "s", "on", "GO", "type"), "enum"),
    ("unknown transition key", with_states("s: {on: {GO: [{target: t, when: x}]}}\nt: {}"),
     ("states", "s", "on", "GO", 0), "additionalProperties"),
    ("bad event descriptor", with_states("s: {on: {'PAY!': s}}"), ("states", "s", "on"), "propertyNames"),
    ("cond not a string", with_states("s: {always: {target: s, cond: 3}}"), ("states", "s", "always", "cond"), "type"),
    ("target with a space", with_states("s: {on: {GO: 'other state'}}"), ("states", "s", "on", "GO"), "pattern"),
    ("two verbs in one action", with_states("s: {entry: [{raise: A, emit: B}]}"), ("states", "s", "entry", 0), "oneOf"),
    ("no verb in an action", with_states("s: {entry: [{}]}"), ("states", "s", "entry", 0), "oneOf"),
    ("misspelt verb", with_states("s: {entry: [{assing: {x: '1'}}]}"), ("states", "s", "entry", 0), "additionalProperties"),
    ("send without event", with_states("s: {entry: [{send: {delay: 5s}}]}"), ("states", "s", "entry", 0, "send"), "required"),
    ("send with unknown key", with_states("s: {entry: {send: {event: E, after: 5s}}}"),
     ("states", "s", "entry", "send"), "additionalProperties"),
    ("if without then", with_states("s: {exit: [{if: 'x > 1'}]}"), ("states", "s", "exit", 0), "dependentRequired"),
    ("then without if", with_states("s: {exit: [{log: x, then: [a]}]}"), ("states", "s", "exit", 0), "dependentRequired"),
    ("elif without cond", with_states("s: {exit: [{if: x, then: [a], elif: [{then: [b]}]}]}"),
     ("states", "s", "exit", 0, "elif", 0), "required"),
    ("foreach without do", with_states("s: {entry: [{foreach: {array: xs, item: x}}]}"),
     ("states", "s", "entry", 0, "foreach"), "required"),
    ("assign to a bad location", with_states("s: {entry: [{assign: {'a..b': '1'}}]}"),
     ("states", "s", "entry", 0, "assign"), "propertyNames"),
    ("assign a non-expression", with_states("s: {entry: [{assign: {a: 1}}]}"),
     ("states", "s", "entry", 0, "assign", "a"), "type"),
    ("log with unknown key", with_states("s: {entry: [{log: {text: hi}}]}"), ("states", "s", "entry", 0, "log"), "additionalProperties"),
    ("raise a bad event name", with_states("s: {entry: [{raise: 'a b'}]}"), ("states", "s", "entry", 0, "raise"), "pattern"),
    ("done_data on an atomic state", with_states("s: {type: atomic, done_data: {a: x}}"), ("states", "s", "type"), "const"),
    ("history key without type history", with_states("s: {history: deep}"), ("states", "s"), "required"),
    ("final state with transitions", with_states("s: {type: final, on: {GO: s}}"), ("states", "s", "on"), "not"),
    ("parallel state with initial", with_states("s: {type: parallel, initial: a, states: {a: {}}}"),
     ("states", "s", "initial"), "not"),
    ("compound type without states", with_states("s: {type: compound}"), ("states", "s"), "required"),
    ("initial mapping without target", BASE + "initial: {actions: [a]}\n", ("initial",), "required"),
    ("python not a string", BASE + "python: 3\n", ("python",), "type"),
    ("data expr with extra key", BASE + "data: {a: {expr: x, default: 1}}\n", ("data", "a"), "additionalProperties"),
]


@pytest.mark.parametrize(
    "document, path, keyword",
    [case[1:] for case in BROKEN_MACHINES],
    ids=[case[0] for case in BROKEN_MACHINES],
)
def test_broken_machine_fails_at_the_mistake(document: str, path: tuple, keyword: str) -> None:
    parsed = load_yaml(document)
    assert_fails_at(machine_validator(), parsed, path, keyword)


def test_broken_example_fails_at_the_mistake() -> None:
    """Mistakes deep inside the canonical example are reported where they were made."""
    document = load_yaml(EXAMPLE_MACHINE)
    invoicing = ("states", "fulfillment", "states", "invoicing")
    broken = copy.deepcopy(document)
    broken["states"]["fulfillment"]["states"]["invoicing"]["states"]["hist"]["history"] = "deeper"
    assert_fails_at(machine_validator(), broken, invoicing + ("states", "hist", "history"), "enum")

    broken = copy.deepcopy(document)
    broken["states"]["payment"]["states"]["authorizing"]["entry"][0]["send"]["delay"] = "30 minutes"
    assert_fails_at(
        machine_validator(), broken,
        ("states", "payment", "states", "authorizing", "entry", 0, "send", "delay"), "pattern",
    )


# --------------------------------------------------------------------------- snapshots

SNAPSHOT = {
    "format": 1,
    "machine": "order",
    "version": 2,
    "definition_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "configuration": ["payment", "authorizing"],
    "history": {"hist": ["open"]},
    "data": {"total": 10},
    "done": False,
    "session_id": "abc",
    "pending_sends": [
        {"id": "pay_timeout", "event": "TIMEOUT", "data": None, "due": 1700000000.5, "seq": 3, "internal_id": False}
    ],
    "internal_queue": [{"name": "x", "data": None, "type": "internal"}],
    "send_counter": 4,
}


def test_snapshot_validates() -> None:
    errors = list(snapshot_validator().iter_errors(SNAPSHOT))
    assert not errors, describe(errors)


@pytest.mark.parametrize("session_id", ["abc", None, "<absent>"])
def test_snapshot_session_id_is_optional_and_nullable(session_id: Any) -> None:
    snapshot = copy.deepcopy(SNAPSHOT)
    if session_id == "<absent>":
        del snapshot["session_id"]
    else:
        snapshot["session_id"] = session_id
    errors = list(snapshot_validator().iter_errors(snapshot))
    assert not errors, describe(errors)


def test_snapshot_with_rich_values_validates() -> None:
    snapshot = copy.deepcopy(SNAPSHOT)
    snapshot["data"] = {"nested": {"a": [1, 2, {"b": None}]}, "flag": True}
    snapshot["pending_sends"].append(
        {"id": "send-4", "event": "LATER", "data": {"n": 1}, "due": 12, "seq": 4, "internal_id": True}
    )
    snapshot["internal_queue"] = [
        {"name": "done.state.payment", "data": {"amount": 10}, "type": "internal"},
        {"name": "error.execution", "data": "boom", "type": "platform"},
    ]
    snapshot["done"] = True
    snapshot["history"] = {}
    errors = list(snapshot_validator().iter_errors(snapshot))
    assert not errors, describe(errors)


def _remove(key: str):
    def change(snapshot: dict) -> None:
        del snapshot[key]
    return change


def _set(*path_and_value: Any):
    *path, value = path_and_value

    def change(snapshot: dict) -> None:
        target: Any = snapshot
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return change


BROKEN_SNAPSHOTS = [
    ("format 2", _set("format", 2), ("format",), "const"),
    ("missing format", _remove("format"), (), "required"),
    ("missing definition_hash", _remove("definition_hash"), (), "required"),
    ("missing pending_sends", _remove("pending_sends"), (), "required"),
    ("hash not hex", _set("definition_hash", "not-a-hash"), ("definition_hash",), "pattern"),
    ("machine name Order", _set("machine", "Order"), ("machine",), "pattern"),
    ("version 0", _set("version", 0), ("version",), "minimum"),
    ("configuration a string", _set("configuration", "payment"), ("configuration",), "type"),
    ("configuration item not a string", _set("configuration", ["payment", 3]), ("configuration", 1), "type"),
    ("history not a list", _set("history", "hist", "open"), ("history", "hist"), "type"),
    ("data a list", _set("data", [1]), ("data",), "type"),
    ("done a string", _set("done", "no"), ("done",), "type"),
    ("session_id a number", _set("session_id", 7), ("session_id",), "type"),
    ("pending send without seq", lambda s: s["pending_sends"][0].pop("seq"), ("pending_sends", 0), "required"),
    ("due a string", _set("pending_sends", 0, "due", "soon"), ("pending_sends", 0, "due"), "type"),
    ("internal_id a string", _set("pending_sends", 0, "internal_id", "yes"), ("pending_sends", 0, "internal_id"), "type"),
    ("queued event of unknown type", _set("internal_queue", 0, "type", "urgent"), ("internal_queue", 0, "type"), "enum"),
    ("queued event with extra key", _set("internal_queue", 0, "origin", "x"), ("internal_queue", 0), "additionalProperties"),
    ("negative send_counter", _set("send_counter", -1), ("send_counter",), "minimum"),
    ("unknown top-level key", _set("extra", 1), (), "additionalProperties"),
]


@pytest.mark.parametrize(
    "change, path, keyword",
    [case[1:] for case in BROKEN_SNAPSHOTS],
    ids=[case[0] for case in BROKEN_SNAPSHOTS],
)
def test_broken_snapshot_fails(change: Any, path: tuple, keyword: str) -> None:
    snapshot = copy.deepcopy(SNAPSHOT)
    change(snapshot)
    assert_fails_at(snapshot_validator(), snapshot, path, keyword)


# --------------------------------------------------------------------------- reference docs


def documented_names() -> dict[str, list[str]]:
    """The keys and verbs the machine schema defines, by where they appear."""
    schema = json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    control = {"then", "elif", "else"}
    return {
        "top-level key": list(schema["properties"]),
        "state key": list(defs["state"]["properties"]),
        "transition key": list(defs["transition"]["properties"]),
        "action verb": [name for name in defs["action"]["properties"] if name not in control],
        "action key": list(defs["action"]["properties"]),
        "state type": list(defs["state"]["properties"]["type"]["enum"]),
        "history depth": list(defs["state"]["properties"]["history"]["enum"]),
        "transition type": list(defs["transition"]["properties"]["type"]["enum"]),
    }


@pytest.mark.parametrize(
    "kind, name",
    [(kind, name) for kind, names in documented_names().items() for name in names],
)
def test_reference_mentions_every_schema_name(kind: str, name: str) -> None:
    reference = REFERENCE_PATH.read_text(encoding="utf-8")
    assert f"`{name}`" in reference, f"docs/reference.md does not mention the {kind} `{name}`"


def test_reference_examples_validate() -> None:
    """Every ```yaml block in the reference that is a whole machine (has `machine:`) validates."""
    reference = REFERENCE_PATH.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", reference, flags=re.S)
    machines = [block for block in blocks if re.search(r"^machine:", block, flags=re.M)]
    assert machines, "the reference should contain at least one whole machine"
    validator = machine_validator()
    for block in machines:
        errors = list(validator.iter_errors(load_yaml(block)))
        assert not errors, f"{block}\n{describe(errors)}"
