"""Tests for statechart.expressions: evaluation, name resolution and refusals."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statechart.expressions import (
    RESERVED_NAMES,
    SAFE_BUILTINS,
    Expression,
    ExpressionSyntaxError,
    compile_expression,
)


@attrs.define
class FakeEvent:
    name: str = "checkout"
    data: dict[str, Any] = attrs.Factory(dict)


ACTIVE_STATES = frozenset({"paid", "shipping"})
SYSTEM = {"_sessionid": "session-42", "_name": "order", "_ioprocessors": {"http": "http://x/"}}


def in_state(state_id: str) -> bool:
    return state_id in ACTIVE_STATES


def run(source: str, data: dict[str, Any] | None = None, event: object | None = None) -> Any:
    expression = compile_expression(source)
    return expression.evaluate(data if data is not None else {}, event or FakeEvent(), in_state, SYSTEM)


def refusal(source: str) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression(source)
    error = info.value
    assert error.source == source
    return error


# --------------------------------------------------------------------------
# public constants and the Expression value


def test_safe_builtins_are_exactly_the_documented_set() -> None:
    assert set(SAFE_BUILTINS) == {
        "len", "min", "max", "sum", "abs", "round", "any", "all", "sorted", "str", "int", "float", "bool",
    }
    assert SAFE_BUILTINS["len"] is len


def test_reserved_names() -> None:
    assert RESERVED_NAMES == frozenset({"event", "_event", "In", "_sessionid", "_name", "_ioprocessors"})


def test_expression_keeps_source_and_is_frozen() -> None:
    expression = compile_expression("retries < 3")
    assert isinstance(expression, Expression)
    assert expression.source == "retries < 3"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        expression.source = "other"  # type: ignore[misc]


def test_two_compilations_of_the_same_text_are_equal() -> None:
    first = compile_expression("a + 1")
    second = compile_expression("a + 1", machine_name="other")
    assert first == second
    assert hash(first) == hash(second)
    assert first != compile_expression("a + 2")


# --------------------------------------------------------------------------
# evaluation of the allowed constructs


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # literals
        ("42", 42),
        ("2.5", 2.5),
        ("1j * 1j", -1),
        ("'text'", "text"),
        ("None", None),
        ("True", True),
        ("(1, total)", (1, 10)),
        ("[total, 2]", [10, 2]),
        ("{'k': total}", {"k": 10}),
        ("{total, total, 3}", {10, 3}),
        ("[*items, 9]", [1, 2, 3, 9]),
        ("{**prices, 'tea': 1}", {"apple": 3, "pear": 5, "tea": 1}),
        # unary / binary / boolean operators
        ("-total", -10),
        ("+total", 10),
        ("~total", -11),
        ("not on_hold", True),
        ("total + 1 - 2 * 3", 5),
        ("total / 4", 2.5),
        ("total // 4", 2),
        ("total % 4", 2),
        ("total ** 2", 100),
        ("total << 1 | 1", 21),
        ("total & 6 ^ 1", 3),
        ("on_hold or total", 10),
        ("on_hold and total", False),
        # comparisons
        ("retries < 3", True),
        ("1 < retries <= 2", True),
        ("total != 10", False),
        ("2 in items", True),
        ("7 not in items", True),
        ("nothing is None", True),
        ("on_hold is not None", True),
        # conditional expression
        ("'big' if total > 5 else 'small'", "big"),
        # subscripts and slices
        ("items[0]", 1),
        ("items[-1]", 3),
        ("items[1:]", [2, 3]),
        ("items[::-1]", [3, 2, 1]),
        ("prices['pear']", 5),
        ("matrix[1][0]", 3),
        # attribute access
        ("event.name", "checkout"),
        # comprehensions and generator expressions
        ("[x * 2 for x in items if x > 1]", [4, 6]),
        ("{x % 2 for x in items}", {0, 1}),
        ("{k: v * 2 for k, v in prices.items()}", {"apple": 6, "pear": 10}),
        ("sum(x for x in items)", 6),
        ("[a + b for a, b in pairs]", [3, 7]),
        ("[first for first, *rest in matrix]", [1, 3]),
        ("[x for row in matrix for x in row if x != 2]", [1, 3, 4]),
        # f-strings
        ("f'{name}: {total}'", "ann: 10"),
        ("f'{total:>5}|{name!r}'", "   10|'ann'"),
        ("f'{total:{width}}'", "   10"),
        # safe builtins
        ("len(items) > 0", True),
        ("min(items)", 1),
        ("max(items, default=0)", 3),
        ("sum(items)", 6),
        ("abs(-total)", 10),
        ("round(2.567, 2)", 2.57),
        ("any(x > 2 for x in items)", True),
        ("all(x > 2 for x in items)", False),
        ("sorted(words, key=len)", ["b", "cc", "aaa"]),
        ("sorted(items, reverse=True)", [3, 2, 1]),
        ("str(total) + int('5') * 'x'", "10xxxxx"),
        ("float('1.5') + bool(0)", 1.5),
        ("max(*items)", 3),
        # allowed methods
        ("prices.get('kiwi', 0)", 0),
        ("sorted(prices.keys())", ["apple", "pear"]),
        ("sum(prices.values())", 8),
        ("name.upper().lower()", "ann"),
        ("'  pad '.strip() + '|'", "pad|"),
        ("' x'.lstrip() + 'y '.rstrip()", "xy"),
        ("name.startswith('a') and name.endswith('n')", True),
        ("'a,b'.split(',')", ["a", "b"]),
        ("'-'.join(words)", "aaa-b-cc"),
        ("items.count(2) + items.index(3)", 3),
        ("name.replace('n', 'm')", "amm"),
    ],
)
def test_allowed_constructs_evaluate(source: str, expected: Any) -> None:
    data = {
        "total": 10,
        "retries": 2,
        "on_hold": False,
        "nothing": None,
        "items": [1, 2, 3],
        "prices": {"apple": 3, "pear": 5},
        "matrix": [[1, 2], [3, 4]],
        "pairs": [(1, 2), (3, 4)],
        "name": "ann",
        "width": 5,
        "words": ["aaa", "b", "cc"],
    }
    assert run(source, data) == expected


def test_multi_line_and_indented_sources_evaluate() -> None:
    assert run("  total + 1\n", {"total": 1}) == 2
    assert run("(total +\n    1)", {"total": 1}) == 2
    assert run("(total +\r\n    1)", {"total": 1}) == 2
    assert run("total  # a trailing comment", {"total": 1}) == 1


def test_evaluate_is_a_plain_function_reused_across_calls() -> None:
    expression = compile_expression("count + 1")
    assert expression.evaluate({"count": 1}, None, in_state, SYSTEM) == 2
    assert expression.evaluate({"count": 41}, None, in_state, SYSTEM) == 42


# --------------------------------------------------------------------------
# name resolution


def test_event_and_underscore_event_are_the_event_parameter() -> None:
    event = FakeEvent(name="pay", data={"price": 7})
    assert run("event.data['price'] + _event.data['price']", {}, event) == 14
    assert run("event is _event", {}, event) is True
    assert run("event.name", {"event": "not me"}, event) == "pay"


def test_in_calls_the_in_state_predicate() -> None:
    assert run("In('paid') and not In('cancelled')") is True
    seen: list[str] = []

    def spy(state_id: str) -> bool:
        seen.append(state_id)
        return False

    assert compile_expression("In('a') or In('b')").evaluate({}, None, spy, SYSTEM) is False
    assert seen == ["a", "b"]


def test_system_variables_come_from_the_system_dict() -> None:
    data = {"_sessionid": "from data", "_name": "from data"}
    assert run("_sessionid", data) == "session-42"
    assert run("_name", data) == "order"
    assert run("_ioprocessors['http']") == "http://x/"


def test_builtins_are_not_shadowed_by_data() -> None:
    assert run("len(items)", {"items": [1], "len": "data len"}) == 1


def test_free_names_read_the_data_dict_at_evaluation_time() -> None:
    expression = compile_expression("total + event.data['price']")
    data = {"total": 1}
    assert expression.evaluate(data, FakeEvent(data={"price": 2}), in_state, SYSTEM) == 3
    data["total"] = 100
    assert expression.evaluate(data, FakeEvent(data={"price": 2}), in_state, SYSTEM) == 102


def test_comprehension_variable_shadows_data_name_of_the_same_name() -> None:
    data = {"x": 100, "items": [1, 2]}
    assert run("[x for x in items]", data) == [1, 2]
    assert run("[x + 1 for x in items] + [x]", data) == [2, 3, 100]
    # the comprehension variable does not leak into the data dict
    assert data == {"x": 100, "items": [1, 2]}


def test_first_iterable_is_evaluated_in_the_enclosing_scope() -> None:
    assert run("[x * 2 for x in x]", {"x": [1, 2]}) == [2, 4]


def test_nested_comprehensions_resolve_inner_iterables_to_outer_variables() -> None:
    data = {"rows": [[1, 2], [3]], "row": "data row", "factor": 10}
    assert run("[[cell * factor for cell in row] for row in rows]", data) == [[10, 20], [30]]
    assert run("[sum(c for c in row) for row in rows]", data) == [3, 3]
    assert run("{k: [v for v in vs if v > limit] for k, vs in groups.items()}",
               {"groups": {"a": [1, 5], "b": [7]}, "limit": 2}) == {"a": [5], "b": [7]}


def test_comprehension_scoping_matches_python_for_use_before_binding() -> None:
    # Python treats y as local to the whole comprehension, so using it in an
    # earlier clause is an UnboundLocalError, not a data lookup.
    source = "[1 for x in items if y for y in x]"
    with pytest.raises(UnboundLocalError):
        run(source, {"items": [[1]], "y": True})
    assert "y" not in compile_expression(source).names


def test_names_lists_only_data_names() -> None:
    expression = compile_expression(
        "In('a') and total > len([x for x in items if x > limit]) and event.name == _name "
        "and f'{label}' != _event.data.get('k') and sorted(words, key=str)"
    )
    assert expression.names == frozenset({"total", "items", "limit", "label", "words"})
    assert compile_expression("[[c for c in row] for row in rows]").names == frozenset({"rows"})
    assert compile_expression("1 + 2").names == frozenset()


# --------------------------------------------------------------------------
# evaluation errors


def test_missing_data_name_raises_name_error_naming_it() -> None:
    with pytest.raises(NameError) as info:
        run("total + missing", {"total": 1})
    assert str(info.value) == "name 'missing' is not defined"
    assert info.value.name == "missing"
    assert not isinstance(info.value, KeyError)


def test_missing_data_name_inside_a_comprehension_raises_name_error() -> None:
    with pytest.raises(NameError, match="name 'limit' is not defined"):
        run("[x for x in items if x > limit]", {"items": [1]})


def test_key_error_from_event_data_is_not_turned_into_a_name_error() -> None:
    with pytest.raises(KeyError) as info:
        run("total + event.data['price']", {"total": 1}, FakeEvent(data={}))
    assert not isinstance(info.value, NameError)
    with pytest.raises(KeyError):
        run("event.data['price']", {}, FakeEvent(data={}))


def test_key_error_for_a_present_data_name_stays_a_key_error() -> None:
    # "total" is a data name but it is present; the KeyError comes from the dict.
    with pytest.raises(KeyError):
        run("total['total']", {"total": {}})


def test_runtime_errors_propagate_unchanged() -> None:
    with pytest.raises(ZeroDivisionError):
        run("total / 0", {"total": 1})
    with pytest.raises(TypeError):
        run("total + 'x'", {"total": 1})


# --------------------------------------------------------------------------
# compile-time refusals


@pytest.mark.parametrize("source", ["", "   ", "\n\t "])
def test_empty_expression(source: str) -> None:
    error = refusal(source)
    assert error.message == "empty expression"
    assert str(error) == "empty expression"
    assert error.offset == 0


@pytest.mark.parametrize(
    ("source", "offset", "fragment"),
    [
        # calls of names that are not safe builtins
        ("open('f')", 0, "call of `open` is not allowed"),
        ("1 + eval('1')", 4, "`eval`"),
        ("getattr(event, 'x')", 0, "`getattr`"),
        ("type(event)", 0, "`type`"),
        ("total(1)", 0, "`total`"),
        ("event()", 0, "`event`"),
        # names and attributes starting with _
        ("__import__('os')", 0, "`__import__`: names starting with `_` are not allowed"),
        ("_secret + 1", 0, "`_secret`"),
        ("event.__class__", 6, "`__class__`: names starting with `_` are not allowed"),
        ("x._secret", 2, "`_secret`"),
        ("x . _secret", 4, "`_secret`"),
        ("items.__len__()", 6, "`__len__`"),
        # format strings
        ("'{0.__class__}'.format(event)", 16, "`.format`"),
        ("'{a}'.format_map(event.data)", 6, "`.format_map`"),
        ("[s.format for s in items]", 3, "`.format`"),
        # methods outside the allow-list
        ("items.pop()", 6, "`.pop()`"),
        ("event.data.update(x=1)", 11, "`.update()`"),
        ("event.data.clear()", 11, "`.clear()`"),
        # calls of things that are not names or attributes
        ("items[0]()", 0, "calling `items[0]` is not allowed"),
        ("(a or b)(1)", 1, "calling `a or b`"),
        # lambda, walrus, await, yield
        ("lambda: 1", 0, "lambda is not allowed in an expression"),
        ("sorted(items, key=lambda i: -i)", 14, "`key=lambda i: -i`"),
        ("(y := 1)", 1, "`y := 1`"),
        ("[y := 5, y ** 2]", 1, "`y := 5`"),
        ("await thing", 0, "`await`"),
        ("(yield)", 1, "`yield`"),
        ("(yield from items)", 1, "`yield from`"),
        # ** unpacking in calls, repeated keywords, unsafe key= callables
        ("max(**options)", 4, "`**options`"),
        ("round(1, ndigits=1, ndigits=2)", 20, "`ndigits`"),
        ("sorted(items, key=event.data.get)", 14, "`key=event.data.get`"),
        ("max(items, key=In)", 11, "`key=In`"),
        # bytes and ellipsis
        ("b'raw'", 0, "bytes literal `b'raw'`"),
        ("x == ...", 5, "`...`"),
        # comprehension targets
        ("[1 for x.y in items]", 7, "`x.y` cannot be a comprehension variable"),
        ("[1 for x[0] in items]", 7, "`x[0]`"),
        ("[event for event in items]", 11, "`event` is a reserved name"),
        ("[1 for len in items]", 7, "`len` is a built-in function"),
        ("[1 for _x in items]", 7, "`_x`"),
        ("[len(x) for x in items if x(1)]", 26, "call of `x`"),
        ("[x async for x in items]", 0, "`async for`"),
        # attributes exposing interpreter internals
        ("(x for x in items).gi_frame", 19, "`gi_frame`"),
        ("thing.f_globals", 6, "`f_globals`"),
        # other node types
        ("items[0] if True else (x for x in y).send(1)", 37, "`.send()`"),
    ],
)
def test_refusals_point_at_the_offending_text(source: str, offset: int, fragment: str) -> None:
    error = refusal(source)
    assert fragment in error.message
    assert error.offset == offset
    assert str(error) == error.message


def test_call_refusal_tells_what_may_be_called() -> None:
    message = refusal("open('f')").message
    for name in SAFE_BUILTINS:
        assert name in message
    assert "In()" in message
    method_message = refusal("items.pop()").message
    assert "get" in method_message and "replace" in method_message


def test_lambda_refusal_message() -> None:
    assert refusal("lambda: 1").message.startswith("lambda is not allowed in an expression")


@pytest.mark.parametrize(
    ("source", "offset"),
    [
        ("x = 1", 2),
        ("total +", 7),
        ("1 + )", 4),
        ("'é' $ 1", 4),
        ("import os", 0),
        ("(a,\n b $)", 7),
    ],
)
def test_python_syntax_errors_are_wrapped(source: str, offset: int) -> None:
    error = refusal(source)
    assert error.message.startswith("invalid expression syntax: ")
    assert error.offset == offset


def test_nul_character_is_refused_at_its_position() -> None:
    error = refusal("a\0b")
    assert error.offset == 1
    assert "NUL" in error.message


@pytest.mark.parametrize("source", ["1+" * 3000 + "1", "-" * 5000 + "1", "(" * 300 + "1" + ")" * 300])
def test_pathologically_nested_expressions_are_refused(source: str) -> None:
    error = refusal(source)
    assert "nested" in error.message


def test_statements_are_refused() -> None:
    assert refusal("del x").message.startswith("invalid expression syntax")
    assert refusal("x = 1\ny").message.startswith("invalid expression syntax")


def test_offsets_count_characters_not_bytes() -> None:
    # 'é' is two bytes in UTF-8; the caret must still land on `open`.
    source = "'é' + open('f')"
    assert refusal(source).offset == source.index("open")


def test_offsets_in_multi_line_and_indented_sources_are_absolute() -> None:
    source = "(total +\n    event._data)"
    assert refusal(source).offset == source.index("_data")
    indented = "\n   open(1)"
    assert refusal(indented).offset == indented.index("open")
    crlf = "(a,\r\n b,\r\n c.pop())"
    assert refusal(crlf).offset == crlf.index("pop")


def test_refused_subexpressions_are_found_everywhere() -> None:
    for source in [
        "f'{open(1)}'",
        "[open(1) for x in items]",
        "{k: open(k) for k in items}",
        "items[open(1)]",
        "items[1:open(1)]",
        "a if open(1) else b",
        "not open(1)",
        "open(1) < 2",
        "len(open(1))",
        "{'k': open(1)}",
        "prices.get(open(1))",
    ]:
        error = refusal(source)
        assert "`open`" in error.message, source
        assert error.offset == source.index("open"), source


def test_error_is_picklable() -> None:
    error = refusal("open(1)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.offset, copy.source) == (error.message, error.offset, error.source)


def test_machine_name_labels_tracebacks() -> None:
    expression = compile_expression("1 / zero", machine_name="orders")
    with pytest.raises(ZeroDivisionError) as info:
        expression.evaluate({"zero": 0}, None, in_state, SYSTEM)
    assert any("orders" in entry.frame.code.raw.co_filename for entry in info.traceback)


# --------------------------------------------------------------------------
# property: evaluate agrees with Python's eval on integer arithmetic

_VARIABLES = ("a", "b", "c")

_leaves = st.one_of(
    st.integers(min_value=-1000, max_value=1000).map(str),
    st.sampled_from(_VARIABLES),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "//", "%", "<", "==", "and", "or"]), children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"(-{c})"),
        children.map(lambda c: f"(not {c})"),
        children.map(lambda c: f"abs({c})"),
        st.tuples(children, children).map(lambda t: f"max({t[0]}, {t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(children, st.integers(0, 3)).map(lambda t: f"({t[0]} ** {t[1]})"),
    )


_expressions = st.recursive(_leaves, _extend, max_leaves=12)


def _outcome(function: Any) -> tuple[str, Any]:
    try:
        return ("value", function())
    except ArithmeticError as error:
        return ("error", type(error))


@settings(max_examples=300)
@given(
    source=_expressions,
    values=st.fixed_dictionaries({name: st.integers(-50, 50) for name in _VARIABLES}),
)
def test_evaluate_agrees_with_python_eval(source: str, values: dict[str, int]) -> None:
    expression = compile_expression(source)
    ours = _outcome(lambda: expression.evaluate(dict(values), None, in_state, SYSTEM))
    python = _outcome(lambda: eval(source, {"__builtins__": {"abs": abs, "max": max}}, dict(values)))  # noqa: S307
    assert ours == python
    assert expression.names <= set(_VARIABLES)
