"""Bounds on what one expression evaluation, and one macrostep, may cost.

The allow-list in ``expressions.py`` decides *what* an expression may do; this module decides
*how much*. Without it ``9**9**9``, ``'a' * 10**10``, ``f"{x:>1000000000}"`` or three nested
``for`` clauses over a long list pass the load and then hang the process (inside
``Store.send``, while holding the database's write lock) or allocate gigabytes.

Only the operations that can blow up are guarded, so ordinary expressions keep their speed:
the compiler routes ``**``, ``*``, ``<<``, ``%``, format specs, ``sum``, ``str.join`` and
``str.replace`` through the checks below, and wraps each comprehension's iterables. Every check
estimates the size of the result *before* computing it. A breach raises
:class:`ExpressionLimitError`, which the interpreter turns into ``error.execution`` like any
other failing expression.

Iterations (comprehensions and ``foreach``) draw on a per-macrostep budget, reset whenever the
interpreter creates the step's context: deterministic, so the same step fails the same way
everywhere. Work done per item (``x in big_list`` in a long comprehension) is not counted item
by item; a wall-clock deadline, checked every :data:`_CHECK_EVERY` items of a long iterable,
backstops it.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any, Iterable

from .errors import ExpressionLimitError

__all__ = [
    "ExpressionLimitError",
    "MAX_INT_BITS",
    "MAX_SEQUENCE",
    "MAX_ITEMS",
    "MAX_FORMAT_WIDTH",
    "MAX_FOR_CLAUSES",
    "MACROSTEP_ITERATIONS",
    "MACROSTEP_SECONDS",
    "reset_budget",
    "charge",
]

#: Largest integer an operation may produce, in bits (about 3,000 decimal digits).
MAX_INT_BITS = 10_000
#: Longest str (characters) that ``*``, ``join`` or ``replace`` may produce.
MAX_SEQUENCE = 1_000_000
#: Longest list or tuple that ``*`` or ``sum`` may produce.
MAX_ITEMS = 100_000
#: Largest width or precision in a format spec (f-strings) or a ``%`` format.
MAX_FORMAT_WIDTH = 10_000
#: ``for`` clauses in one expression, counted over all its comprehensions (checked at load).
MAX_FOR_CLAUSES = 8
#: Comprehension and ``foreach`` iterations in one macrostep.
MACROSTEP_ITERATIONS = 1_000_000
#: Wall-clock backstop for the iterations of one macrostep, in seconds.
MACROSTEP_SECONDS = 1.0

_CHECK_EVERY = 1024
_SEQUENCES = (str, list, tuple, bytes)


class _Budget(threading.local):
    """Per thread, so instances stepped in parallel threads never share a budget.

    ``step`` is None until the first iteration of a macrostep, then [iterations left, deadline]:
    resetting is one attribute store, which every macrostep pays, iterating or not."""

    step: list[float] | None = None


_BUDGET = _Budget()


def reset_budget() -> None:
    """Start a macrostep's budget (the interpreter does this when it creates the step's context)."""
    _BUDGET.step = None


def charge(count: int) -> None:
    """Take ``count`` iterations from the macrostep's budget, or raise."""
    step = _BUDGET.step
    if step is None:
        step = _BUDGET.step = [MACROSTEP_ITERATIONS, time.monotonic() + MACROSTEP_SECONDS]
    elif time.monotonic() > step[1]:
        raise ExpressionLimitError(f"this step spent more than {MACROSTEP_SECONDS:g} s in comprehensions "
                                   "and foreach loops")
    step[0] -= count
    if step[0] < 0:
        raise ExpressionLimitError(f"this step iterated more than {MACROSTEP_ITERATIONS:,} times "
                                   "(comprehensions and foreach together)")


def bounded_iter(iterable: Any) -> Any:
    """A comprehension's iterable, charged to the budget. Small sized ones are returned as they
    are (no cost per item); long or unsized ones are walked with a periodic budget check."""
    try:
        size = len(iterable)
    except TypeError:
        return _counted(iterable)
    charge(size)
    if size <= _CHECK_EVERY:
        return iterable
    return _timed(iterable)


def _counted(iterable: Iterable[Any]) -> Iterable[Any]:
    count = 0
    for item in iterable:
        count += 1
        if count == _CHECK_EVERY:
            charge(count)
            count = 0
        yield item
    charge(count)


def _timed(iterable: Iterable[Any]) -> Iterable[Any]:
    for index, item in enumerate(iterable):
        if index and not index % _CHECK_EVERY:
            charge(0)
        yield item


# -- arithmetic --------------------------------------------------------------------------------

def _too_big(what: str, bits: int) -> ExpressionLimitError:
    return ExpressionLimitError(f"{what} would have about {bits:,} bits; the limit is {MAX_INT_BITS:,}")


def guarded_pow(base: Any, exponent: Any) -> Any:
    """``base ** exponent``; an integer result is estimated (bits of base x exponent) first."""
    if type(exponent) is int and exponent > 1 and type(base) in (int, bool):
        bits = (abs(base).bit_length() - 1) * exponent if abs(base) > 1 else 0
        if bits > MAX_INT_BITS:
            raise _too_big(f"{_short(base)} ** {_short(exponent)}", bits)
    return base ** exponent


def guarded_mul(left: Any, right: Any) -> Any:
    """``left * right``: integer products and sequence repetitions are sized before they are made."""
    left_type, right_type = type(left), type(right)
    if left_type is int and right_type is int:
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise _too_big("the product", bits)
    elif left_type in _SEQUENCES and right_type in (int, bool):
        _check_repeat(left, right)
    elif right_type in _SEQUENCES and left_type in (int, bool):
        _check_repeat(right, left)
    return left * right


def _check_repeat(sequence: Any, times: int) -> None:
    size = len(sequence) * times
    limit = MAX_SEQUENCE if type(sequence) in (str, bytes) else MAX_ITEMS
    if size > limit:
        raise ExpressionLimitError(f"repeating a {type(sequence).__name__} of length {len(sequence):,} "
                                   f"{_short(times)} times makes {size:,}; the limit is {limit:,}")


def guarded_lshift(value: Any, shift: Any) -> Any:
    if type(value) in (int, bool) and type(shift) is int and shift > 0:
        bits = abs(value).bit_length() + shift
        if value and bits > MAX_INT_BITS:
            raise _too_big(f"{_short(value)} << {_short(shift)}", bits)
    return value << shift


# A printf-style conversion: flags, width, precision (either may be `*`), length, type.
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)


def guarded_mod(left: Any, right: Any) -> Any:
    """``left % right``; when ``left`` is a str this is printf formatting, whose widths are bounded."""
    if type(left) is str:
        for match in _PERCENT.finditer(left):
            width, precision, _ = match.groups()
            for number in (width, precision):
                if number == "*":
                    raise ExpressionLimitError("`*` widths are not supported in % formatting; "
                                               "write the width into the format")
                if number and (len(number) > 6 or int(number) > MAX_FORMAT_WIDTH):
                    raise ExpressionLimitError(f"the width or precision {_short(number)} in the format "
                                               f"{_short(left)} is above the limit of {MAX_FORMAT_WIDTH:,}")
    return left % right


_NUMBER = re.compile(r"\d+")


def guarded_format(value: Any, conversion: int, spec: str) -> str:
    """One f-string field with a format spec (``f"{x:>10}"``): widths and precisions bounded."""
    for number in _NUMBER.findall(spec):
        if len(number) > 6 or int(number) > MAX_FORMAT_WIDTH:
            raise ExpressionLimitError(f"the format spec {_short(spec)} asks for {_short(number)} characters; "
                                       f"the limit is {MAX_FORMAT_WIDTH:,}")
    if conversion == 115:
        value = str(value)
    elif conversion == 114:
        value = repr(value)
    elif conversion == 97:
        value = ascii(value)
    return format(value, spec)


# -- functions and methods that build long results ----------------------------------------------

def guarded_sum(iterable: Any, /, start: Any = 0) -> Any:
    """``sum``; adding lists or tuples is linear here (``sum`` itself is quadratic) and bounded."""
    items = list(bounded_iter(iterable))
    if isinstance(start, (list, tuple)):
        total = len(start) + sum(len(item) if isinstance(item, (list, tuple)) else 0 for item in items)
        if total > MAX_ITEMS:
            raise ExpressionLimitError(f"sum would build a sequence of {total:,} items; "
                                       f"the limit is {MAX_ITEMS:,}")
        if all(type(item) is type(start) for item in items):
            return type(start)(itertools.chain(start, *items))
    return sum(items, start)


def guarded_join(separator: Any, iterable: Any) -> Any:
    """``separator.join(iterable)`` with the result's length computed first."""
    if type(separator) is not str:
        return separator.join(iterable)
    items = list(bounded_iter(iterable))
    total = len(separator) * max(len(items) - 1, 0) + sum(len(item) for item in items if type(item) is str)
    if total > MAX_SEQUENCE:
        raise ExpressionLimitError(f"join would build a string of {total:,} characters; "
                                   f"the limit is {MAX_SEQUENCE:,}")
    return separator.join(items)


def guarded_replace(text: Any, old: Any, new: Any, *count: Any) -> Any:
    """``text.replace(old, new[, count])`` with the result's length computed first."""
    if type(text) is str and type(old) is str and type(new) is str and len(new) > len(old):
        hits = text.count(old) if old else len(text) + 1
        if count and type(count[0]) is int and count[0] >= 0:
            hits = min(hits, count[0])
        total = len(text) + hits * (len(new) - len(old))
        if total > MAX_SEQUENCE:
            raise ExpressionLimitError(f"replace would build a string of {total:,} characters; "
                                       f"the limit is {MAX_SEQUENCE:,}")
    return text.replace(old, new, *count)


def _short(value: Any) -> str:
    if type(value) is int and value.bit_length() > 64:
        return f"an integer of {value.bit_length():,} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: Names the compiled expressions call; all start with "_", which user text cannot write.
GUARDS: dict[str, Any] = {
    "_pow": guarded_pow,
    "_mul": guarded_mul,
    "_lshift": guarded_lshift,
    "_mod": guarded_mod,
    "_format": guarded_format,
    "_iter": bounded_iter,
    "_join": guarded_join,
    "_replace": guarded_replace,
}
