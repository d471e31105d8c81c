"""The one home of durations written for people and of plain text tables (durations.py, text_tables.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from statechart.durations import format_delay, format_duration, parse_duration
from statechart.text_tables import format_table


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (-5, "0s"), (0.25, "250ms"), (0.0004, "0s"), (1, "1s"), (45, "45s"), (90, "1m 30s"),
    (3600, "1h"), (7500, "2h 5m"), (7559, "2h 5m"), (273600, "3d 4h"), (1799.9999, "30m"), (59.6, "1m"),
])
def test_format_duration_writes_the_two_largest_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**9))
def test_format_duration_of_whole_seconds_reads_back_within_its_largest_units(seconds: int) -> None:
    text = format_duration(seconds)
    parts = text.split(" ")
    assert 1 <= len(parts) <= 2
    total = sum(parse_duration(part) for part in parts)
    largest = parse_duration("1" + parts[-1][-1]) if len(parts) == 2 else parse_duration("1" + parts[0][-1])
    assert 0 <= seconds - total < largest  # what is dropped is less than the smallest unit shown


@pytest.mark.parametrize(("seconds", "text"), [
    (300, "5m"), (90, "90s"), (86400, "1d"), (0.25, "250ms"), (1.5, "1500ms"), (7200, "2h")])
def test_format_delay_writes_one_unit_as_an_author_would(seconds: float, text: str) -> None:
    assert format_delay(seconds) == text


@given(st.integers(min_value=1, max_value=10**10))
def test_format_delay_reads_back_exactly(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_delay(seconds)) == pytest.approx(seconds, rel=1e-12)


def test_format_table_aligns_columns_and_right_aligns_numbers() -> None:
    lines = format_table(("NAME", "N"), [("a", 1), ("longer", 250)], right=(1,), indent="> ")
    assert lines == ["> NAME      N", "> a         1", "> longer  250"]


def test_format_table_without_rows_says_none_instead_of_a_lone_header() -> None:
    assert format_table(("NAME", "N"), [], indent="    ") == ["    (none)"]


def test_format_table_strips_trailing_spaces_of_a_short_last_column() -> None:
    assert format_table(("A", "LONG HEADER"), [("x", "")], indent="") == ["A  LONG HEADER", "x"]
