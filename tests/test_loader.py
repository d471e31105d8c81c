"""Loading machine files: every malformed document gives a LoadError whose problems point at
``file:line:column`` with a message a person can act on (and a hint where one helps).

Line and column numbers are 1-based and count from the first line of the YAML text; each
test writes its text so that the position can be checked by eye.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import statechart
from statechart import LoadError, VirtualClock
from statechart.jsonvalues import copy_json as _plain
from statechart.errors import Problem
from statechart.yaml_loader import parse_yaml

FILE = "machines/order/v2.yaml"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PATH = ROOT / "machines" / "order" / "v2.yaml"
EXAMPLE_TEXT = EXAMPLE_PATH.read_text(encoding="utf-8")


def problems(text: str, file: str = FILE, **kwargs: Any) -> tuple[Problem, ...]:
    with pytest.raises(LoadError) as info:
        statechart.loads(dedent(text), file, **kwargs)
    return info.value.problems


def only_problem(text: str, file: str = FILE, **kwargs: Any) -> Problem:
    found = problems(text, file, **kwargs)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def load(text: str, file: str = FILE, **kwargs: Any) -> statechart.Machine:
    return statechart.loads(dedent(text), file, **kwargs)


# --------------------------------------------------------------------------- the YAML itself


def test_invalid_yaml_syntax_is_reported_at_the_parser_position() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: paid
             STOP: cart
        """)
    assert problem == Problem(FILE, 7, 6, "invalid YAML: this line is indented differently from the keys above it",
                              "the keys of one mapping line up in one column: the mapping that starts at line 5 "
                              "has its keys at column 5")


def test_unclosed_flow_mapping_is_reported_where_the_parser_gives_up() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart: {on: {GO: paid}
          paid: {}
        """)
    assert problem == Problem(FILE, 5, 3, "invalid YAML: expected ',' or '}', but got '<scalar>'",
                              "while parsing a flow mapping at line 4")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_one_problem_at_the_start(text: str) -> None:
    assert only_problem(text) == Problem(FILE, 1, 1, "the file is empty",
                                         "a machine needs `machine`, `version` and `states`")


@pytest.mark.parametrize("text", ["- cart\n- paid\n", "just a sentence\n", "42\n"])
def test_top_level_that_is_not_a_mapping_is_refused(text: str) -> None:
    assert only_problem(text) == Problem(FILE, 1, 1, "a machine file must be a mapping",
                                         "it needs `machine`, `version` and `states`")


def test_a_second_yaml_document_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states: {cart: {}}
        ---
        machine: other
        """)
    assert problem == Problem(FILE, 4, 1, "invalid YAML: a machine file holds one YAML document",
                              "remove the `---` and what follows, or move it to its own file")


def test_control_character_is_located_in_the_text() -> None:
    problem = only_problem("machine: order\nversion: 2\nstates: {ca\x00rt: {}}\n")
    assert problem == Problem(FILE, 3, 12, "invalid YAML: the character '\\x00' is not allowed",
                              "machine files are UTF-8 text without control characters")


@pytest.mark.parametrize(
    ("missing", "text"),
    [
        ("machine", "version: 2\nstates: {cart: {}}\n"),
        ("version", "machine: order\nstates: {cart: {}}\n"),
        ("states", "machine: order\nversion: 2\n"),
    ],
)
def test_each_missing_required_key_is_reported(missing: str, text: str) -> None:
    assert only_problem(text) == Problem(FILE, 1, 1, f"missing required key {missing!r}")


def test_all_missing_required_keys_are_reported_together() -> None:
    found = problems("description: nothing else\n")
    assert [p.message for p in found] == [
        "missing required key 'machine'", "missing required key 'version'", "missing required key 'states'"]


def test_duplicate_yaml_key_names_both_lines() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on: {GO: paid}
          paid: {}
          cart: {}
        """)
    assert problem == Problem(FILE, 7, 3, "duplicate key 'cart'", "first written at line 4, column 3")


def test_duplicate_key_inside_a_transition_mapping() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: {target: paid, target: cart}
          paid: {}
        """)
    assert problem == Problem(FILE, 6, 26, "duplicate key 'target'", "first written at line 6, column 12")


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "true", "null"])
def test_yaml_1_1_words_as_keys_stay_strings_and_name_events(word: str) -> None:
    machine = load(f"""\
        machine: order
        version: 2
        states:
          cart:
            on:
              {word}: paid
          paid: {{}}
        """)
    instance = machine.start()
    result = instance.send(word)
    assert result.transitions == (f"cart:{word}:0",)
    assert instance.configuration == frozenset({"paid"})


@pytest.mark.parametrize(("word", "meaning"), [("yes", "true"), ("No", "false"), ("on", "true"), ("OFF", "false")])
def test_yaml_1_1_boolean_words_as_values_are_refused_as_ambiguous(word: str, meaning: str) -> None:
    problem = only_problem(f"""\
        machine: order
        version: 2
        data: {{on_hold: {word}}}
        states: {{cart: {{}}}}
        """)
    assert problem == Problem(FILE, 3, 17, f"{word!r} is ambiguous: YAML 1.1 reads it as {meaning}, YAML 1.2 as a string",
                              f"write {meaning} for the boolean, or quote it for the string")


def test_quoted_yaml_1_1_boolean_words_are_strings_and_can_name_states() -> None:
    machine = load("""\
        machine: order
        version: 2
        data: {answer: "no"}
        states:
          cart:
            on: {GO: "off"}
          "off": {}
        """)
    instance = machine.start()
    instance.send("GO")
    assert instance.data == {"answer": "no"}
    assert instance.configuration == frozenset({"off"})


def test_on_key_is_read_as_the_transition_table() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: paid
          paid: {}
        """)
    assert [t.id for t in machine.states["cart"].transitions] == ["cart:CHECKOUT:0"]


def test_anchor_and_alias_repeat_a_value() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          cart:
            on: &leave
              CANCEL: cancelled
              CHECKOUT: paid
          paid:
            on: *leave
          cancelled: {}
        """)
    assert [t.id for t in machine.states["paid"].transitions] == ["paid:CANCEL:0", "paid:CHECKOUT:0"]
    instance = machine.start()
    instance.send("CHECKOUT")
    instance.send("CANCEL")
    assert instance.configuration == frozenset({"cancelled"})


def test_merge_key_is_refused_with_a_clear_message() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on: &leave {CANCEL: cancelled}
          paid:
            <<: {on: {CANCEL: cancelled}}
          cancelled: {}
        """)
    assert problem == Problem(FILE, 7, 5, "YAML merge keys (<<) are not supported in machine files",
                              "write the keys out")


def test_alias_that_contains_itself_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart: &loop
            states:
              inner: *loop
        """)
    assert problem == Problem(FILE, 4, 9, "this anchored value contains an alias to itself",
                              "an alias (*name) may only repeat a value written before it, outside it")


def test_alias_expansion_bomb_is_refused_instead_of_expanded() -> None:
    lines = ["machine: order", "version: 2", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    lines.append("states: {cart: {}}")
    found = problems("\n".join(lines) + "\n")
    assert [p.message for p in found] == ["the document expands to more than 100000 values through aliases"]


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!python/object:os.system {}", "!!python/object:os.system"), ("!!binary aGVsbG8=", "!!binary"),
     ("!!set {a, b}", "!!set"), ("!custom thing", "!custom")],
)
def test_yaml_tags_beyond_plain_values_are_refused(value: str, tag: str) -> None:
    found = problems(f"""\
        machine: order
        version: 2
        description: {value}
        states: {{cart: {{}}}}
        """)
    assert found[0] == Problem(FILE, 3, 14, f"the YAML tag {tag!r} is not supported in machine files",
                               "remove the tag; machine files hold plain strings, numbers, lists and mappings")


def test_scalar_that_its_tag_cannot_read_is_a_problem_not_a_crash() -> None:
    found = problems("""\
        machine: order
        version: !!int two
        states: {cart: {}}
        """)
    assert (found[0].line, found[0].column, found[0].message) == (2, 10, "'two' cannot be read as a YAML int")


# --------------------------------------------------------------------------- unknown keys


def test_unknown_state_key_suggests_the_close_one() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entri: [{log: "'hello'"}]
        """)
    assert problem == Problem(FILE, 5, 5, "unknown key 'entri' in atomic state 'cart'", "did you mean 'entry'?")


def test_unknown_transition_key_suggests_target() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: {trget: paid}
          paid: {}
        """)
    assert problem == Problem(FILE, 6, 18, "unknown key 'trget' in a transition", "did you mean 'target'?")


def test_unknown_action_verb_suggests_assign() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        states:
          cart:
            entry:
              - asign: {total: 1}
        """)
    assert problem == Problem(FILE, 7, 9, "unknown action 'asign' in entry of 'cart'", "did you mean 'assign'?")


def test_unknown_top_level_key_suggests_the_close_one() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        desciption: an order
        states: {cart: {}}
        """)
    assert problem == Problem(FILE, 3, 1, "unknown key 'desciption' in the machine", "did you mean 'description'?")


def test_unknown_key_without_a_close_match_lists_the_accepted_keys() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          done: {type: final, on: {GO: done}}
        """)
    assert problem == Problem(FILE, 4, 23, "unknown key 'on' in final state 'done'",
                              "a final state accepts only: type, description, data, entry, exit, done_data")


def test_action_with_two_verbs_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entry:
              - {raise: A, emit: B}
        """)
    assert problem == Problem(FILE, 6, 9, "an action has exactly one verb, found raise, emit",
                              "write each as its own list item")


# --------------------------------------------------------------------------- ids and targets


def test_duplicate_state_id_anywhere_in_the_tree_points_at_the_first_definition() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            states:
              pending: {}
          shipping:
            states:
              pending: {}
        """)
    assert problem == Problem(FILE, 9, 7, "duplicate state id 'pending'",
                              "state ids are unique in the whole machine; first defined at line 6")


def test_state_id_with_a_dot_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart.open: {}
        """)
    assert problem == Problem(FILE, 4, 3, "state id 'cart.open' is not valid",
                              "use letters, digits, _ and -, starting with a letter or _ (no dots)")


def test_target_that_does_not_exist_suggests_a_state() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: payed
          paid: {}
        """)
    assert problem == Problem(FILE, 6, 17, "target 'payed' does not exist", "did you mean 'paid'?")


def test_target_in_a_list_is_located_at_its_item() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: {target: [left, rihgt]}
          both:
            type: parallel
            states:
              left: {}
              right: {}
        """)
    assert problem == Problem(FILE, 6, 27, "target 'rihgt' does not exist", "did you mean 'right'?")


def test_dotted_target_that_does_not_match_the_tree_says_where_the_state_is() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              PAY: shipping.paid
          payment:
            states:
              paid: {}
          shipping: {}
        """)
    assert problem == Problem(FILE, 6, 12, "target path 'shipping.paid' does not match the state tree",
                              "'paid' is at 'payment.paid'")


def test_dotted_target_that_matches_the_tree_resolves_to_the_state() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              PAY: payment.paid
          payment:
            states:
              pending: {}
              paid: {}
        """)
    assert machine.states["cart"].transitions[0].targets == ("paid",)


def test_targets_that_cannot_be_active_together_are_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: {target: [packing, shipped]}
          shipping:
            states:
              packing: {}
              shipped: {}
        """)
    assert problem == Problem(FILE, 6, 20, "targets 'packing' and 'shipped' cannot be active together",
                              "several targets must lie in different regions of a parallel state")


def test_targets_in_different_parallel_regions_enter_together() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: {target: [shipped, paid]}
          fulfillment:
            type: parallel
            states:
              shipping:
                states: {packing: {}, shipped: {}}
              invoicing:
                states: {open: {}, paid: {}}
        """)
    instance = machine.start()
    instance.send("GO")
    assert instance.configuration == frozenset({"fulfillment", "shipping", "shipped", "invoicing", "paid"})


# --------------------------------------------------------------------------- structure


def test_history_state_at_top_level_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart: {}
          back: {type: history}
        """)
    assert problem == Problem(FILE, 5, 3, "history state 'back' must be the child of a compound or parallel state",
                              "move it inside the state whose history it keeps")


def test_history_state_inside_a_final_state_is_refused() -> None:
    found = problems("""\
        machine: order
        version: 2
        states:
          done:
            type: final
            states:
              back: {type: history}
        """)
    assert Problem(FILE, 7, 7, "history state 'back' must be the child of a compound or parallel state",
                   "move it inside the state whose history it keeps") in found
    assert Problem(FILE, 6, 5, "unknown key 'states' in final state 'done'",
                   "a final state accepts only: type, description, data, entry, exit, done_data") in found


def test_compound_state_with_only_a_history_child_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            states:
              back: {type: history}
        """)
    assert problem == Problem(FILE, 4, 3, "compound state 'payment' has only history states as children",
                              "add the child states it can be in")


def test_history_default_outside_its_parent_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            states:
              back: {type: history, target: cart}
              pending: {}
          cart: {}
        """)
    assert problem == Problem(FILE, 6, 37, "default target 'cart' of history 'back' is not inside 'payment'")


@pytest.mark.parametrize("regions", ["{}", "{only: {}}", "{only: {}, back: {type: history}}"])
def test_parallel_state_needs_two_regions(regions: str) -> None:
    count = 1 if "only" in regions else 0
    found = problems(f"""\
        machine: order
        version: 2
        states:
          fulfillment:
            type: parallel
            states: {regions}
        """)
    assert Problem(FILE, 4, 3, f"parallel state 'fulfillment' has {count} region(s)",
                   "a parallel state needs at least two child regions; use a compound state otherwise") in found


def test_top_level_initial_that_is_not_a_state_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        initial: chart
        states:
          cart: {}
          paid: {}
        """)
    assert problem == Problem(FILE, 3, 10, "initial 'chart' of the machine is not one of its child states",
                              "did you mean 'cart'?")


def test_nested_initial_that_is_a_grandchild_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            initial: card
            states:
              method:
                states:
                  card: {}
        """)
    assert problem == Problem(FILE, 5, 14, "initial 'card' of state 'payment' is not one of its child states",
                              "'card' is deeper down; to start there write `initial: {target: card}`")


def test_initial_mapping_may_enter_a_deeper_state_directly() -> None:
    machine = statechart.loads("""\
machine: order
version: 2
states:
  payment:
    initial: {target: card}
    states:
      cash: {}
      method:
        states:
          wallet: {}
          card: {}
""", FILE)
    assert machine.start().configuration == {"payment", "method", "card"}


def test_initial_mapping_target_is_located_at_the_target() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            initial: {target: nowhere, actions: [{log: "'in'"}]}
            states:
              pending: {}
        """)
    assert problem == Problem(FILE, 5, 23, "initial 'nowhere' of state 'payment' is not one of its child states",
                              "the children of state 'payment' are: pending")


def test_initial_list_of_two_children_of_a_compound_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            initial: [pending, paid]
            states:
              pending: {}
              paid: {}
        """)
    assert problem == Problem(FILE, 5, 14, "targets 'pending' and 'paid' cannot be active together",
                              "state 'payment' starts in one of its child states; name one")


def test_initial_list_naming_a_child_twice_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        initial: [cart, cart]
        states:
          cart: {}
        """)
    assert problem == Problem(FILE, 3, 10, "targets 'cart' and 'cart' cannot be active together",
                              "the machine starts in one of its child states; name one")


def test_initial_list_of_one_child_is_accepted() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          payment:
            initial: [paid]
            states:
              pending: {}
              paid: {}
        """)
    assert machine.start().configuration == frozenset({"payment", "paid"})


@pytest.mark.parametrize(
    ("declared", "message", "hint"),
    [
        ("paralel", "unknown state type 'paralel' for 'both'", "did you mean 'parallel'?"),
        ("concurrent", "unknown state type 'concurrent' for 'both'",
         "one of atomic, compound, parallel, final, history"),
        ("[parallel]", "the `type` of 'both' must be a string, got a list",
         "one of atomic, compound, parallel, final, history"),
    ],
)
def test_unknown_state_type(declared: str, message: str, hint: str) -> None:
    problem = only_problem(f"""\
        machine: order
        version: 2
        states:
          both:
            type: {declared}
            states: {{a: {{}}, b: {{}}}}
        """)
    assert problem == Problem(FILE, 5, 11, message, hint)


def test_unknown_history_mode_suggests_deep() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          payment:
            states:
              pending: {}
              back: {type: history, history: deeper}
        """)
    assert problem == Problem(FILE, 7, 38, "history must be 'shallow' or 'deep', not 'deeper'", "did you mean 'deep'?")


def test_unknown_transition_type_says_what_internal_means() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: {target: cart, type: sideways}
        """)
    assert problem == Problem(FILE, 6, 32, "transition type must be 'external' or 'internal', not 'sideways'",
                              "internal keeps the source state active when the targets are its descendants")


def test_atomic_state_declared_with_children_is_one_problem() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            type: atomic
            states: {open: {}}
        """)
    assert problem == Problem(FILE, 5, 11, "state 'cart' is declared atomic but has child states",
                              "remove `type: atomic`: a state with child states is compound")


def test_compound_state_without_states_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart: {type: compound}
        """)
    assert problem == Problem(FILE, 4, 16, "compound state 'cart' has no child states",
                              "add `states`, or make it atomic")


@pytest.mark.parametrize("empty", ["{}", "null", ""])
def test_empty_child_states_are_refused(empty: str) -> None:
    problem = only_problem(f"""\
        machine: order
        version: 2
        states:
          cart:
            states: {empty}
        """)
    assert problem == Problem(FILE, 5, 13 if empty else 12, "`states` of 'cart' is empty",
                              "list its child states, or remove `states` for an atomic state")


def test_top_level_states_must_be_a_non_empty_mapping() -> None:
    problem = only_problem("machine: order\nversion: 2\nstates: [cart, paid]\n")
    assert problem == Problem(FILE, 3, 9, "`states` must be a non-empty mapping of state id -> state")


def test_state_body_that_is_not_a_mapping_is_refused() -> None:
    problem = only_problem("machine: order\nversion: 2\nstates:\n  cart: [open, closed]\n")
    assert problem == Problem(FILE, 4, 9, "state 'cart' must be a mapping")


# --------------------------------------------------------------------------- names, versions, files


def test_version_that_disagrees_with_the_file_name_is_refused() -> None:
    problem = only_problem("machine: order\nversion: 2\nstates: {cart: {}}\n", "machines/order/v3.yaml")
    assert problem == Problem("machines/order/v3.yaml", 2, 10, "version 2 disagrees with the file name 'v3.yaml'",
                              "a file named v3.yaml must say `version: 3`")


def test_version_that_matches_the_file_name_loads() -> None:
    machine = load("machine: order\nversion: 3\nstates: {cart: {}}\n", "machines/order/v3.yaml")
    assert (machine.name, machine.version) == ("order", 3)


def test_machine_name_must_match_its_folder() -> None:
    problem = only_problem("machine: shop\nversion: 2\nstates: {cart: {}}\n")
    assert problem == Problem(FILE, 1, 10, "machine 'shop' is stored in machines/order/",
                              "move it to machines/shop/ or rename the machine to 'order'")


def test_machine_name_outside_a_machines_folder_is_not_checked_against_the_folder() -> None:
    machine = load("machine: shop\nversion: 2\nstates: {cart: {}}\n", "elsewhere/v2.yaml")
    assert machine.name == "shop"


@pytest.mark.parametrize("name", ["Order", "order-v2", "2order", "'order x'", "[order]"])
def test_invalid_machine_name_is_one_problem(name: str) -> None:
    problem = only_problem(f"machine: {name}\nversion: 2\nstates: {{cart: {{}}}}\n")
    assert problem.line == 1 and problem.column == 10
    assert problem.message.startswith("machine name ") and problem.message.endswith(" is not valid")
    assert problem.hint == "use lower case letters, digits and _, starting with a letter"


@pytest.mark.parametrize(("written", "shown"), [("0", "0"), ("-1", "-1"), ("2.5", "2.5"), ("'2'", "'2'"),
                                                 ("two", "'two'"), ("true", "True"), ("null", "None")])
def test_version_must_be_a_whole_number_from_one(written: str, shown: str) -> None:
    problem = only_problem(f"machine: order\nversion: {written}\nstates: {{cart: {{}}}}\n")
    assert problem == Problem(FILE, 2, 10, f"version {shown} is not an integer >= 1",
                              "write a whole number without quotes, counting from 1: `version: 2`")


def test_loading_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "machines" / "order" / "v1.yaml"
    with pytest.raises(LoadError) as info:
        statechart.load(path)
    assert info.value.problems == (Problem(str(path), 1, 1, "no such file"),)


def test_load_reports_problems_with_the_path_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "machines" / "order" / "v1.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("machine: order\nversion: 1\nstates:\n  cart: {on: {GO: nowhere}}\n")
    with pytest.raises(LoadError) as info:
        statechart.load(path)
    assert info.value.problems == (
        Problem(str(path), 4, 19, "target 'nowhere' does not exist", "targets name a state id of this machine"),)
    assert str(info.value) == (f"1 problem in machine definition:\n  {path}:4:19: target 'nowhere' does not exist "
                               "(targets name a state id of this machine)")


# --------------------------------------------------------------------------- durations


def test_send_delay_in_words_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entry:
              - send: {event: TIMEOUT, delay: 30 minutes}
        """)
    assert problem == Problem(FILE, 6, 39, "'30 minutes' is not a duration",
                              "write a number and a unit (500ms, 30s, 5m, 2h, 1d), or a number of seconds")


def test_after_key_in_words_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          shipping:
            after:
              2 days: late
          late: {}
        """)
    assert problem == Problem(FILE, 6, 7, "'2 days' is not a duration",
                              "write a number and a unit (500ms, 30s, 5m, 2h, 1d), or a number of seconds")


@pytest.mark.parametrize("delay", [".inf", "-5", ".nan"])
def test_send_delay_must_be_a_finite_number_of_seconds(delay: str) -> None:
    problem = only_problem(f"""\
        machine: order
        version: 2
        states:
          cart:
            entry: [{{send: {{event: TIMEOUT, delay: {delay}}}}}]
        """)
    assert (problem.line, problem.column) == (5, 44)
    assert problem.message.endswith("is not a duration")
    assert problem.hint == "a duration is a finite number of seconds >= 0"


def test_after_keys_may_be_plain_numbers_of_seconds() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          waiting:
            after:
              90: late
              0.5: reminded
          reminded:
            after: {1: late}
          late: {}
        """)
    assert [t.delay for t in machine.states["waiting"].transitions] == [90.0, 0.5]
    instance = machine.start(clock=VirtualClock())
    instance.advance(0.5)
    assert instance.configuration == frozenset({"reminded"})
    instance.advance(1)
    assert instance.configuration == frozenset({"late"})


# --------------------------------------------------------------------------- expressions


def test_expression_syntax_error_points_into_the_quoted_expression() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        states:
          cart:
            on:
              CHECKOUT: {target: paid, cond: "total >"}
          paid: {}
        """)
    # `"` is column 38, `t` of total 39, the end of the text (offset 7) column 46
    assert problem == Problem(FILE, 7, 46, "cond: invalid expression syntax: invalid syntax", "in 'total >'")


def test_disallowed_call_points_at_the_call() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        states:
          cart:
            on:
              CHECKOUT: {target: paid, cond: "total > 0 and open('x')"}
          paid: {}
        """)
    # `"` at column 38; `open` starts at offset 14 of the expression
    assert (problem.line, problem.column) == (7, 53)
    assert problem.message.startswith("cond: call of `open` is not allowed")
    assert problem.hint == "in \"total > 0 and open('x')\""


@pytest.mark.parametrize(("written", "column"), [("'event.__class__'", 39), ("event.__class__", 38)])
def test_dunder_access_points_at_the_attribute(written: str, column: int) -> None:
    problem = only_problem(f"""\
        machine: order
        version: 2
        states:
          cart:
            on:
              GO: {{target: cart, cond: {written}}}
        """)
    assert problem == Problem(FILE, 6, column, "cond: `__class__`: names starting with `_` are not allowed",
                              "in 'event.__class__'")


def test_error_in_a_multi_line_block_expression_points_at_its_line() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        states:
          cart:
            on:
              CHECKOUT:
                target: cart
                cond: >
                  total > 0 and
                  open('x')
        """)
    assert (problem.line, problem.column) == (11, 11)
    assert problem.message.startswith("cond: call of `open` is not allowed")


def test_error_on_the_second_line_of_a_literal_block_points_at_that_line() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        states:
          cart:
            always:
              target: cart
              cond: |
                (total > 0 and
                  total.__len__())
        """)
    assert (problem.line, problem.column) == (10, 17)
    assert problem.message == "cond: `__len__`: names starting with `_` are not allowed"


def test_assign_expression_error_is_located_in_the_value() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        states:
          cart:
            entry: [{assign: {total: "total + + * 2"}}]
        """)
    assert problem.line == 6 and 30 <= problem.column <= 30 + len("total + + * 2")
    assert problem.message.startswith("assign to 'total': ")


def test_expression_that_is_a_mapping_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            always: {target: cart, cond: {x: 1}}
        """)
    assert problem == Problem(FILE, 5, 34, "cond must be an expression string, got a mapping")


def test_boolean_cond_is_the_literal_expression() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          cart:
            always: {target: paid, cond: true}
          paid: {}
        """)
    assert machine.start().configuration == frozenset({"paid"})


def test_invariant_expression_is_checked_at_load() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {total: 0}
        invariant: "total >= 0 and"
        states: {cart: {}}
        """)
    assert problem.line == 4 and problem.message == "invariant: invalid expression syntax: invalid syntax"


# --------------------------------------------------------------------------- transitions: cond and guard


GUARDED = """\
    machine: order
    version: 2
    data: {total: 0}
    states:
      cart:
        on:
          ADD: {actions: [{assign: {total: total + 1}}]}
          CHECKOUT: {target: paid, cond: "total > 0", guard: approved}
      paid: {}
    """


def test_transition_with_cond_and_guard_needs_both() -> None:
    approvals = [False, True]
    calls: list[int] = []

    def approved(ctx: Any) -> bool:
        calls.append(ctx.data["total"])
        return approvals.pop(0)

    instance = load(GUARDED, guards={"approved": approved}).start()
    instance.send("ADD")
    assert instance.send("CHECKOUT").transitions == ()
    assert instance.send("CHECKOUT").transitions == ("cart:CHECKOUT:0",)
    assert calls == [1, 1]
    assert instance.configuration == frozenset({"paid"})


def test_guard_is_not_called_when_the_cond_is_false() -> None:
    calls: list[int] = []

    def approved(ctx: Any) -> bool:
        calls.append(ctx.data["total"])
        return True

    instance = load(GUARDED, guards={"approved": approved}).start()
    assert instance.send("CHECKOUT").handled is False
    assert calls == []
    assert instance.configuration == frozenset({"cart"})


def test_transition_keeps_both_cond_text_and_guard_name() -> None:
    transition = load(GUARDED, guards={"approved": lambda ctx: True}).states["cart"].transitions[1]
    assert (transition.cond_text, transition.guard_name) == ("total > 0", "approved")


def test_guard_that_is_not_a_name_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on: {GO: {target: cart, guard: [approved]}}
        """)
    assert problem == Problem(FILE, 5, 36, "`guard` must name a Python predicate, got a list")


# --------------------------------------------------------------------------- assign literals


def test_assign_accepts_numbers_booleans_and_null_as_literals() -> None:
    machine = load("""\
        machine: order
        version: 2
        data: {total: 0, paid: false, note: "x", ratio: 0}
        states:
          cart:
            entry:
              - assign: {total: 5, paid: true, note: null, ratio: 0.25}
        """)
    instance = machine.start()
    assert instance.initial_result.errors == ()
    assert instance.data == {"total": 5, "paid": True, "note": None, "ratio": 0.25}
    assert [a.text for a in machine.states["cart"].entry[0]] == [
        "total = 5", "paid = True", "note = None", "ratio = 0.25"]


def test_assign_of_a_list_value_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {items: []}
        states:
          cart:
            entry: [{assign: {items: [1, 2]}}]
        """)
    assert problem == Problem(FILE, 6, 30, "assign to 'items' must be an expression string, got a list")


def test_assign_to_an_invalid_location_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data: {items: []}
        states:
          cart:
            entry: [{assign: {items.0: 1}}]
        """)
    assert problem == Problem(FILE, 6, 23, "'items.0' is not a data key or dotted path")


# --------------------------------------------------------------------------- Python bindings


def test_unknown_named_action_says_how_to_bind_it() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entry: [notify_warehouse]
        """)
    assert problem == Problem(FILE, 5, 13, "unknown action 'notify_warehouse'",
                              "pass actions={'notify_warehouse': ...} to statechart.load() or name a module under "
                              "`python:`")


def test_unknown_named_action_suggests_a_bound_one() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entry: [notify_warehous]
        """, actions={"notify_warehouse": lambda ctx: None})
    assert problem == Problem(FILE, 5, 13, "unknown action 'notify_warehous'", "did you mean 'notify_warehouse'?")


def test_unknown_named_guard_suggests_a_bound_one() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: {target: cart, guard: is_aproved}
        """, guards={"is_approved": lambda ctx: True})
    assert problem == Problem(FILE, 6, 39, "unknown guard 'is_aproved'", "did you mean 'is_approved'?")


def test_bound_action_that_is_not_callable_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entry: [notify]
        """, actions={"notify": "not a function"})
    assert problem == Problem(FILE, 5, 13, "action 'notify' is bound to str, which is not callable")


def test_python_file_that_does_not_exist_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        python: missing_module.py
        states: {cart: {}}
        """)
    assert problem == Problem(FILE, 3, 9, "there is no file 'missing_module.py' in machines/order",
                              "a .py file is looked up in the folder of the machine file")


def test_python_module_that_cannot_be_imported_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        python: [missing_package_xyz.actions]
        states: {cart: {}}
        """)
    assert problem == Problem(FILE, 3, 10, f"'missing_package_xyz.actions' is not a module of the project ({Path.cwd()})",
                              "a dotted name must be a module file inside the project (myapp/actions.py); stdlib and "
                              "installed modules (sys, os, builtins ...) cannot be named")


def test_python_file_that_raises_on_import_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "machines" / "order"
    folder.mkdir(parents=True)
    (folder / "broken.py").write_text("raise RuntimeError('no database')\n")
    (folder / "v1.yaml").write_text("machine: order\nversion: 1\npython: broken.py\nstates: {cart: {}}\n")
    with pytest.raises(LoadError) as info:
        statechart.load(folder / "v1.yaml")
    assert info.value.problems == (Problem(str(folder / "v1.yaml"), 3, 9,
                                           "cannot import Python module 'broken.py': no database",
                                           "the module raised while it was imported"),)


def test_python_file_beside_the_yaml_binds_actions_and_guards(tmp_path: Path) -> None:
    folder = tmp_path / "machines" / "order"
    folder.mkdir(parents=True)
    (folder / "actions.py").write_text(dedent("""\
        def count_item(ctx):
            ctx.data["items"] += 1

        def has_items(ctx):
            return ctx.data["items"] > 0
        """))
    (folder / "v1.yaml").write_text(dedent("""\
        machine: order
        version: 1
        python: actions.py
        data: {items: 0}
        states:
          cart:
            on:
              ADD: {actions: [count_item]}
              CHECKOUT: {target: paid, guard: has_items}
          paid: {}
        """))
    machine = statechart.load(folder / "v1.yaml")
    instance = machine.start()
    assert instance.send("CHECKOUT").handled is False
    instance.send("ADD")
    instance.send("CHECKOUT")
    assert instance.data == {"items": 1}
    assert instance.configuration == frozenset({"paid"})


def test_name_missing_from_the_python_file_suggests_one_it_has(tmp_path: Path) -> None:
    folder = tmp_path / "machines" / "order"
    folder.mkdir(parents=True)
    (folder / "actions.py").write_text("def count_item(ctx):\n    pass\n")
    (folder / "v1.yaml").write_text("machine: order\nversion: 1\npython: actions.py\n"
                                    "states:\n  cart: {entry: [count_items]}\n")
    with pytest.raises(LoadError) as info:
        statechart.load(folder / "v1.yaml")
    assert info.value.problems == (Problem(str(folder / "v1.yaml"), 5, 18, "unknown action 'count_items'",
                                           "did you mean 'count_item'?"),)


# --------------------------------------------------------------------------- data


def test_data_value_that_yaml_reads_as_a_date_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data:
          placed_on: 2024-01-01
        states: {cart: {}}
        """)
    assert problem == Problem(FILE, 4, 14, "'2024-01-01' is read by YAML as a date, which is not JSON-compatible",
                              "quote it to keep it a string")


def test_quoted_date_stays_a_string() -> None:
    machine = load("""\
        machine: order
        version: 2
        data:
          placed_on: "2024-01-01"
        states: {cart: {}}
        """)
    assert machine.start().data == {"placed_on": "2024-01-01"}


def test_data_value_that_is_not_finite_is_refused() -> None:
    problem = only_problem("machine: order\nversion: 2\ndata: {limit: .inf}\nstates: {cart: {}}\n")
    assert problem == Problem(FILE, 3, 15, "data 'limit': inf is not JSON-compatible", "use a finite number or null")


@pytest.mark.parametrize(("key", "column"), [("event", 3), ("len", 3), ("_event", 3), ("In", 3)])
def test_data_key_that_hides_a_builtin_name_is_refused(key: str, column: int) -> None:
    problem = only_problem(f"""\
        machine: order
        version: 2
        data:
          {key}: 1
        states: {{cart: {{}}}}
        """)
    assert problem == Problem(FILE, 4, column, f"data key {key!r} would hide the built-in name {key!r} in expressions",
                              "choose another name")


@pytest.mark.parametrize("key", ["2fast", "not", "with-dash"])
def test_data_key_that_is_not_a_name_is_refused(key: str) -> None:
    problem = only_problem(f"machine: order\nversion: 2\ndata:\n  {key}: 1\nstates: {{cart: {{}}}}\n")
    assert problem == Problem(FILE, 4, 3, f"data key {key!r} is not a valid name",
                              "use letters, digits and _, not starting with a digit")


def test_data_must_be_a_mapping() -> None:
    problem = only_problem("machine: order\nversion: 2\ndata: [total]\nstates: {cart: {}}\n")
    assert problem == Problem(FILE, 3, 7, "`data` must be a mapping of data key -> initial value, got a list")


def test_computed_data_is_evaluated_at_start_in_order() -> None:
    machine = load("""\
        machine: order
        version: 2
        data:
          prices: [3, 4]
          total: {expr: "sum(prices)"}
          label: {expr: "_name + ':' + str(total)"}
          settings: {expr: 1}
        states: {cart: {}}
        """)
    assert machine.start().data == {"prices": [3, 4], "total": 7, "label": "order:7", "settings": 1}


def test_mapping_with_more_than_expr_is_a_literal_value() -> None:
    machine = load("""\
        machine: order
        version: 2
        data:
          settings: {expr: "1 + 1", unit: s}
        states: {cart: {}}
        """)
    assert machine.start().data == {"settings": {"expr": "1 + 1", "unit": "s"}}


def test_computed_data_with_a_syntax_error_points_into_it() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        data:
          total: {expr: "1 +"}
        states: {cart: {}}
        """)
    assert problem == Problem(FILE, 4, 21, "data 'total': invalid expression syntax: invalid syntax", "in '1 +'")


# --------------------------------------------------------------------------- events and transition lists


@pytest.mark.parametrize(("descriptor", "column"), [("a..b", 7), ("'pay now!'", 7), ("'.pay'", 7)])
def test_invalid_event_descriptor_is_refused(descriptor: str, column: int) -> None:
    found = problems(f"""\
        machine: order
        version: 2
        states:
          cart:
            on:
              {descriptor}: cart
        """)
    assert found[0].line == 6 and found[0].column == column
    assert found[0].message.endswith("is not a valid event descriptor")
    assert found[0].hint == "event names are dotted words: PAY, order.paid, error.* or *"


def test_event_descriptors_separated_by_spaces_are_all_accepted() -> None:
    machine = load("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              "CANCEL error.* timeout.": done
          done: {type: final}
        """)
    assert machine.states["cart"].transitions[0].events == ("CANCEL", "error", "timeout")


def test_on_that_is_not_a_mapping_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on: [CHECKOUT]
        """)
    assert problem == Problem(FILE, 5, 9, "`on` must be a mapping of event -> transition(s)")


def test_empty_transition_list_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: []
        """)
    assert problem == Problem(FILE, 6, 17, "the transition list for 'CHECKOUT' is empty")


def test_transition_that_is_a_number_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: 42
        """)
    assert problem == Problem(FILE, 6, 17, "a transition is a target state id, a mapping with `target`/`cond`/"
                                           "`actions`, or a list of those")


def test_send_event_with_a_wildcard_is_refused() -> None:
    problem = only_problem("""\
        machine: order
        version: 2
        states:
          cart:
            entry: [{raise: "error.*"}]
        """)
    assert problem == Problem(FILE, 5, 21, "'error.*' is not a valid event name for `raise`",
                              "event names are dotted words such as PAY or order.paid")


# --------------------------------------------------------------------------- every problem at once


def test_every_problem_is_reported_at_once_sorted_by_line() -> None:
    found = problems("""\
        machine: order
        version: 2
        states:
          cart:
            on:
              CHECKOUT: {target: payed, cond: "total >"}
            entri: []
          paid:
            type: paralel
          late:
            after: {2 days: cart}
          payed_again: {type: history}
        """)
    assert [(p.line, p.column, p.message) for p in found] == [
        (6, 26, "target 'payed' does not exist"),
        (6, 47, "cond: invalid expression syntax: invalid syntax"),
        (7, 5, "unknown key 'entri' in atomic state 'cart'"),
        (9, 11, "unknown state type 'paralel' for 'paid'"),
        (11, 13, "'2 days' is not a duration"),
        (12, 3, "history state 'payed_again' must be the child of a compound or parallel state"),
    ]


def test_five_different_problems_give_five_problems_sorted_by_line() -> None:
    found = problems("""\
        machine: Order
        version: 2
        data:
          event: 1
        states:
          cart:
            exit: [{asign: {x: 1}}]
            on:
              GO: nowhere
          done: {type: final, on: {GO: cart}}
        """)
    assert len(found) == 5
    assert [p.line for p in found] == [1, 4, 7, 9, 10]
    assert [p.message for p in found] == [
        "machine name 'Order' is not valid",
        "data key 'event' would hide the built-in name 'event' in expressions",
        "unknown action 'asign' in exit of 'cart'",
        "target 'nowhere' does not exist",
        "unknown key 'on' in final state 'done'",
    ]
    assert str(found[0]) == ("machines/order/v2.yaml:1:10: machine name 'Order' is not valid "
                             "(use lower case letters, digits and _, starting with a letter)")


def test_yaml_problems_and_compile_problems_are_reported_together() -> None:
    found = problems("""\
        machine: order
        version: 2
        states:
          cart:
            on: {GO: cart, GO: cart}
            entry: [nowhere_action]
        """)
    assert [(p.line, p.column, p.message) for p in found] == [
        (5, 20, "duplicate key 'GO'"),
        (6, 13, "unknown action 'nowhere_action'"),
    ]


# --------------------------------------------------------------------------- the example, and fuzzing


def test_the_example_machine_loads() -> None:
    machine = statechart.load(EXAMPLE_PATH)
    assert (machine.name, machine.version) == ("order", 2)
    assert machine.model.python_modules == ("actions.py",)


def _example_document() -> Any:
    document, found = parse_yaml(EXAMPLE_TEXT, str(EXAMPLE_PATH))
    assert found == []
    return _plain(document)


EXAMPLE_DOCUMENT = _example_document()
KEY_WORDS = ["type", "states", "on", "target", "initial", "entry", "exit", "always", "after", "on_done",
             "history", "done_data", "cond", "guard", "actions", "assign", "send", "cancel", "raise", "emit",
             "log", "if", "then", "elif", "else", "foreach", "array", "item", "index", "do", "event", "data",
             "delay", "id", "label", "expr", "machine", "version", "python", "invariant", "description", "<<"]
TEXT_WORDS = ["cart", "payment", "payment.authorizing", "hist", "*", "a..b", "error.*", "30m", "2d", "-1s",
              "1 +", "open('x')", "event.__class__", "total > 0", "history", "parallel", "final", "deep",
              "internal", "actions.py", "x.py", "", " ", "2024-01-01", "machines"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(), st.text(max_size=6), st.sampled_from(TEXT_WORDS),
    st.sampled_from(KEY_WORDS),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEY_WORDS) | st.sampled_from(TEXT_WORDS), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, path + (index,))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    document = copy.deepcopy(EXAMPLE_DOCUMENT)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        operation = draw(st.sampled_from(["delete", "replace", "rename"]))
        if operation == "delete":
            del parent[last]
        elif operation == "rename" and isinstance(parent, dict):
            new_key = draw(st.sampled_from(KEY_WORDS) | st.sampled_from(TEXT_WORDS) | st.text(max_size=5))
            parent[new_key] = parent.pop(last)
        else:
            parent[last] = draw(values)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


@settings(max_examples=300)
@given(mutated_examples())
def test_mutated_example_loads_or_raises_load_error(text: str) -> None:
    try:
        statechart.loads(text, str(EXAMPLE_PATH))
    except LoadError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.file == str(EXAMPLE_PATH)
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message


@settings(max_examples=300)
@given(st.integers(0, len(EXAMPLE_TEXT)), st.integers(0, 8),
       st.text(alphabet=st.sampled_from(list("{}[]:,-&*!|>'\"# \n\tabc<@%?")), max_size=6))
def test_example_text_with_a_slice_replaced_loads_or_raises_load_error(start: int, length: int, insert: str) -> None:
    text = EXAMPLE_TEXT[:start] + insert + EXAMPLE_TEXT[start + length:]
    try:
        statechart.loads(text, str(EXAMPLE_PATH))
    except LoadError as error:
        assert error.problems
        assert all(p.line >= 1 and p.column >= 1 for p in error.problems)


# ------------------------------------------------------------------ libyaml and the pure-Python parser

PARITY_TEXTS = [
    "a: 'é€😀 x'\nb: |\n  héllo\n  wörld 😀\nc: [1, \"ü\", 2.5, null, true]\nd: \"x\n  y\"\ne: >\n  folded\n  text\n",
    "top: &anchor {x: [1, 2, {y: z}]}\nother: *anchor\nlist: [*anchor, *anchor]\n",
    "a: 1\na: 2\n<<: {b: 1}\n? [k]\n: v\nc: yes\nd: !!set {x}\ne: 2024-01-01\nf: !!int nope\n",
    "cycle: &c\n  inner: *c\n",
    "a: *undefined\n",
    "a: &x 1\nb: &x 2\n",
    "a: 1\n---\nb: 2\n",
    "a: [1, 2\nb: 3\n",
    "a:\n\tb: 1\n",
    "a: b: c\n",
    "a: \x07\n",
    "",
    "# only a comment\n",
    "~\n",
    "states: " + "[" * 150 + "]" * 150 + "\n",
    "data:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(120)),
    "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
              + [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 7)]) + "\n",
]


def _located(value: Any) -> Any:
    """A located value with every mark spelled out, so two parses compare mark for mark."""
    if isinstance(value, dict):
        return ("map", value.mark, [(k, value.key_marks[k], value.value_marks[k], _located(v))
                                    for k, v in value.items()])
    if isinstance(value, list):
        return ("list", value.mark, list(zip(value.item_marks, map(_located, value))))
    return value


@pytest.mark.parametrize("text", PARITY_TEXTS + [
    path.read_text(encoding="utf-8") for path in sorted(Path(__file__).resolve().parent.parent.glob("machines/*/*.yaml"))])
def test_libyaml_and_the_pure_python_parser_read_a_document_alike(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """libyaml reads machine files for speed; every value, mark, problem and error must be what
    PyYAML's own parser gives, or a file would read differently on a machine without libyaml."""
    from statechart import yaml_loader

    if yaml_loader.CParser is None:
        if os.environ.get("CI"):
            pytest.fail("PyYAML is built without libyaml here: CI compares the two parsers")
        pytest.skip("PyYAML is built without libyaml: nothing to compare")
    fast_value, fast_problems = parse_yaml(text, FILE)
    monkeypatch.setattr(yaml_loader, "CParser", None)
    pure_value, pure_problems = parse_yaml(text, FILE)
    assert fast_problems == pure_problems
    assert _located(fast_value) == _located(pure_value)
    # Mark's segments (where a multi-line scalar's lines start) are not part of its equality
    assert [m.segments for m in _marks(fast_value)] == [m.segments for m in _marks(pure_value)]


def _marks(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value.mark, *value.key_marks.values(), *value.value_marks.values(),
                *(m for v in value.values() for m in _marks(v))]
    if isinstance(value, list):
        return [value.mark, *value.item_marks, *(m for v in value for m in _marks(v))]
    return []


def test_a_multi_line_scalar_is_located_line_by_line_through_libyaml() -> None:
    value, problems = parse_yaml("machine: m\ncond: |\n  a and\n    b\n", FILE)
    assert problems == []
    mark = value.value_marks["cond"]
    assert [mark.at(0), mark.at(8)] == [statechart.yaml_loader.Mark(3, 3), statechart.yaml_loader.Mark(4, 5)]  # a, b
