"""The JSON Schemas of machine files and snapshots, and the reference documentation that
describes them.

The schemas are what editors (the YAML language server) use to complete keys and flag
mistakes as people type, so these tests check that they accept the canonical example,
every machine and documented snippet, and what the compiler accepts; that they reject
typical mistakes at the place where they were made; that they know exactly the keys the
compiler knows (``statechart.compile`` is the authority); and that they stay in step with
``docs/reference.md``.

Documents are read with the statechart YAML loader, as the compiler reads them: keys stay the
text written (``on``, ``2d``, ``30``), as they do in the YAML language server.
"""

from __future__ import annotations

import ast
import copy
import json
import keyword
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

import statechart
from statechart.compile import ACTION_VERBS, IF_KEYS, SEND_KEYS, STATE_KEYS, TOP_KEYS, TRANSITION_KEYS
from statechart.errors import LoadError, Problem
from statechart.expressions import RESERVED_NAMES, SAFE_BUILTINS
from statechart.model import StateKind
from statechart.yaml_loader import parse_yaml
from machines import plain
from strategies import ROOT as CHART_ROOT
from strategies import Chart, charts

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "statechart" / "schemas"
MACHINE_SCHEMA_PATH = SCHEMAS / "machine.schema.json"
SNAPSHOT_SCHEMA_PATH = SCHEMAS / "snapshot.schema.json"
REFERENCE_PATH = ROOT / "docs" / "reference.md"
SCXML_PROCESSOR = "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"


# --------------------------------------------------------------------------- YAML and the compiler


def load_yaml(text: str) -> Any:
    """The document as the compiler sees it (keys as written; yes/no/on/off values refused)."""
    document, problems = parse_yaml(text, "<test>")
    assert not problems, problems
    return plain(document)


ACTION_LIST_KEYS = {"entry", "exit", "actions", "then", "else", "do"}


def named_callables(node: Any, actions: set[str], guards: set[str], in_actions: bool = False) -> None:
    """Collect the names of Python actions and guards a document uses."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "guard" and isinstance(value, str):
                guards.add(value)
            named_callables(value, actions, guards, key in ACTION_LIST_KEYS)
    elif isinstance(node, list):
        for item in node:
            named_callables(item, actions, guards, in_actions)
    elif in_actions and isinstance(node, str):
        actions.add(node)


def _noop(ctx: Any) -> bool:
    return True


def compile_problems(text: str, base_dir: Path | None = None) -> list[Problem]:
    """What the statechart compiler says about a document ([] = it loads); every named Python
    action and guard it uses is bound to a no-op."""
    actions: set[str] = set()
    guards: set[str] = set()
    document, _ = parse_yaml(text, "<test>")
    named_callables(plain(document), actions, guards)
    try:
        statechart.loads(text, "schema_test.yaml", actions={name: _noop for name in actions},
                         guards={name: _noop for name in guards}, base_dir=base_dir or ROOT)
    except LoadError as error:
        return list(error.problems)
    return []


def dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)


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

# Exercises every key and verb the format has, in the places where they are allowed; the
# compiler loads it (with kitchen_actions.py written beside it).
EVERY_FEATURE_MACHINE = """\
machine: kitchen_sink
version: 1
description: Every key of the format at least once.
initial: {target: [a1, b], actions: [{log: "'starting'"}]}
invariant: "count >= 0"
python: [kitchen_actions.py, kitchen.more_actions]
binding: late
script: ["count = count + 0", "scratch = {}"]
data:
  count: 0
  items: [1, 2, 3]
  nested: {a: {b: 1}}
  started: {expr: "count + 1"}
  nothing: null
  sid: null
  item: null
  i: null
states:
  top:
    type: parallel
    description: Two regions.
    invariant: "count < 100"
    data: {region_count: 2}
    entry: record_entry
    exit: [[record_exit], [{emit: order.closed}]]
    states:
      a:
        initial: {target: a1, actions: [{raise: {event: ready, data: {n: "count"}}}]}
        states:
          a1:
            type: atomic
            data: {visits: {expr: "count"}}
            on:
              "*": null
              ".*": null
              "error error.execution error. error.*": {target: a2, description: oops}
              "GO STOP": [{target: a2, guard: is_ready, cond: true}, {actions: [bump]}]
            transitions:
              - {event: PAY, target: a2, cond: "count > 1", guard: is_ready}
              - {event: "*", actions: [{log: "event.name"}], type: internal, description: any}
              - {target: a2, cond: false}
            after:
              500ms: a2
              .5s: {target: a2, type: internal}
              30: a2
              "1.5": a2
          a2: {type: final, data: {result: 1}, done_data: "count"}
          a_hist: {type: history, history: shallow, target: [a1], actions: [{log: {label: hist}}]}
        on_done: {target: b, actions: [{emit: {event: a.done, data: "event.data"}}]}
      b:
        always: [{cond: "count > 10", target: a}, null]
  c:
    entry:
      - assign: {count: "count + 1", nested.a.b: 2, nothing: null, started: true}
      - raise: tick
      - send: {event: LATER, delay: 1.5, data: "count"}
      - send: {event: LATER, delay: 2h, id: later, data: {n: count, fixed: 1, flag: true}}
      - send: {event_expr: "'LATER'", target: "#_internal", type: scxml, id_location: sid, content: "count"}
      - send: {event: LATER, target: "#_scxml_abc", type: "http://www.w3.org/TR/scxml/#SCXMLEventProcessor",
               id: x1, delay_expr: "'2s'", namelist: [count, items], data: {extra: 1}}
      - send: {event: LATER, target_expr: "'#_internal'", type_expr: "'scxml'"}
      - cancel: later
      - cancel: {id_expr: "sid"}
      - log: "count"
      - log: {label: count, expr: "count"}
      - log: 3
      - if: "count > 1"
        then: [{log: "'big'"}]
        elif: [{cond: "count == 1", then: {log: "'one'"}}]
        else: [{log: "'small'"}]
      - if: true
        then: []
      - foreach: {array: "items", item: item, index: i, do: [{assign: {count: "count + item"}}]}
      - foreach: {array: "items", item: item, do: emit_item}
      - emit: {event: kitchen.visited, data: {count: "count"}}
      - emit: kitchen.done
      - script: "scratch['k'] = count"
      - script: ["count += 1", "made = count * 2"]
      - myapp.kitchen_actions.shout
    on: {BACK: {target: null, actions: []}}
  d:
    initial: d1
    states:
      d1: {on: {FINISH: d2}}
      d2: {type: final}
    on_done: c
"""

KITCHEN_ACTIONS = "def record_entry(ctx):\n    pass\n"


def machine_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8")))


def snapshot_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SNAPSHOT_SCHEMA_PATH.read_text(encoding="utf-8")))


MACHINE_SCHEMA = json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8"))


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


def schema_errors(document: Any) -> list[ValidationError]:
    return list(machine_validator().iter_errors(document))


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


def assert_schema_and_compiler_accept(text: str, base_dir: Path | None = None) -> None:
    problems = compile_problems(text, base_dir)
    assert not problems, "the compiler refuses the document:\n" + "\n".join(map(str, problems))
    errors = schema_errors(load_yaml(text))
    assert not errors, f"the schema refuses what the compiler accepts:\n{text}\n{describe(errors)}"


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("path", [MACHINE_SCHEMA_PATH, SNAPSHOT_SCHEMA_PATH], ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_machine_schema_id() -> None:
    schema = json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$id"] == "https://statechart.dev/schemas/machine.schema.json"
    for name in ["state", "transition", "transition-list", "ordered-transition", "action", "action-list",
                 "action-blocks", "duration", "expression", "script"]:
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


# --------------------------------------------------------------------------- the compiler's keys


def test_schema_top_level_keys_are_the_compilers() -> None:
    assert set(MACHINE_SCHEMA["properties"]) == set(TOP_KEYS)


def test_schema_state_keys_are_the_compilers() -> None:
    assert set(MACHINE_SCHEMA["$defs"]["state"]["properties"]) == {key for keys in STATE_KEYS.values() for key in keys}


def test_schema_state_types_are_the_compilers() -> None:
    assert MACHINE_SCHEMA["$defs"]["state"]["properties"]["type"]["enum"] == [kind.value for kind in StateKind]


def test_schema_transition_keys_are_the_compilers() -> None:
    assert set(MACHINE_SCHEMA["$defs"]["transition"]["properties"]) == set(TRANSITION_KEYS)


def test_schema_ordered_transition_keys_are_the_compilers_plus_event() -> None:
    assert set(MACHINE_SCHEMA["$defs"]["ordered-transition"]["properties"]) == set(TRANSITION_KEYS) | {"event"}


def test_schema_action_verbs_are_the_compilers() -> None:
    action = MACHINE_SCHEMA["$defs"]["action"]
    assert set(action["properties"]) == set(ACTION_VERBS) | set(IF_KEYS)
    one_verb_each = [branch["required"] for branch in action["oneOf"] if "required" in branch]
    assert sorted(verb for (verb,) in one_verb_each) == sorted(ACTION_VERBS)


def test_schema_send_keys_are_the_compilers() -> None:
    send = MACHINE_SCHEMA["$defs"]["action"]["properties"]["send"]
    assert set(send["properties"]) == set(SEND_KEYS)


def test_schema_refuses_the_data_keys_the_compiler_refuses() -> None:
    refused = set(MACHINE_SCHEMA["$defs"]["declared-data-key"]["not"]["enum"])
    assert refused == set(RESERVED_NAMES) | set(SAFE_BUILTINS) | set(keyword.kwlist)


STATE_KINDS = [kind.value for kind in StateKind] + ["untyped leaf"]
SAMPLE_STATE_VALUES: dict[str, Any] = {
    "description": "a state",
    "invariant": "True",
    "initial": "c1",
    "data": {"q": 1},
    "states": {"c1": {}, "c2": {}},
    "entry": [{"log": "'in'"}],
    "exit": [[{"log": "'out'"}], [{"log": "'out again'"}]],
    "on": {"E": None},
    "transitions": [{"event": "E", "target": "other"}],
    "always": {"cond": "False", "target": "other"},
    "after": {"1s": "other"},
    "on_done": "other",
    "done_data": {"v": 1},
    "history": "deep",
    "target": "other",
    "actions": [{"log": "'default'"}],
}


def allowed_keys(kind: str) -> set[str]:
    if kind == "untyped leaf":  # an atomic state; given `states` it becomes compound
        return set(STATE_KEYS[StateKind.ATOMIC]) | {"states"}
    return set(STATE_KEYS[StateKind(kind)]) - {"type"}


@pytest.mark.parametrize("kind", STATE_KINDS)
@pytest.mark.parametrize(
    "key", sorted(({k for keys in STATE_KEYS.values() for k in keys} | set(MACHINE_SCHEMA["$defs"]["state"]["properties"]))
                  - {"type"}))
def test_schema_allows_a_state_key_exactly_where_the_compiler_does(kind: str, key: str) -> None:
    body: dict[str, Any] = {} if kind == "untyped leaf" else {"type": kind}
    if kind in ("compound", "parallel"):
        body["states"] = {"c1": {}, "c2": {}}
    body[key] = copy.deepcopy(SAMPLE_STATE_VALUES.get(key, "x"))
    text = dump({"machine": "m", "version": 1, "states": {"p": {"states": {"s": body, "other": {}}}}})
    compiler_accepts = not compile_problems(text)
    schema_accepts = not schema_errors(load_yaml(text))
    assert compiler_accepts == (key in allowed_keys(kind)), compile_problems(text)
    assert schema_accepts == compiler_accepts, f"{text}\n{describe(schema_errors(load_yaml(text)))}"


# --------------------------------------------------------------------------- valid machines


def test_loader_keeps_keys_as_written() -> None:
    document = load_yaml(EXAMPLE_MACHINE)
    assert "on" in document["states"]["cart"]
    assert True not in document["states"]["cart"]
    assert document["data"]["on_hold"] is False
    assert load_yaml("{on: 1, off: 2, yes: 3, no: 4, 30: 5, 2d: 6}") == {
        "on": 1, "off": 2, "yes": 3, "no": 4, "30": 5, "2d": 6}


def test_example_machine_validates() -> None:
    assert_schema_and_compiler_accept(EXAMPLE_MACHINE)


def test_every_feature_machine_validates(tmp_path: Path) -> None:
    (tmp_path / "kitchen_actions.py").write_text(KITCHEN_ACTIONS, encoding="utf-8")
    (tmp_path / "kitchen").mkdir()
    (tmp_path / "kitchen" / "more_actions.py").write_text("", encoding="utf-8")  # a dotted project module
    assert_schema_and_compiler_accept(EVERY_FEATURE_MACHINE, base_dir=tmp_path)


def keys_used(document: dict[str, Any]) -> dict[str, set[str]]:
    """Which keys of each kind a document writes somewhere."""
    used: dict[str, set[str]] = {"top": set(document), "state": set(), "transition": set(), "verb": set(),
                                 "send": set()}

    def actions(spec: Any) -> None:
        for item in spec if isinstance(spec, list) else [spec]:
            if isinstance(item, list):
                actions(item)
            elif isinstance(item, dict):
                used["verb"].update(k for k in item if k in ACTION_VERBS)
                if isinstance(item.get("send"), dict):
                    used["send"].update(item["send"])
                for key in ("then", "else"):
                    actions(item.get(key))
                for branch in item.get("elif") or []:
                    actions(branch.get("then"))
                if isinstance(item.get("foreach"), dict):
                    actions(item["foreach"].get("do"))

    def transitions(spec: Any) -> None:
        for item in spec if isinstance(spec, list) else [spec]:
            if isinstance(item, dict):
                used["transition"].update(k for k in item if k != "event")
                actions(item.get("actions"))

    def states(mapping: dict[str, Any]) -> None:
        for body in mapping.values():
            body = body or {}
            used["state"].update(body)
            for key in ("entry", "exit", "actions"):
                actions(body.get(key))
            if isinstance(body.get("initial"), dict):
                actions(body["initial"].get("actions"))
            for spec in list((body.get("on") or {}).values()) + list((body.get("after") or {}).values()):
                transitions(spec)
            for key in ("transitions", "always", "on_done"):
                transitions(body.get(key))
            states(body.get("states") or {})

    if isinstance(document.get("initial"), dict):
        actions(document["initial"].get("actions"))
    states(document["states"])
    return used


def test_every_feature_machine_uses_every_key_the_compiler_knows() -> None:
    used = keys_used(load_yaml(EVERY_FEATURE_MACHINE))
    assert used["top"] == set(TOP_KEYS)
    assert used["state"] == {key for keys in STATE_KEYS.values() for key in keys}
    assert used["transition"] == set(TRANSITION_KEYS)
    assert used["verb"] == set(ACTION_VERBS)
    assert used["send"] == set(SEND_KEYS)


def test_minimal_machine_validates() -> None:
    assert_schema_and_compiler_accept("machine: m\nversion: 1\nstates:\n  only:\n")


MACHINE_FILES = sorted((ROOT / "machines").glob("*/v*.yaml"))


def test_there_are_machine_files() -> None:
    assert MACHINE_FILES


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_machine_file_validates(path: Path) -> None:
    statechart.load(path)  # the compiler accepts it
    errors = schema_errors(load_yaml(path.read_text(encoding="utf-8")))
    assert not errors, describe(errors)


def doc_snippets() -> list[tuple[str, str]]:
    """(where, YAML) of every whole machine in docs/*.md: ```yaml blocks with `machine:`, and
    machine texts passed as string literals in ```python blocks (except the mistakes a page
    shows by passing them to its ``problems()`` helper)."""
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M):
            language, body = match.group(1), match.group(2)
            where = f"{page.name}:{text.count(chr(10), 0, match.start()) + 1}"
            if language == "yaml" and re.search(r"^machine:", body, flags=re.M):
                found.append((where, body))
            elif language == "python":
                try:
                    tree = ast.parse(body)
                except SyntaxError:
                    continue
                # machines shown as mistakes are passed to a `problems(...)` helper: not valid on purpose
                mistakes = {id(arg) for call in ast.walk(tree) if isinstance(call, ast.Call)
                            and isinstance(call.func, ast.Name) and call.func.id == "problems" for arg in call.args}
                found += [(where, node.value) for node in ast.walk(tree)
                          if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in mistakes
                          and re.search(r"^machine:", node.value, flags=re.M)]
    return found


DOC_SNIPPETS = doc_snippets()


def test_reference_has_whole_machines() -> None:
    assert sum(where.startswith("reference.md") for where, _ in DOC_SNIPPETS) >= 2


@pytest.mark.parametrize(("where", "text"), DOC_SNIPPETS, ids=[where for where, _ in DOC_SNIPPETS])
def test_doc_snippet_validates(where: str, text: str) -> None:
    """The schema accepts every machine the docs show; the reference's ```yaml machines also load."""
    if where.startswith("reference.md"):
        problems = compile_problems(text)
        assert not problems, "\n".join(map(str, problems))
    errors = schema_errors(load_yaml(text))
    assert not errors, f"{text}\n{describe(errors)}"


def with_states(states_yaml: str, head: str = "") -> str:
    """A minimal machine whose `states` block is ``states_yaml`` (indented by two spaces)."""
    return "machine: m\nversion: 1\n" + head + "states:\n" + "".join(
        f"  {line}\n" for line in states_yaml.strip("\n").splitlines()
    )


# One form each, as small as possible; each loads and validates.
VALID_SNIPPETS = [
    ("binding late with state data", with_states("s: {data: {x: 1, y: {expr: 'x + 1'}}}", "binding: late\n")),
    ("binding early", with_states("s: {}", "binding: early\n")),
    ("top-level script string", with_states("s: {}", "data: {n: 1}\nscript: |\n  n += 1\n  m = n * 2\n")),
    ("top-level script list", with_states("s: {}", "script: ['a = 1', 'b = [a]', 'b[0] = 2']\n")),
    ("data null", with_states("s: {}", "data:\n")),
    ("state data on a final state", with_states("s: {type: final, data: {x: 1}}")),
    ("transitions list", with_states("s:\n  transitions:\n    - {event: A, target: t}\n    - {event: '*'}\n"
                                     "    - {event: A, target: s, cond: 'True'}\n    - {target: t, cond: 'False'}\nt: {}")),
    ("empty transitions list", with_states("s: {transitions: []}")),
    ("entry blocks", with_states("s: {entry: [[{log: '1'}], [], [{log: '2'}, {log: '3'}]]}")),
    ("exit blocks", with_states("s: {exit: [[{log: '1'}]]}")),
    ("entry null", with_states("s: {entry: }")),
    ("single action without a list", with_states("s: {entry: {log: '1'}}")),
    ("initial mapping deeper", with_states("s:\n  initial: {target: deep}\n  states:\n    mid:\n"
                                           "      states: {other: {}, deep: {}}\n")),
    ("top-level initial mapping deeper", with_states("s: {states: {a: {}, b: {}}}", "initial: {target: b}\n")),
    ("initial into two regions", with_states("s:\n  initial: {target: [x2, y2]}\n  states:\n    p:\n"
                                             "      type: parallel\n      states:\n"
                                             "        x: {states: {x1: {}, x2: {}}}\n"
                                             "        y: {states: {y1: {}, y2: {}}}\n")),
    ("cond and guard", with_states("s: {on: {E: {target: s, cond: 'True', guard: ok}}}")),
    ("cond true", with_states("s: {always: {target: t, cond: true}}\nt: {}")),
    ("cond false", with_states("s: {on: {E: {target: t, cond: false}}}\nt: {}")),
    ("cond a number", with_states("s: {on: {E: {target: t, cond: 0}}}\nt: {}")),
    ("target null", with_states("s: {on: {E: {target: null, actions: [{log: '1'}]}}}")),
    ("assign literals", with_states("s: {entry: {assign: {a: 1, b: 2.5, c: true, d: null, e: \"'x'\"}}}",
                                    "data: {a: 0, b: 0, c: 0, d: 0, e: 0}\n")),
    ("after number keys", with_states("s: {after: {30: t, '1.5': t, .5: t, 2d: t}}\nt: {}")),
    ("send delay number", with_states("s: {entry: {send: {event: E, delay: 2.5}}}")),
    ("send delay text number", with_states("s: {entry: {send: {event: E, delay: '2'}}}")),
    ("send event_expr", with_states("s: {entry: {send: {event_expr: \"'E'\"}}}")),
    ("send internal target", with_states("s: {entry: {send: {event: E, target: '#_internal'}}}")),
    ("send own session target", with_states("s: {entry: {send: {event: E, target: '#_scxml_s1'}}}")),
    ("send target_expr", with_states("s: {entry: {send: {event: E, target_expr: \"'#_internal'\"}}}")),
    ("send type scxml", with_states("s: {entry: {send: {event: E, type: scxml}}}")),
    ("send type processor uri", with_states(f"s: {{entry: {{send: {{event: E, type: '{SCXML_PROCESSOR}'}}}}}}")),
    ("send type_expr", with_states("s: {entry: {send: {event: E, type_expr: \"'scxml'\"}}}")),
    ("send id_location", with_states("s: {entry: {send: {event: E, id_location: sid, delay: 1s}}}",
                                     "data: {sid: null}\n")),
    ("send delay_expr", with_states("s: {entry: {send: {event: E, delay_expr: \"'5s'\"}}}")),
    ("send namelist and data", with_states("s: {entry: {send: {event: E, namelist: [a, b], data: {c: 'a'}}}}",
                                           "data: {a: 1, b: 2}\n")),
    ("send content", with_states("s: {entry: {send: {event: E, content: \"{'k': 1}\"}}}")),
    ("cancel id_expr", with_states("s: {entry: {cancel: {id_expr: \"'t' + str(1)\"}}}")),
    ("script action string", with_states("s: {entry: {script: 'x = 1'}}")),
    ("script action block", with_states("s:\n  entry:\n    - script: |\n        x = [1]\n        x[0] = 2\n"
                                        "        x += [3]\n        len(x)\n")),
    ("script action list", with_states("s: {entry: {script: ['x = 1', 'x *= 2']}}")),
    ("descriptor .*", with_states("s: {on: {'.*': t}}\nt: {}")),
    ("log an empty mapping", with_states("s: {entry: {log: {}}}")),
    ("log a number", with_states("s: {entry: {log: 3}}")),
    ("foreach without do", with_states("s: {entry: {foreach: {array: '[1, 2]', item: x}}}", "data: {x: 0}\n")),
    ("if literal", with_states("s: {entry: {if: true, then: [{log: '1'}], elif: [{cond: 1, then: []}]}}")),
    ("history with path target", with_states("p:\n  states:\n    h: {type: history, target: p.b}\n    b: {}\n")),
]


@pytest.mark.parametrize("text", [case[1] for case in VALID_SNIPPETS], ids=[case[0] for case in VALID_SNIPPETS])
def test_valid_snippet_loads_and_validates(text: str) -> None:
    assert_schema_and_compiler_accept(text)


# --------------------------------------------------------------------------- generated machines

SEND_ACTIONS: list[Any] = [
    {"script": "m = m + 1"},
    {"script": ["seen = n", "m += 1"]},
    {"assign": {"m": 1}},
    {"assign": {"n": None, "m": True}},
    {"send": {"event": "E1", "target": "#_internal"}},
    {"send": {"event_expr": "'E2'", "type": "scxml", "id_location": "sid", "delay_expr": "'1s'"}},
    {"send": {"event": "E3", "type": SCXML_PROCESSOR, "namelist": ["n", "m"], "data": {"x": 1}}},
    {"send": {"event": "E0", "content": "n + m", "target_expr": "'#_internal'"}},
    {"send": {"event": "E4", "delay": 1.5, "id": "t2", "type_expr": "'scxml'"}},
    {"cancel": {"id_expr": "'t2'"}},
    {"if": True, "then": [{"log": 1}]},
    {"log": {"expr": False}},
    {"log": {}},
]


def _proper_descendants(chart: Chart, state_id: str) -> list[str]:
    result = []
    for child in chart.nodes[state_id].children:
        if chart.nodes[child].kind != "history":
            result.append(child)
            result += _proper_descendants(chart, child)
    return result


def _as_items(spec: Any) -> list[Any]:
    return spec if isinstance(spec, list) else [spec]


def _ordered_item(event: str | None, spec: Any) -> dict[str, Any]:
    item: dict[str, Any] = {} if event is None else {"event": event}
    if isinstance(spec, str):
        item["target"] = spec
    elif isinstance(spec, dict):
        item.update(spec)
    return item


@st.composite
def scxml_flavoured_machines(draw: Any) -> str:
    """A generated machine (strategies.charts) rewritten, where that keeps it valid, to use the
    keys that came from SCXML: binding, script, state data, `transitions`, entry/exit blocks,
    deeper initial targets, cond with guard, literal values, numeric `after` keys, `.*`, and the
    new send/cancel/script actions."""
    chart = draw(charts(max_depth=3, max_states=10))
    document = copy.deepcopy(chart.document)
    chance = st.integers(0, 3)
    if draw(chance) == 0:
        document["binding"] = draw(st.sampled_from(["early", "late"]))
    if draw(chance) == 0:
        document["script"] = draw(st.sampled_from(["n = n + 0", ["m += 0", "seen = [m]"]]))
    document["data"]["sid"] = None

    def rewrite(transition: Any) -> Any:
        if isinstance(transition, dict) and draw(chance) == 0:
            transition = {**transition, "guard": "ok"}
            transition.setdefault("cond", draw(st.sampled_from([True, 1, "n >= 0"])))
        return transition

    def visit(states: dict[str, Any]) -> None:
        for state_id, body in states.items():
            kind = chart.nodes[state_id].kind
            if kind == "history":
                continue
            if draw(chance) == 0:
                body["data"] = {f"q_{state_id}": draw(st.sampled_from([0, "text", [1, 2], {"expr": "n + 1"}, None]))}
            for key in ("entry", "exit"):
                if key in body and draw(chance) == 0:
                    actions = body[key]
                    cut = draw(st.integers(0, len(actions)))
                    body[key] = [actions[:cut], actions[cut:]]
                elif draw(chance) == 0:
                    body[key] = draw(st.lists(st.sampled_from(SEND_ACTIONS), min_size=1, max_size=3))
            if kind != "final" and draw(chance) == 0:
                body.setdefault("on", {})[draw(st.sampled_from([".*", "*", "error", "error.", "E0 E1"]))] = None
            if "on" in body:
                body["on"] = {event: [rewrite(t) for t in _as_items(spec)] for event, spec in body["on"].items()}
                if draw(chance) == 0:
                    ordered = [_ordered_item(event, t) for event, spec in body.pop("on").items() for t in spec]
                    if "always" in body and draw(st.booleans()):
                        ordered += [_ordered_item(None, t) for t in _as_items(body.pop("always"))]
                    body["transitions"] = ordered
            if "after" in body and draw(st.booleans()):
                seconds = {"500ms": 0.5, "1s": 1, "2s": 2}
                body["after"] = {draw(st.sampled_from([seconds[key], str(seconds[key])])): spec
                                 for key, spec in body["after"].items()}
            if kind == "compound" and draw(chance) == 0:
                initial = body.get("initial")
                first = initial["target"] if isinstance(initial, dict) else initial
                first = first or next(c for c in chart.nodes[state_id].children if chart.nodes[c].kind != "history")
                deeper = _proper_descendants(chart, first)
                if deeper:
                    body["initial"] = {"target": draw(st.sampled_from(deeper))}
            visit(body.get("states") or {})

    visit(document["states"])
    top = document.get("initial") or next(c for c in chart.nodes[CHART_ROOT].children)
    deeper = _proper_descendants(chart, top)
    if deeper and draw(chance) == 0:
        document["initial"] = {"target": draw(st.sampled_from(deeper)), "actions": [{"log": "'start'"}]}
    return dump(document)


@settings(max_examples=30, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scxml_flavoured_machines())
def test_schema_accepts_the_generated_machines_the_compiler_accepts(text: str) -> None:
    assert_schema_and_compiler_accept(text)


# --------------------------------------------------------------------------- broken machines

BASE = """\
machine: m
version: 1
states:
  s: {}
"""

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
    ("data key a keyword", BASE + "data: {class: 0}\n", ("data",), "propertyNames"),
    ("data key hides a built-in", BASE + "data: {len: 0}\n", ("data",), "propertyNames"),
    ("state id with a dot", with_states("a.b: {}"), ("states",), "propertyNames"),
    ("after 30 minutes", with_states("s: {after: {30 minutes: t}}\nt: {}"), ("states", "s", "after"), "propertyNames"),
    ("after negative seconds", with_states("s: {after: {-5: t}}\nt: {}"), ("states", "s", "after"), "propertyNames"),
    ("send delay 30 minutes", with_states("s: {entry: [{send: {event: T, delay: 30 minutes}}]}"),
     ("states", "s", "entry", 0, "send", "delay"), "pattern"),
    ("negative delay", with_states("s: {entry: [{send: {event: T, delay: -5}}]}"),
     ("states", "s", "entry", 0, "send", "delay"), "minimum"),
    ("transition type sideways", with_states("s: {on: {GO: {target: t, type: sideways}}}\nt: {}"),
     ("states", "s", "on", "GO", "type"), "enum"),
    ("unknown transition key", with_states("s: {on: {GO: [{target: t, when: x}]}}\nt: {}"),
     ("states", "s", "on", "GO", 0), "additionalProperties"),
    ("bad event descriptor", with_states("s: {on: {'PAY!': s}}"), ("states", "s", "on"), "propertyNames"),
    ("descriptor ..*", with_states("s: {on: {'..*': s}}"), ("states", "s", "on"), "propertyNames"),
    ("cond a list", with_states("s: {always: {target: s, cond: [x]}}"), ("states", "s", "always", "cond"), "type"),
    ("cond null", with_states("s: {always: {target: s, cond: null}}"), ("states", "s", "always", "cond"), "type"),
    ("target with a space", with_states("s: {on: {GO: 'other state'}}"), ("states", "s", "on", "GO"), "pattern"),
    ("two verbs in one action", with_states("s: {entry: [{raise: A, emit: B}]}"), ("states", "s", "entry", 0), "oneOf"),
    ("no verb in an action", with_states("s: {entry: [{}]}"), ("states", "s", "entry", 0), "oneOf"),
    ("misspelt verb", with_states("s: {entry: [{assing: {x: '1'}}]}"), ("states", "s", "entry", 0), "additionalProperties"),
    ("send without event", with_states("s: {entry: [{send: {delay: 5s}}]}"), ("states", "s", "entry", 0, "send"), "required"),
    ("send with unknown key", with_states("s: {entry: {send: {event: E, after: 5s}}}"),
     ("states", "s", "entry", "send"), "additionalProperties"),
    ("send event and event_expr", with_states("s: {entry: {send: {event: E, event_expr: \"'E'\"}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send id and id_location", with_states("s: {entry: {send: {event: E, id: a, id_location: b}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send delay and delay_expr", with_states("s: {entry: {send: {event: E, delay: 1s, delay_expr: '1'}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send target and target_expr", with_states("s: {entry: {send: {event: E, target: '#_internal', target_expr: x}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send type and type_expr", with_states("s: {entry: {send: {event: E, type: scxml, type_expr: x}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send data and content", with_states("s: {entry: {send: {event: E, data: {a: '1'}, content: '1'}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send namelist and content", with_states("s: {entry: {send: {event: E, namelist: [a], content: '1'}}}"),
     ("states", "s", "entry", "send"), "not"),
    ("send target a URL", with_states("s: {entry: {send: {event: E, target: 'http://example.com'}}}"),
     ("states", "s", "entry", "send", "target"), "pattern"),
    ("send type http", with_states("s: {entry: {send: {event: E, type: http}}}"),
     ("states", "s", "entry", "send", "type"), "enum"),
    ("send id_location a path", with_states("s: {entry: {send: {event: E, id_location: a.b}}}"),
     ("states", "s", "entry", "send", "id_location"), "pattern"),
    ("send namelist a string", with_states("s: {entry: {send: {event: E, namelist: a}}}"),
     ("states", "s", "entry", "send", "namelist"), "type"),
    ("send namelist item a path", with_states("s: {entry: {send: {event: E, namelist: [a, b.c]}}}"),
     ("states", "s", "entry", "send", "namelist", 1), "pattern"),
    ("send delay_expr a list", with_states("s: {entry: {send: {event: E, delay_expr: [1]}}}"),
     ("states", "s", "entry", "send", "delay_expr"), "type"),
    ("cancel mapping without id_expr", with_states("s: {entry: {cancel: {id: x}}}"),
     ("states", "s", "entry", "cancel"), "additionalProperties"),
    ("cancel a number", with_states("s: {entry: {cancel: 5}}"), ("states", "s", "entry", "cancel"), "type"),
    ("script action a number", with_states("s: {entry: {script: 5}}"), ("states", "s", "entry", "script"), "type"),
    ("script action list item a number", with_states("s: {entry: {script: ['x = 1', 2]}}"),
     ("states", "s", "entry", "script", 1), "type"),
    ("if without then", with_states("s: {exit: [{if: 'x > 1'}]}"), ("states", "s", "exit", 0), "dependentRequired"),
    ("then without if", with_states("s: {exit: [{log: x, then: [a]}]}"), ("states", "s", "exit", 0), "dependentRequired"),
    ("elif without cond", with_states("s: {exit: [{if: x, then: [a], elif: [{then: [b]}]}]}"),
     ("states", "s", "exit", 0, "elif", 0), "required"),
    ("foreach without item", with_states("s: {entry: [{foreach: {array: xs, do: []}}]}"),
     ("states", "s", "entry", 0, "foreach"), "required"),
    ("assign to a bad location", with_states("s: {entry: [{assign: {'a..b': '1'}}]}"),
     ("states", "s", "entry", 0, "assign"), "propertyNames"),
    ("assign a list", with_states("s: {entry: [{assign: {a: [1]}}]}"),
     ("states", "s", "entry", 0, "assign", "a"), "type"),
    ("log with unknown key", with_states("s: {entry: [{log: {text: hi}}]}"), ("states", "s", "entry", 0, "log"), "additionalProperties"),
    ("raise a bad event name", with_states("s: {entry: [{raise: 'a b'}]}"), ("states", "s", "entry", 0, "raise"), "pattern"),
    ("entry block with a misspelt verb", with_states("s: {entry: [[{log: '1'}], [{assing: {x: '1'}}]]}"),
     ("states", "s", "entry", 1, 0), "additionalProperties"),
    ("done_data on an atomic state", with_states("s: {type: atomic, done_data: {a: x}}"), ("states", "s", "type"), "const"),
    ("history key without type history", with_states("s: {history: deep}"), ("states", "s"), "required"),
    ("final state with transitions", with_states("s: {type: final, on: {GO: s}}"), ("states", "s", "on"), "not"),
    ("final state with a transitions list", with_states("s: {type: final, transitions: [{event: GO}]}"),
     ("states", "s", "transitions"), "not"),
    ("final state with an invariant", with_states("s: {type: final, invariant: 'True'}"),
     ("states", "s", "invariant"), "not"),
    ("history state with data", with_states("p:\n  states:\n    h: {type: history, data: {x: 1}}\n    b: {}\n"),
     ("states", "p", "states", "h", "data"), "not"),
    ("parallel state with initial", with_states("s: {type: parallel, initial: a, states: {a: {}}}"),
     ("states", "s", "initial"), "not"),
    ("compound type without states", with_states("s: {type: compound}"), ("states", "s"), "required"),
    ("initial mapping without target", BASE + "initial: {actions: [a]}\n", ("initial",), "required"),
    ("initial a dotted path", with_states("s: {initial: s.a, states: {a: {}}}"), ("states", "s", "initial"), "pattern"),
    ("initial target a dotted path", with_states("s: {initial: {target: s.a}, states: {a: {}}}"),
     ("states", "s", "initial", "target"), "pattern"),
    ("python not a string", BASE + "python: 3\n", ("python",), "type"),
    ("data expr with extra key", BASE + "data: {a: {expr: x, default: 1}}\n", ("data", "a"), "additionalProperties"),
    ("binding lazy", BASE + "binding: lazy\n", ("binding",), "enum"),
    ("top-level script a number", BASE + "script: 5\n", ("script",), "type"),
    ("top-level script list item a mapping", BASE + "script: ['x = 1', {y: 2}]\n", ("script", 1), "type"),
    ("state data not a mapping", with_states("s: {data: 3}"), ("states", "s", "data"), "type"),
    ("state data null", with_states("s: {data: null}"), ("states", "s", "data"), "type"),
    ("state data key hides a built-in", with_states("s: {data: {max: 1}}"), ("states", "s", "data"), "propertyNames"),
    ("transitions a mapping", with_states("s: {transitions: {E: s}}"), ("states", "s", "transitions"), "type"),
    ("transitions item a string", with_states("s: {transitions: [s]}"), ("states", "s", "transitions", 0), "type"),
    ("transitions item with unknown key", with_states("s: {transitions: [{event: E, targte: s}]}"),
     ("states", "s", "transitions", 0), "additionalProperties"),
    ("transitions item with a bad event", with_states("s: {transitions: [{event: 'PAY!', target: s}]}"),
     ("states", "s", "transitions", 0, "event"), "pattern"),
    ("invariant a number", BASE + "invariant: 1\n", ("invariant",), "type"),
]

# Mistakes the schema reports although the compiler loads the document (each is a silent no-op
# or a misreading when loaded): everything else the schema refuses, the compiler refuses too.
SCHEMA_ONLY = {
    "data expr with extra key",  # the loader reads {expr, default} as a literal mapping
    "send target a URL",  # the loader accepts any target; it fails with error.execution when run
    "send type http",  # likewise: only the SCXML event processor is supported
}


@pytest.mark.parametrize(
    "document, path, keyword",
    [case[1:] for case in BROKEN_MACHINES],
    ids=[case[0] for case in BROKEN_MACHINES],
)
def test_broken_machine_fails_at_the_mistake(document: str, path: tuple, keyword: str) -> None:
    parsed = load_yaml(document)
    assert_fails_at(machine_validator(), parsed, path, keyword)


@pytest.mark.parametrize(
    "name, document",
    [case[:2] for case in BROKEN_MACHINES],
    ids=[case[0] for case in BROKEN_MACHINES],
)
def test_compiler_agrees_with_the_schema_on_broken_machines(name: str, document: str) -> None:
    problems = compile_problems(document)
    if name in SCHEMA_ONLY:
        assert problems == [], problems
    else:
        assert problems, "the compiler loads a document the schema refuses"


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
    "bound_states": [],
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


@pytest.mark.parametrize("bound_states", [[], ["open", "assigned"], "<absent>"])
def test_snapshot_bound_states_is_optional(bound_states: Any) -> None:
    snapshot = copy.deepcopy(SNAPSHOT)
    if bound_states == "<absent>":
        del snapshot["bound_states"]
    else:
        snapshot["bound_states"] = bound_states
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


def test_real_snapshot_of_the_order_machine_validates() -> None:
    machine = statechart.load(ROOT / "machines" / "order" / "v2.yaml")
    instance = machine.start(clock=statechart.VirtualClock())
    instance.send("ADD", {"price": 10})
    instance.send("CHECKOUT")
    document = json.loads(instance.snapshot().to_json())
    assert document["pending_sends"], "the payment timeout is pending"
    errors = list(snapshot_validator().iter_errors(document))
    assert not errors, describe(errors)


def test_real_snapshot_of_a_late_binding_machine_records_bound_states() -> None:
    machine = statechart.loads(with_states("a: {data: {x: 1}, on: {GO: b}}\nb: {data: {y: 2}}", "binding: late\n"),
                               "late.yaml")
    instance = machine.start(clock=statechart.VirtualClock())
    instance.send("GO")
    document = json.loads(instance.snapshot().to_json())
    assert document["bound_states"] == ["a", "b"]
    errors = list(snapshot_validator().iter_errors(document))
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
    ("bound_states a string", _set("bound_states", "open"), ("bound_states",), "type"),
    ("bound_states item not a state id", _set("bound_states", ["open", "a.b"]), ("bound_states", 1), "pattern"),
    ("bound_states repeated", _set("bound_states", ["open", "open"]), ("bound_states",), "uniqueItems"),
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


def test_snapshot_schema_keys_are_the_snapshots_fields() -> None:
    schema = json.loads(SNAPSHOT_SCHEMA_PATH.read_text(encoding="utf-8"))
    fields = {field.name for field in statechart.Snapshot.__attrs_attrs__}
    assert set(schema["properties"]) == fields


# --------------------------------------------------------------------------- reference docs


def documented_names() -> dict[str, list[str]]:
    """The keys and verbs the machine schema defines, by where they appear."""
    schema = json.loads(MACHINE_SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    actions = defs["action"]["properties"]
    control = {"then", "elif", "else"}
    return {
        "top-level key": list(schema["properties"]),
        "binding": list(schema["properties"]["binding"]["enum"]),
        "state key": list(defs["state"]["properties"]),
        "transition key": list(defs["transition"]["properties"]),
        "ordered transition key": list(defs["ordered-transition"]["properties"]),
        "initial key": list(defs["initial"]["properties"]),
        "data value key": list(defs["data-value"]["then"]["properties"]),
        "action verb": [name for name in actions if name not in control],
        "action key": list(actions),
        "send key": list(actions["send"]["properties"]),
        "send type": list(actions["send"]["properties"]["type"]["enum"]),
        "cancel key": list(actions["cancel"]["properties"]),
        "log key": list(actions["log"]["properties"]),
        "elif key": list(actions["elif"]["items"]["properties"]),
        "foreach key": list(actions["foreach"]["properties"]),
        "raise key": list(actions["raise"]["properties"]),
        "state type": list(defs["state"]["properties"]["type"]["enum"]),
        "history depth": list(defs["state"]["properties"]["history"]["enum"]),
        "transition type": list(defs["transition"]["properties"]["type"]["enum"]),
        "snapshot key": list(json.loads(SNAPSHOT_SCHEMA_PATH.read_text(encoding="utf-8"))["properties"]),
    }


@pytest.mark.parametrize(
    "kind, name",
    [(kind, name) for kind, names in documented_names().items() for name in names],
)
def test_reference_mentions_every_schema_name(kind: str, name: str) -> None:
    reference = REFERENCE_PATH.read_text(encoding="utf-8")
    assert f"`{name}`" in reference, f"docs/reference.md does not mention the {kind} `{name}`"


def test_reference_table_rows_list_every_state_key() -> None:
    """The state table of the reference has one row per key the compiler accepts in a state."""
    reference = REFERENCE_PATH.read_text(encoding="utf-8")
    table = reference.split("## States", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    assert sorted(rows) == sorted({key for keys in STATE_KEYS.values() for key in keys})


def test_reference_table_rows_list_every_top_level_key() -> None:
    reference = REFERENCE_PATH.read_text(encoding="utf-8")
    table = reference.split("## Top-level keys", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    assert rows == list(TOP_KEYS)


def test_reference_table_rows_list_every_send_key() -> None:
    reference = REFERENCE_PATH.read_text(encoding="utf-8")
    table = reference.split("### `send`", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    assert rows == list(SEND_KEYS)
