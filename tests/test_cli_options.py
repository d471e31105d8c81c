"""cli/options.py: the one parser of JSON given on the command line."""

from __future__ import annotations

import click
import pytest

from statechart.cli.options import json_object_option, parse_json_option


def test_a_json_option_value_is_parsed() -> None:
    assert parse_json_option('{"a": [1, 2.5, null]}', option="--data") == {"a": [1, 2.5, None]}


def test_bad_json_names_the_option_and_the_character() -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_json_option('{"a": }', option="--data")
    assert caught.value.param_hint == "'--data'"
    assert caught.value.message == "not valid JSON: Expecting value (at character 6)"


def test_bad_json_inside_a_larger_value_says_what_it_was() -> None:
    with pytest.raises(click.BadParameter) as caught:
        parse_json_option("{oops", what="the data of event 'ADD'")
    assert caught.value.param_hint is None
    assert caught.value.message.startswith("the data of event 'ADD' is not valid JSON: ")


def test_the_depth_limit_of_json_text_holds_for_cli_input() -> None:
    with pytest.raises(click.BadParameter, match="nested more than .* levels deep"):
        parse_json_option("[" * 20000 + "]" * 20000, option="--data")


def test_an_object_option_refuses_other_values_and_passes_none_through() -> None:
    assert json_object_option(None, "--data") is None
    assert json_object_option('{"k": 1}', "--data") == {"k": 1}
    with pytest.raises(click.BadParameter, match="must be a JSON object, not list") as caught:
        json_object_option("[1]", "--data")
    assert caught.value.param_hint == "'--data'"
